// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import NIOSSL
import ServerSecurity
import Testing

/// Made by `openssl req -x509 -multivalue-rdn -subj '/DC=org/DC=example/C=GB/O=Example, Inc./OU=Ops+UID=42/CN=#mgmt <1>; "x" '`:
/// every escape of RFC 4514, a multi-valued RDN and attributes GnuTLS names DC and UID.
private let trickyCertificate = """
    -----BEGIN CERTIFICATE-----
    MIICcDCCAhegAwIBAgIUGb0lgKqgn5j6J6Vm+BqX3I410DwwCgYIKoZIzj0EAwIw
    gY0xEzARBgoJkiaJk/IsZAEZFgNvcmcxFzAVBgoJkiaJk/IsZAEZFgdleGFtcGxl
    MQswCQYDVQQGEwJHQjEWMBQGA1UECgwNRXhhbXBsZSwgSW5jLjEeMAoGA1UECwwD
    T3BzMBAGCgmSJomT8ixkAQEMAjQyMRgwFgYDVQQDDA8jbWdtdCA8MT47ICJ4IiAw
    HhcNMjYxMTMwMjI1MzQ0WhcNMjYxMjAxMjI1MzQ0WjCBjTETMBEGCgmSJomT8ixk
    ARkWA29yZzEXMBUGCgmSJomT8ixkARkWB2V4YW1wbGUxCzAJBgNVBAYTAkdCMRYw
    FAYDVQQKDA1FeGFtcGxlLCBJbmMuMR4wCgYDVQQLDANPcHMwEAYKCZImiZPyLGQB
    AQwCNDIxGDAWBgNVBAMMDyNtZ210IDwxPjsgIngiIDBZMBMGByqGSM49AgEGCCqG
    SM49AwEHA0IABA/olqFOo1tDxMhaabARi7IQu9la9CiEsdATlsPv31R4n/1S01Lo
    oUG7BdxTlTDYgZIgblttRajH7NYtGvOBEhqjUzBRMB0GA1UdDgQWBBRlDbK2WUaN
    yZQ/kILobhdnjzYzOzAfBgNVHSMEGDAWgBRlDbK2WUaNyZQ/kILobhdnjzYzOzAP
    BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIERIKxhaZOCzc1Y2dlCm
    F78lXSMywKnG7upLLaqGcIq9AiA0iWKo1farV/glWIt52oVgyt7lCVkpelpwiEVu
    MHilWw==
    -----END CERTIFICATE-----
    """

@Suite struct DistinguishedNameTests {
    @Test func writtenAsGnuTLSWritesIt() throws {
        let certificate = try NIOSSLCertificate.fromPEMBytes(Array(trickyCertificate.utf8))[0]
        let identity = try CertificateIdentity(der: try certificate.toDERBytes())
        // openssl -nameopt RFC2253 prints the same but for the order inside the multi-valued
        // RDN (it reverses that too; GnuTLS keeps the encoded order).
        #expect(
            identity.subject == ##"CN=\#mgmt \<1\>\; \"x\"\ ,OU=Ops+UID=42,O=Example\, Inc.,C=GB,DC=example,DC=org"##)
        #expect(identity.issuer == identity.subject)
    }

    @Test func malformedDERIsAnErrorNotACrash() {
        for bytes: [UInt8] in [[], [0x30], [0x30, 0x85, 1, 1, 1, 1, 1], [0x30, 0x03, 0x30, 0x05, 0x02]] {
            #expect(throws: TLSCredentialsError.self) { try CertificateIdentity(der: bytes) }
        }
    }
}

@Suite struct AuthzPolicyTests {
    private func policy(_ text: String) throws -> AuthzPolicy {
        try AuthzPolicy(json: Array(text.utf8), file: "authz.json")
    }

    @Test func firstMatchDecidesThenTheDefault() throws {
        let p = try policy(
            #"{"policy": "deny", "rules": [{"match": "CN=bad,O=Example,C=GB", "policy": "deny"}, "#
                + #"{"match": "CN=*,O=Example,C=GB", "policy": "allow", "format": "glob"}]}"#)
        #expect(p.decide("CN=bad,O=Example,C=GB") == .deny)
        #expect(p.decide("CN=mgmt,O=Example,C=GB") == .allow)
        #expect(p.decide("CN=mgmt,O=Other,C=GB") == .deny)
        // exact is exact: no glob characters.
        let exact = try policy(#"{"policy": "deny", "rules": [{"match": "CN=*", "policy": "allow"}]}"#)
        #expect(exact.decide("CN=mgmt") == .deny)
        #expect(exact.decide("CN=*") == .allow)
        #expect(try policy(#"{"rules": []}"#).decide("anyone") == .deny)
        #expect(try policy(#"{"policy": "allow"}"#).decide("anyone") == .allow)
    }

    @Test(arguments: [
        (#"{"policy": "deny""#, "authz.json:1:"),
        (#"[]"#, "expected a JSON object"),
        (#"{"policy": "deny", "rules": {}}"#, "'rules' must be an array"),
        (#"{"policy": "deny", "rules": [{"policy": "allow"}]}"#, "rules[0] lacks 'match'"),
        (#"{"policy": "deny", "rules": [{"match": "x", "policy": "allow", "extra": 1}]}"#, "unexpected member 'extra'"),
        (#"{"policy": "deny", "policy": "allow"}"#, "duplicate"),
    ])
    func badFilesNameTheProblem(text: String, message: String) {
        do {
            _ = try policy(text)
            Issue.record("accepted \(text)")
        } catch {
            #expect("\(error)".contains(message), "\(error)")
        }
    }
}
