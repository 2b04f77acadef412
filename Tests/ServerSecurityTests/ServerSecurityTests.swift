// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Foundation
import NIOSSL
import TestSupport
import Testing

@testable import ServerSecurity
@testable import X509Credentials

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
        // gnutls_x509_crt_get_dn, QEMU's call: the encoded order (not RFC 4514's reversed one),
        // the multi-valued RDN in its encoded order too.
        #expect(
            identity.subject.text
                == ##"DC=org,DC=example,C=GB,O=Example\, Inc.,OU=Ops+UID=42,CN=\#mgmt \<1\>\; \"x\"\ "##)
        #expect(identity.issuer == identity.subject)
    }

    /// Tests/fixtures/dn: certificates of every attribute name GnuTLS knows, every string type,
    /// specials, control characters, NUL and bytes that are not UTF-8, each with what GnuTLS
    /// 3.7.9's gnutls_x509_crt_get_dn gave (make-goldens.sh): the same bytes, or the same refusal.
    @Test func equalToGnuTLSOnTheGoldens() throws {
        let directory = Repository.fixtures + "/dn"
        let table = String(decoding: try PEMFile.read(directory + "/expected.tsv"), as: UTF8.self)
        var checked = 0
        for line in table.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            try #require(fields.count == 2)
            let name = String(fields[0])
            let pem = try PEMFile.read(directory + "/certs/\(name).pem")
            // BoringSSL refuses some of these (bytes that are not UTF-8): read the DER directly.
            let der = try #require(PEMFile.blocks(pem, label: "CERTIFICATE").first)
            if fields[1] == "error" {
                #expect(throws: TLSCredentialsError.self, "\(name)") { try CertificateIdentity(der: der) }
            } else {
                let expected = hexBytes(String(fields[1]))
                let got = try CertificateIdentity(der: der).subject.bytes
                #expect(got == expected, "\(name): \(String(decoding: got, as: UTF8.self))")
            }
            checked += 1
        }
        #expect(checked >= 39)
    }

    @Test func anEmptyDirectoryStringMakesTheNameUnreadable() throws {
        // Name { RDN { CN = UTF8String "" } }: GnuTLS refuses it, and QEMU the client.
        let name: [UInt8] = [0x30, 0x0b, 0x31, 0x09, 0x30, 0x07, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x00]
        var reader = DERReader(name)
        let element = try reader.read(DERReader.sequence, "Name")
        #expect(throws: DERError.self) { try DistinguishedName(name: element) }
    }

    @Test func malformedDERIsAnErrorNotACrash() {
        for bytes: [UInt8] in [[], [0x30], [0x30, 0x85, 1, 1, 1, 1, 1], [0x30, 0x03, 0x30, 0x05, 0x02]] {
            #expect(throws: TLSCredentialsError.self) { try CertificateIdentity(der: bytes) }
        }
    }
}

