// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// Distinguished names written as QEMU writes a client certificate's subject for its authz
/// check: gnutls_x509_crt_get_dn (crypto/tlssession.c, qcrypto_tls_session_check_certificate),
/// which since GnuTLS 3.5.7 gives the RFC 4514 string: RDNs in reverse order of the encoding
/// (so `CN=mgmt,O=Example,C=GB` for a subject made with `/C=GB/O=Example/CN=mgmt`), the
/// attributes of a multi-valued RDN joined with `+`, GnuTLS's short names (lib/x509/dn.c,
/// `_oid2str`: CN, C, O, OU, L, ST, DC, UID, EMAIL, ...), an unknown attribute as its dotted OID
/// with `#` and the hex of its DER value, and RFC 4514 escapes (`\,` `\+` `\"` `\\` `\<` `\>`
/// `\;`, a leading `#` or space, a trailing space).
package enum DistinguishedName {
    /// Short names by OID, as GnuTLS prints them.
    static let shortNames: [String: String] = [
        "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.7": "L", "2.5.4.8": "ST",
        "2.5.4.9": "STREET", "2.5.4.5": "serialNumber", "2.5.4.12": "title", "2.5.4.4": "SN", "2.5.4.42": "GN",
        "2.5.4.43": "initials", "2.5.4.44": "generationQualifier", "2.5.4.46": "dnQualifier",
        "2.5.4.65": "pseudonym", "2.5.4.17": "postalCode", "2.5.4.41": "name", "2.5.4.15": "businessCategory",
        "0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.1": "UID",
        "1.2.840.113549.1.9.1": "EMAIL",
    ]

    /// The string of a DER `Name` element (RDNSequence).
    static func string(fromName name: DERReader.Element) throws(DERError) -> String {
        var rdns: [String] = []
        var sequence = name.reader
        while !sequence.isAtEnd {
            var set = try sequence.read(DERReader.set, "RelativeDistinguishedName").reader
            var attributes: [String] = []
            while !set.isAtEnd {
                var pair = try set.read(DERReader.sequence, "AttributeTypeAndValue").reader
                let oid = try objectIdentifier(try pair.read(DERReader.objectIdentifier, "AttributeType").contents)
                let value = try pair.read(nil, "AttributeValue")
                if let short = shortNames[oid], let text = Self.text(value) {
                    attributes.append("\(short)=\(escape(text))")
                } else {
                    attributes.append("\(oid)=#" + value.encoded.map { hex($0) }.joined())
                }
            }
            rdns.append(attributes.joined(separator: "+"))
        }
        return rdns.reversed().joined(separator: ",")
    }

    /// A directory string's text: UTF8String, PrintableString, IA5String, TeletexString (read
    /// as Latin-1, as GnuTLS does), BMPString (UCS-2) or UniversalString (UCS-4).
    private static func text(_ value: DERReader.Element) -> String? {
        switch value.tag {
        case 0x0c, 0x13, 0x16: return String(decoding: value.contents, as: UTF8.self)
        case 0x14: return String(value.contents.map { Character(Unicode.Scalar($0)) })
        case 0x1e:
            let units = stride(from: value.contents.startIndex, to: value.contents.endIndex - 1, by: 2).map {
                UInt16(value.contents[$0]) << 8 | UInt16(value.contents[$0 + 1])
            }
            return String(decoding: units, as: UTF16.self)
        case 0x1c:
            var scalars = String.UnicodeScalarView()
            var index = value.contents.startIndex
            while index + 3 < value.contents.endIndex {
                let code = value.contents[index..<(index + 4)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                if let scalar = Unicode.Scalar(code) { scalars.append(scalar) }
                index += 4
            }
            return String(scalars)
        default: return nil
        }
    }

    /// RFC 4514 section 2.4.
    static func escape(_ text: String) -> String {
        var out = ""
        let scalars = Array(text.unicodeScalars)
        for (index, scalar) in scalars.enumerated() {
            switch scalar {
            case ",", "+", "\"", "\\", "<", ">", ";": out += "\\" + String(Character(scalar))
            case "#" where index == 0, " " where index == 0 || index == scalars.count - 1:
                out += "\\" + String(Character(scalar))
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// The dotted form of an OID's content octets (X.690 section 8.19).
    static func objectIdentifier(_ bytes: ArraySlice<UInt8>) throws(DERError) -> String {
        var components: [UInt64] = []
        var value: UInt64 = 0
        for byte in bytes {
            guard value < (1 << 56) else { throw DERError("object identifier too long") }
            value = value << 7 | UInt64(byte & 0x7f)
            if byte & 0x80 == 0 {
                if components.isEmpty {
                    let first: UInt64 = value < 40 ? 0 : (value < 80 ? 1 : 2)
                    components.append(first)
                    components.append(value - first * 40)
                } else {
                    components.append(value)
                }
                value = 0
            }
        }
        guard !components.isEmpty else { throw DERError("empty object identifier") }
        return components.map(String.init).joined(separator: ".")
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}
