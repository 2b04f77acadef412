// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// The revoked serial numbers of `ca-crl.pem` (RFC 5280 section 5.1), by issuer.
///
/// QEMU (gnutls_certificate_set_x509_crl_file) rejects a client certificate whose issuer has a
/// CRL listing its serial number. The same here: a certificate is revoked when a CRL of the
/// file names its issuer (compared as DER) and lists its serial number; every certificate of
/// the client's verified chain is checked so. The file is part of the trusted credentials
/// directory, like `ca-cert.pem`; its CRLs may come from any issuer (an intermediate CA that
/// only clients present included), as GnuTLS takes them.
package struct RevocationList: Sendable {
    /// Revoked serial numbers (content octets) by issuer Name DER.
    private var revoked: [[UInt8]: Set<[UInt8]>] = [:]

    /// Number of revoked serial numbers over all CRLs.
    package var count: Int { revoked.values.reduce(0) { $0 + $1.count } }

    /// An empty list: nothing revoked.
    package init() {}

    /// Reads the CRLs (`-----BEGIN X509 CRL-----` blocks) of a PEM file's contents.
    /// - Throws: `TLSCredentialsError.malformed` naming the file and the element.
    init(pem: [UInt8], file: String) throws(TLSCredentialsError) {
        let blocks = PEMFile.blocks(pem, label: "X509 CRL")
        guard !blocks.isEmpty else { throw .malformed(file, "no '-----BEGIN X509 CRL-----' block") }
        for der in blocks {
            do throws(DERError) {
                var list = DERReader(der)
                var outer = try list.read(DERReader.sequence, "CertificateList").reader
                var tbs = try outer.read(DERReader.sequence, "tbsCertList").reader
                if tbs.nextTag == DERReader.integer { _ = try tbs.read(DERReader.integer, "version") }
                _ = try tbs.read(DERReader.sequence, "signature")
                let issuer = Array(try tbs.read(DERReader.sequence, "issuer").encoded)
                _ = try tbs.read(nil, "thisUpdate")
                if tbs.nextTag == 0x17 || tbs.nextTag == 0x18 { _ = try tbs.read(nil, "nextUpdate") }
                var serials = revoked[issuer] ?? []
                if tbs.nextTag == DERReader.sequence {
                    var entries = try tbs.read(DERReader.sequence, "revokedCertificates").reader
                    while !entries.isAtEnd {
                        var entry = try entries.read(DERReader.sequence, "revokedCertificate").reader
                        serials.insert(Array(try entry.read(DERReader.integer, "userCertificate").contents))
                    }
                }
                revoked[issuer] = serials
            } catch {
                throw .malformed(file, "\(error)")
            }
        }
    }

    /// Whether the certificate is listed by its issuer's CRL.
    package func isRevoked(_ certificate: CertificateIdentity) -> Bool {
        revoked[certificate.issuerDER]?.contains(certificate.serial) ?? false
    }

}
