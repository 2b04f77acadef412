// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// A certificate's distinguished name exactly as QEMU 7.2 matches it against `authz-simple` and
/// `authz-list(-file)` rules: the output of `gnutls_x509_crt_get_dn` (crypto/tlssession.c,
/// qcrypto_tls_session_check_certificate), which is GnuTLS's "compat" string
/// (lib/x509/dn.c `_gnutls_x509_get_dn` with GNUTLS_X509_DN_FLAG_COMPAT, GnuTLS 3.7.9 as in
/// Debian 12), byte for byte:
///
/// - RDNs in the order of the encoding (`C=GB,O=Example,CN=mgmt` for a subject made with
///   `/C=GB/O=Example/CN=mgmt`; not RFC 4514's reversed order), the attributes of a
///   multi-valued RDN in their encoded order joined with `+`.
/// - Attribute names from GnuTLS's table (lib/x509/common.c `_oid2str`): `C`, `O`, `OU`, `CN`,
///   `L`, `ST`, `street`, `title`, `serialNumber`, `surName`, `givenName`, `DC`, `UID`,
///   `EMAIL` and the rest below; any other attribute type as its dotted OID.
/// - Values: a DirectoryString's UTF8String and PrintableString as their bytes, a BMPString as
///   UTF-8, a TeletexString as is when every byte is printable ASCII; otherwise (a Teletex of
///   other bytes, a UniversalString, a BMPString that is not UTF-16) `#` and the hex of the
///   contents, escaped like text (so `\#…`). Then RFC 4514's escapes: `\` before `,` `+` `"`
///   `\` `<` `>` `;` and before a leading `#` or space or a trailing space.
/// - An unknown type, a value of the wrong ASN.1 type, or a value holding a NUL: `#` and the hex
///   of its whole DER encoding, unescaped. So the string never holds a NUL, and a policy match
///   cannot be cut short by one.
/// - Other control characters (newline, tab, ESC, DEL) are kept as they are: QEMU matches
///   them so. Whoever writes the name to a log must escape it (cssd's log handler does).
/// - An empty DirectoryString makes the whole name unreadable (`DERError`): GnuTLS refuses it,
///   and QEMU refuses such a client ("Cannot get client distinguished name").
///
/// `bytes` is what the policy matches; `text` shows it as a Swift string (bytes that are not
/// UTF-8 become U+FFFD: for display only).
package struct DistinguishedName: Sendable, Hashable, CustomStringConvertible {
    /// The string as gnutls_x509_crt_get_dn writes it (no NUL).
    package let bytes: [UInt8]

    package var text: String { String(decoding: bytes, as: UTF8.self) }
    package var description: String { text }

    package init(bytes: [UInt8]) { self.bytes = bytes }

    /// Reads a DER `Name` (RDNSequence).
    /// - Throws: `DERError` for a malformed encoding, an empty name (no RDN: GnuTLS has no DN to
    ///   give, and QEMU refuses the client), an empty DirectoryString or a value GnuTLS cannot
    ///   print (an OCTET STRING attribute holding a NUL).
    init(name: DERReader.Element) throws(DERError) {
        var out: [UInt8] = []
        var sequence = name.reader
        guard !sequence.isAtEnd else { throw DERError("empty name") }
        var firstRDN = true
        while !sequence.isAtEnd {
            var set = try sequence.read(DERReader.set, "RelativeDistinguishedName").reader
            if !firstRDN { out.append(UInt8(ascii: ",")) }
            firstRDN = false
            var firstAttribute = true
            while !set.isAtEnd {
                var pair = try set.read(DERReader.sequence, "AttributeTypeAndValue").reader
                let oid = try Self.objectIdentifier(try pair.read(DERReader.objectIdentifier, "AttributeType").contents)
                let value = try pair.read(nil, "AttributeValue")
                if !firstAttribute { out.append(UInt8(ascii: "+")) }
                firstAttribute = false
                let entry = Self.table[oid]
                out += Array((entry?.name ?? oid).utf8)
                out.append(UInt8(ascii: "="))
                out += try Self.value(value, entry: entry)
            }
        }
        bytes = out
    }

    // MARK: GnuTLS's attribute table (lib/x509/common.c, _oid2str, 3.7.9)

    /// How GnuTLS reads a value: as a DirectoryString CHOICE, or as one simple ASN.1 type.
    enum Syntax: Sendable {
        case directoryString
        /// A CHOICE of these string types, read as they are (pkcs-9-challengePassword).
        case choice(tags: [UInt8])
        case simple(tag: UInt8)
    }

    struct Entry: Sendable {
        /// nil: GnuTLS prints the dotted OID (its ENTRY_ND rows).
        let name: String?
        let syntax: Syntax
    }

    private static let printable: UInt8 = 0x13
    private static let ia5: UInt8 = 0x16
    private static let utf8: UInt8 = 0x0c
    private static let numeric: UInt8 = 0x12
    private static let bmp: UInt8 = 0x1e
    private static let octets: UInt8 = 0x04

    static let table: [String: Entry] = {
        var table: [String: Entry] = [:]
        func directory(_ oid: String, _ name: String?) { table[oid] = Entry(name: name, syntax: .directoryString) }
        func simple(_ oid: String, _ name: String?, _ tag: UInt8) {
            table[oid] = Entry(name: name, syntax: .simple(tag: tag))
        }
        directory("1.3.6.1.5.5.7.9.2", "placeOfBirth")
        simple("1.3.6.1.5.5.7.9.3", "gender", printable)
        simple("1.3.6.1.5.5.7.9.4", "countryOfCitizenship", printable)
        simple("1.3.6.1.5.5.7.9.5", "countryOfResidence", printable)
        simple("2.5.4.6", "C", printable)
        directory("2.5.4.9", "street")
        directory("2.5.4.12", "title")
        directory("2.5.4.10", "O")
        directory("2.5.4.11", "OU")
        directory("2.5.4.3", "CN")
        directory("2.5.4.7", "L")
        directory("2.5.4.8", "ST")
        directory("2.5.4.13", "description")
        simple("2.5.4.5", "serialNumber", printable)
        simple("2.5.4.20", "telephoneNumber", printable)
        directory("2.5.4.4", "surName")
        directory("2.5.4.43", "initials")
        directory("2.5.4.44", "generationQualifier")
        directory("2.5.4.42", "givenName")
        directory("2.5.4.65", "pseudonym")
        simple("2.5.4.46", "dnQualifier", printable)
        directory("2.5.4.17", "postalCode")
        directory("2.5.4.41", "name")
        directory("2.5.4.15", "businessCategory")
        simple("0.9.2342.19200300.100.1.25", "DC", ia5)
        directory("0.9.2342.19200300.100.1.1", "UID")
        directory("1.2.840.113556.1.4.656", "userPrincipalName")
        directory("1.3.6.1.4.1.311.60.2.1.1", "jurisdictionOfIncorporationLocalityName")
        directory("1.3.6.1.4.1.311.60.2.1.2", "jurisdictionOfIncorporationStateOrProvinceName")
        simple("1.3.6.1.4.1.311.60.2.1.3", "jurisdictionOfIncorporationCountryName", printable)
        simple("1.2.840.113549.1.9.1", "EMAIL", ia5)
        // pkcs-9-challengePassword: a CHOICE of PrintableString and UTF8String (PKIX1.asn).
        table["1.2.840.113549.1.9.7"] = Entry(name: nil, syntax: .choice(tags: [printable, utf8]))
        simple("1.2.840.113549.1.9.20", nil, bmp)
        simple("1.2.840.113549.1.9.21", nil, octets)
        simple("1.2.840.113549.1.9.4", nil, octets)
        simple("1.3.6.1.5.5.7.8.5", "XmppAddr", utf8)
        simple("1.2.643.100.1", "OGRN", numeric)
        simple("1.2.643.100.3", "SNILS", numeric)
        simple("1.2.643.100.5", "OGRNIP", numeric)
        simple("1.2.643.3.131.1.1", "INN", numeric)
        return table
    }()

    // MARK: Values (lib/x509/common.c, _gnutls_x509_dn_to_string)

    private static func value(_ value: DERReader.Element, entry: Entry?) throws(DERError) -> [UInt8] {
        guard let entry else { return hexOfEncoding(value) }
        switch entry.syntax {
        case .directoryString:
            // GnuTLS refuses the whole name (GNUTLS_E_ASN1_VALUE_NOT_VALID) for an empty one.
            if value.encoded.count >= 2, value.encoded[value.encoded.startIndex + 1] == 0 {
                throw DERError("empty DirectoryString")
            }
            guard let text = directoryString(value), !text.contains(0) else { return hexOfEncoding(value) }
            return escape(text)
        case .choice(let tags):
            let text = Array(value.contents)
            guard tags.contains(value.tag), !text.contains(0) else { return hexOfEncoding(value) }
            return escape(text)
        case .simple(let tag):
            // An empty value of a simple type is printed as hex too (GnuTLS 3.7.9: `C=#1300`).
            guard value.tag == tag, !value.contents.isEmpty else { return hexOfEncoding(value) }
            var text = Array(value.contents)
            if tag == bmp { text = utf8(fromUCS2: value.contents) ?? hexOfContents(value.contents) }
            if text.contains(0) {
                // An OCTET STRING is not checked for NULs where the others are; its NUL then
                // fails GnuTLS's escaping and with it the whole name.
                if tag == octets { throw DERError("an attribute value holds a NUL") }
                return hexOfEncoding(value)
            }
            return escape(text)
        }
    }

    /// The text of a DirectoryString CHOICE (decode_complex_string), or nil when the value is
    /// none of its alternatives (GnuTLS then prints the encoding's hex).
    private static func directoryString(_ value: DERReader.Element) -> [UInt8]? {
        let contents = value.contents
        switch value.tag {
        case utf8, printable: return Array(contents)
        case 0x14:  // TeletexString: kept only when every byte is printable ASCII (c_isprint).
            return contents.allSatisfy { (0x20...0x7e).contains($0) } ? Array(contents) : hexOfContents(contents)
        case bmp: return utf8(fromUCS2: contents) ?? hexOfContents(contents)
        case 0x1c: return hexOfContents(contents)  // UniversalString: GnuTLS never converts it.
        default: return nil
        }
    }

    /// _gnutls_ucs2_to_utf8 (big-endian): a trailing 00 00 dropped, an odd last byte ignored,
    /// libunistring's u16_to_u8 (a lone surrogate fails).
    private static func utf8(fromUCS2 bytes: ArraySlice<UInt8>) -> [UInt8]? {
        var bytes = bytes
        if bytes.count > 2, bytes.last == 0, bytes[bytes.endIndex - 2] == 0 { bytes = bytes.dropLast(2) }
        guard !bytes.isEmpty else { return nil }
        var units: [UInt16] = []
        var index = bytes.startIndex
        while index + 1 < bytes.endIndex {
            units.append(UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1]))
            index += 2
        }
        var out: [UInt8] = []
        var iterator = units.makeIterator()
        var decoder = UTF16()
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): out += Array(String(scalar).utf8)
            case .emptyInput: break loop
            case .error: return nil
            }
        }
        return out
    }

    /// RFC 4514's escapes as GnuTLS's str_escape applies them (bytes, not characters).
    static func escape(_ text: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count + 4)
        for (index, byte) in text.enumerated() {
            switch byte {
            case UInt8(ascii: ","), UInt8(ascii: "+"), UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "<"),
                UInt8(ascii: ">"), UInt8(ascii: ";"):
                out.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "#") where index == 0, UInt8(ascii: " ") where index == 0 || index == text.count - 1:
                out.append(UInt8(ascii: "\\"))
            default: break
            }
            out.append(byte)
        }
        return out
    }

    private static func hexOfEncoding(_ value: DERReader.Element) -> [UInt8] { hexOfContents(value.encoded) }

    /// `#` and lowercase hex (data2hex).
    private static func hexOfContents(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = [UInt8(ascii: "#")]
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
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
        guard !components.isEmpty, bytes.last.map({ $0 & 0x80 == 0 }) == true else {
            throw DERError("malformed object identifier")
        }
        return components.map(String.init).joined(separator: ".")
    }
}