private func hexBytes(_ hex: String) -> [UInt8] {
    let digits = Array(hex.utf8)
    return stride(from: 0, to: digits.count - 1, by: 2).map {
        UInt8(String(decoding: digits[$0...($0 + 1)], as: UTF8.self), radix: 16)!
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

@Suite struct AuthzMatchesQEMUsBytesTests {
    private func golden(_ name: String) throws -> CertificateIdentity {
        let pem = try PEMFile.read(Repository.fixtures + "/dn/certs/\(name).pem")
        return try CertificateIdentity(der: try #require(PEMFile.blocks(pem, label: "CERTIFICATE").first))
    }

    @Test func aNULInTheNameCannotCutAMatchShort() throws {
        // CN "mgmt\0,O=Other": GnuTLS (and so cssd) writes the value as hex; a C string of the
        // raw value would have matched "CN=mgmt" exactly and "…CN=mgmt*" as a glob.
        let intruder = try golden("nul").subject
        let policy = try AuthzPolicy(
            json: Array(
                #"{"policy": "deny", "rules": [{"match": "O=Example,CN=mgmt*", "policy": "allow", "format": "glob"}, {"match": "O=Example,CN=mgmt", "policy": "allow"}]}"#
                    .utf8), file: "authz.json")
        #expect(!intruder.bytes.contains(0))
        #expect(policy.decide(intruder) == .deny)
    }

    @Test func controlCharactersAreMatchedAsQEMUMatchesThem() throws {
        let name = try golden("control").subject
        #expect(name.text == "O=Example,CN=evil\nforged line\r\tx")
        let exact = try AuthzPolicy(
            json: Array(
                #"{"policy": "deny", "rules": [{"match": "O=Example,CN=evil\nforged line\r\tx", "policy": "allow"}]}"#
                    .utf8),
            file: "authz.json")
        #expect(exact.decide(name) == .allow)
        let glob = try AuthzPolicy(
            json: Array(#"{"rules": [{"match": "O=Example,CN=evil", "policy": "allow", "format": "glob"}]}"#.utf8),
            file: "authz.json")
        #expect(glob.decide(name) == .deny)
    }

    @Test func bytesThatAreNotUTF8AreMatchedAsBytes() throws {
        let name = try golden("utf8-invalid").subject
        #expect(Array(name.bytes.suffix(4)) == [0x57, 0xff, 0xfe, 0x5a])
        let glob = try AuthzPolicy(
            json: Array(#"{"rules": [{"match": "O=Example,CN=W??Z", "policy": "allow", "format": "glob"}]}"#.utf8),
            file: "authz.json")
        #expect(glob.decide(name) == .allow)
        // The U+FFFD that `text` shows is not what is matched.
        let shown = try AuthzPolicy(
            json: Array(("{\"rules\": [{\"match\": \"" + name.text + "\", \"policy\": \"allow\"}]}").utf8),
            file: "authz.json")
        #expect(shown.decide(name) == .deny)
    }

    @Test func aRuleWithNULIsRefused() {
        #expect(throws: AuthzPolicyError.self) {
            try AuthzPolicy(
                json: Array(#"{"rules": [{"match": "CN=a\u0000b", "policy": "allow"}]}"#.utf8), file: "authz.json")
        }
    }
}

/// `glob` rules match as QEMU's authz-list matches them: GLib's g_pattern_match_simple, checked
/// against GLib itself (libglib-2.0, which QEMU links; the test is skipped where it is missing).
@Suite struct GlobPatternTests {
    private typealias Match = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>) -> Int32

    private static let glib: Match? = {
        guard let library = dlopen("libglib-2.0.so.0", RTLD_NOW),
            let symbol = dlsym(library, "g_pattern_match_simple")
        else { return nil }
        return unsafeBitCast(symbol, to: Match.self)
    }()

    private func glibMatches(_ pattern: [UInt8], _ string: [UInt8]) -> Bool {
        (pattern + [0]).withUnsafeBufferPointer { p in
            (string + [0]).withUnsafeBufferPointer { s in
                p.withMemoryRebound(to: CChar.self) { p in
                    s.withMemoryRebound(to: CChar.self) { s in Self.glib!(p.baseAddress!, s.baseAddress!) != 0 }
                }
            }
        }
    }

    @Test func theCasesThatDifferFromFnmatch() {
        // Backslashes and brackets are plain characters; ? is one UTF-8 character.
        #expect(
            GlobPattern.matches(Array(#"O=Example,CN=Smith\, John"#.utf8), Array(#"O=Example,CN=Smith\, John"#.utf8)))
        #expect(!GlobPattern.matches(Array("*,CN=[ops]*".utf8), Array("O=Example,CN=ops1".utf8)))
        #expect(GlobPattern.matches(Array("*,CN=[ops]*".utf8), Array("O=Example,CN=[ops]1".utf8)))
        #expect(GlobPattern.matches(Array("O=Example,CN=J?rgen".utf8), Array("O=Example,CN=Jürgen".utf8)))
        #expect(!GlobPattern.matches(Array("O=Example,CN=J??rgen".utf8), Array("O=Example,CN=Jürgen".utf8)))
    }

    @Test(.enabled(if: GlobPatternTests.glib != nil, "libglib-2.0 is not installed"))
    func equalToGLibOnRandomPatterns() {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [[UInt8]] = [
            Array("a".utf8), Array("b".utf8), Array(",".utf8), Array("\\".utf8), Array("[".utf8), Array("]".utf8),
            Array("=".utf8), Array("ü".utf8), Array("✓".utf8),
        ]
        // Valid UTF-8 only: GLib asserts on anything else (g_utf8_strreverse), and BoringSSL
        // refuses a certificate whose UTF8String is not UTF-8 before its DN is read.
        for _ in 0..<20_000 {
            var string: [UInt8] = []
            for _ in 0..<Int.random(in: 0...8, using: &generator) {
                string += alphabet.randomElement(using: &generator)!
            }
            var pattern: [UInt8] = []
            for _ in 0..<Int.random(in: 0...6, using: &generator) {
                switch Int.random(in: 0..<4, using: &generator) {
                case 0: pattern += Array("*".utf8)
                case 1: pattern += Array("?".utf8)
                default: pattern += alphabet.randomElement(using: &generator)!
                }
            }
            let expected = glibMatches(pattern, string)
            #expect(
                GlobPattern.matches(pattern, string) == expected,
                "pattern \(pattern) string \(string): GLib says \(expected)")
            if GlobPattern.matches(pattern, string) != expected { return }
        }
    }
}
