// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// A minimal DER reader (ITU-T X.690): enough of X.509 (RFC 5280) to read a certificate's
/// serial number, issuer and subject, and a CRL's issuer and revoked serial numbers.
///
/// Only definite lengths (DER has no others); a truncated or malformed element is a
/// `DERError`, never a crash. Cost: O(bytes) for a walk over the elements it is asked for.
struct DERReader {
    /// One element: its tag byte, its contents, and its whole encoding (tag and length too).
    struct Element {
        let tag: UInt8
        let contents: ArraySlice<UInt8>
        let encoded: ArraySlice<UInt8>

        var reader: DERReader { DERReader(contents) }
    }

    private var bytes: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }
    init(_ bytes: [UInt8]) { self.bytes = bytes[...] }

    var isAtEnd: Bool { bytes.isEmpty }

    /// The tag of the next element, without reading it.
    var nextTag: UInt8? { bytes.first }

    /// Reads the next element; with `tag`, it must have that tag.
    mutating func read(_ tag: UInt8? = nil, _ what: String) throws(DERError) -> Element {
        let start = bytes.startIndex
        guard let found = bytes.first else { throw DERError("\(what): missing") }
        if let tag, found != tag {
            throw DERError("\(what): tag 0x\(String(found, radix: 16)), expected 0x\(String(tag, radix: 16))")
        }
        var index = start + 1
        if found & 0x1f == 0x1f {
            // The high-tag-number form (X.690 8.1.2.4): more tag octets while bit 8 is set.
            while index < bytes.endIndex, bytes[index] & 0x80 != 0 { index += 1 }
            index += 1
        }
        guard index < bytes.endIndex else { throw DERError("\(what): truncated") }
        var length = Int(bytes[index])
        index += 1
        if length & 0x80 != 0 {
            let count = length & 0x7f
            guard count >= 1, count <= 4, index + count <= bytes.endIndex else { throw DERError("\(what): bad length") }
            length = 0
            for byte in bytes[index..<(index + count)] { length = length << 8 | Int(byte) }
            index += count
        }
        guard length <= bytes.endIndex - index else { throw DERError("\(what): truncated") }
        let end = index + length
        let element = Element(tag: found, contents: bytes[index..<end], encoded: bytes[start..<end])
        bytes = bytes[end...]
        return element
    }

    static let sequence: UInt8 = 0x30
    static let set: UInt8 = 0x31
    static let integer: UInt8 = 0x02
    static let objectIdentifier: UInt8 = 0x06
}

/// A malformed DER encoding; `description` names the element.
struct DERError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The parts of an X.509 certificate (RFC 5280 section 4.1) that authorization and revocation need.
package struct CertificateIdentity: Sendable, Equatable {
    /// The subject's distinguished name as QEMU matches it (`DistinguishedName`).
    package let subject: DistinguishedName
    /// The issuer's distinguished name, written the same way.
    package let issuer: DistinguishedName
    /// The issuer Name's DER encoding: compared with a CRL's issuer.
    let issuerDER: [UInt8]
    /// The subject Name's DER encoding: compared with an issuer.
    let subjectDER: [UInt8]
    /// The serial number's content octets (two's complement, as encoded).
    let serial: [UInt8]

    /// Reads a DER certificate.
    /// - Throws: `TLSCredentialsError.malformed` naming the element that could not be read.
    package init(der: [UInt8]) throws(TLSCredentialsError) {
        do throws(DERError) {
            var certificate = DERReader(der)
            var outer = try certificate.read(DERReader.sequence, "Certificate").reader
            var tbs = try outer.read(DERReader.sequence, "tbsCertificate").reader
            if tbs.nextTag == 0xa0 { _ = try tbs.read(0xa0, "version") }
            serial = Array(try tbs.read(DERReader.integer, "serialNumber").contents)
            _ = try tbs.read(DERReader.sequence, "signature")
            let issuerName = try tbs.read(DERReader.sequence, "issuer")
            _ = try tbs.read(DERReader.sequence, "validity")
            let subjectName = try tbs.read(DERReader.sequence, "subject")
            issuerDER = Array(issuerName.encoded)
            subjectDER = Array(subjectName.encoded)
            issuer = try DistinguishedName(name: issuerName)
            subject = try DistinguishedName(name: subjectName)
        } catch {
            throw TLSCredentialsError.malformed("certificate", "\(error)")
        }
    }
}
