// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import NIOCore
import NIOSSL

#if canImport(Glibc)
import Glibc
#endif

/// X.509 credentials in QEMU's `tls-creds-x509` directory layout (crypto/tlscredsx509.c), and
/// the TLS contexts made from them. Any TLS endpoint of cssd (QMP listeners, the metrics
/// endpoint) builds its server context with `makeServerContext()`; `cssctl` uses the client
/// layout and `makeClientContext()`.
///
/// Server directory: `ca-cert.pem` (the CA that signs client certificates: required),
/// `server-cert.pem` (with any intermediates after it), `server-key.pem`, optional
/// `ca-crl.pem`. Client directory: `ca-cert.pem`, `client-cert.pem`, `client-key.pem`.
///
/// The server context is QEMU's `verify-peer=on`: TLS 1.2 or later, and a client certificate is
/// required and must chain to `ca-cert.pem` (BoringSSL verifies it during the handshake).
/// Revocation (`ca-crl.pem`) is checked after the handshake with `check(peer:)`, before the
/// client is served, because swift-nio-ssl takes no CRL.
///
/// Loading reads files: call it off the event loop (start-up, or the reload task).
package struct TLSCredentials: Sendable {
    /// Which side's files to read.
    package enum Endpoint: String, Sendable {
        case server, client
    }

    package let directory: String
    package let endpoint: Endpoint
    /// `ca-cert.pem`: one or more CA certificates.
    package let caCertificates: [NIOSSLCertificate]
    /// `server-cert.pem` or `client-cert.pem`, leaf first.
    package let certificateChain: [NIOSSLCertificate]
    package let privateKey: NIOSSLPrivateKey
    /// `ca-crl.pem`, or empty.
    package let revocations: RevocationList
    /// Verifies the chains clients present (server endpoint); see `ClientChainVerifier`.
    package let verifier: ClientChainVerifier
    private let caSubjects: [[UInt8]]

    /// Reads and checks the directory.
    /// - Throws: `TLSCredentialsError` naming the file and the problem: missing or unreadable,
    ///   no PEM block, an unparsable certificate or key, a certificate outside its validity
    ///   period, a CRL of another issuer.
    package init(directory: String, endpoint: Endpoint) throws(TLSCredentialsError) {
        self.directory = directory
        self.endpoint = endpoint
        func path(_ name: String) -> String { directory.hasSuffix("/") ? directory + name : directory + "/" + name }
        let caFile = path("ca-cert.pem")
        caCertificates = try Self.certificates(caFile)
        let certFile = path("\(endpoint.rawValue)-cert.pem")
        certificateChain = try Self.certificates(certFile)
        let keyFile = path("\(endpoint.rawValue)-key.pem")
        do {
            privateKey = try NIOSSLPrivateKey(bytes: try PEMFile.read(keyFile), format: .pem)
        } catch let error as TLSCredentialsError {
            throw error
        } catch {
            throw .malformed(keyFile, "not a PEM private key (\(error))")
        }
        var subjects: [[UInt8]] = []
        for certificate in caCertificates {
            subjects.append(try Self.identity(certificate, file: caFile).subjectDER)
        }
        caSubjects = subjects
        do {
            verifier = try ClientChainVerifier(caCertificates: caCertificates)
        } catch {
            throw .malformed(caFile, "a CA certificate cannot be read (\(error))")
        }
        let now = time(nil)
        for (file, certificate) in [(caFile, caCertificates[0]), (certFile, certificateChain[0])] {
            if certificate.notValidAfter < now {
                throw .invalid(file, "the certificate expired at \(Self.utc(certificate.notValidAfter))")
            }
            if certificate.notValidBefore > now {
                throw .invalid(file, "the certificate is not valid before \(Self.utc(certificate.notValidBefore))")
            }
        }
        let crlFile = path("ca-crl.pem")
        if endpoint == .server && PEMFile.exists(crlFile) {
            // A CRL of any issuer is taken, as GnuTLS takes it: an intermediate CA that only
            // clients present (not in ca-cert.pem) can have its own CRL here.
            revocations = try RevocationList(pem: try PEMFile.read(crlFile), file: crlFile)
        } else {
            revocations = RevocationList()
        }
        // Catch a key that does not match its certificate now, naming the files.
        do {
            _ = try NIOSSLContext(
                configuration: endpoint == .server ? makeServerConfiguration() : makeClientConfiguration())
        } catch {
            throw .invalid(keyFile, "cannot be used with \(certFile): \(error)")
        }
    }

    /// The server configuration: TLS >= 1.2, this certificate and key, a client certificate
    /// required and verified against the CA (no host name: clients are identified by DN).
    package func makeServerConfiguration() -> TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: certificateChain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
        configuration.minimumTLSVersion = .tlsv12
        configuration.trustRoots = .certificates(caCertificates)
        configuration.certificateVerification = .noHostnameVerification
        configuration.sendCANameList = true
        return configuration
    }

    /// The client configuration: TLS >= 1.2, this certificate and key, the server's
    /// certificate verified against the CA and, when `verifyHostname`, the host name or IP.
    package func makeClientConfiguration(verifyHostname: Bool = true) -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateChain = certificateChain.map { .certificate($0) }
        configuration.privateKey = .privateKey(privateKey)
        configuration.trustRoots = .certificates(caCertificates)
        configuration.certificateVerification = verifyHostname ? .fullVerification : .noHostnameVerification
        return configuration
    }

    /// A server context (share it among connections; make a new one after a reload).
    package func makeServerContext() throws -> NIOSSLContext {
        try NIOSSLContext(configuration: makeServerConfiguration())
    }

    /// A client context.
    package func makeClientContext(verifyHostname: Bool = true) throws -> NIOSSLContext {
        try NIOSSLContext(configuration: makeClientConfiguration(verifyHostname: verifyHostname))
    }

    /// The post-handshake check of a verified client: its identity (the leaf's), or why it is
    /// refused: unreadable, or revoked. `chain` is the chain the verification built (leaf first,
    /// `ClientChainVerifier`); every certificate of it whose issuer has a CRL in `ca-crl.pem` is
    /// checked, as GnuTLS checks the whole chain: a client issued by a revoked intermediate CA is
    /// refused like a revoked client.
    package func check(peer: NIOSSLCertificate?, chain: [NIOSSLCertificate] = []) -> Result<
        CertificateIdentity, PeerRefusal
    > {
        guard let peer else { return .failure(PeerRefusal("the client presented no certificate")) }
        let identity: CertificateIdentity
        do {
            identity = try CertificateIdentity(der: try peer.toDERBytes())
        } catch {
            return .failure(PeerRefusal("cannot read the client certificate: \(error)"))
        }
        if revocations.isRevoked(identity) {
            return .failure(
                PeerRefusal(
                    "the certificate of '\(identity.subject)' is revoked (ca-crl.pem)", identity: identity.subject.text,
                    revoked: true))
        }
        for certificate in chain.dropFirst() {
            guard let issuer = try? CertificateIdentity(der: try certificate.toDERBytes()) else {
                return .failure(
                    PeerRefusal(
                        "cannot read a CA certificate of '\(identity.subject)'s chain", identity: identity.subject.text)
                )
            }
            if revocations.isRevoked(issuer) {
                return .failure(
                    PeerRefusal(
                        "the certificate of '\(identity.subject)' was issued through '\(issuer.subject)', which is revoked "
                            + "(ca-crl.pem)", identity: identity.subject.text, revoked: true))
            }
        }
        return .success(identity)
    }

    /// Why a handshake failed, in words, from the error and the certificate the client sent.
    package func explain(handshakeError error: Error, peer: NIOSSLCertificate?) -> String {
        diagnose(handshakeError: error, peer: peer).reason
    }

    /// Why a handshake failed: its kind (for counting) and the words to log (`explain`).
    package func diagnose(handshakeError error: Error, peer: NIOSSLCertificate?) -> HandshakeFailure {
        let text = "\(error)"
        if text.contains("PEER_DID_NOT_RETURN_A_CERTIFICATE") || text.contains("CERTIFICATE_REQUIRED") {
            return HandshakeFailure(.noCertificate, "the client presented no certificate")
        }
        if text.contains("WRONG_VERSION_NUMBER") || text.contains("HTTP_REQUEST") || text.contains("UNEXPECTED_RECORD")
            || text.contains("PACKET_LENGTH_TOO_LONG") || text.contains("RECORD_LENGTH_MISMATCH")
        {
            return HandshakeFailure(.notTLS, "not a TLS client (plaintext sent to a TLS listener?)")
        }
        if text.contains("UNSUPPORTED_PROTOCOL") {
            return HandshakeFailure(.protocolVersion, "the client offers no TLS version of 1.2 or later")
        }
        if let peer, text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("CERTIFICATE") {
            let now = time(nil)
            let subject = (try? CertificateIdentity(der: try peer.toDERBytes()))
            let name = subject.map { "'\($0.subject)'" } ?? "the client"
            if peer.notValidAfter < now {
                return HandshakeFailure(
                    .badCertificate, "the certificate of \(name) expired at \(Self.utc(peer.notValidAfter))")
            }
            if peer.notValidBefore > now {
                return HandshakeFailure(
                    .badCertificate, "the certificate of \(name) is not valid before \(Self.utc(peer.notValidBefore))")
            }
            if let subject, !caSubjects.contains(subject.issuerDER) {
                return HandshakeFailure(
                    .badCertificate,
                    "the certificate of \(name) was not issued by this CA (issuer '\(subject.issuer)')")
            }
            return HandshakeFailure(.badCertificate, "the certificate of \(name) failed verification (\(text))")
        }
        if let error = error as? NIOSSLError, case .uncleanShutdown = error {
            return HandshakeFailure(.abandoned, "the client closed the connection during the handshake")
        }
        // NIOSSLHandler reports a connection closed mid-handshake as this synthetic error.
        if text.contains("EOF during handshake") {
            return HandshakeFailure(.abandoned, "the client closed the connection during the handshake")
        }
        return HandshakeFailure(.other, text)
    }

    // MARK: Reading

    private static func certificates(_ file: String) throws(TLSCredentialsError) -> [NIOSSLCertificate] {
        let bytes = try PEMFile.read(file)
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMBytes(bytes)
        } catch {
            throw .malformed(file, "not a PEM certificate (\(error))")
        }
        guard !certificates.isEmpty else { throw .malformed(file, "no '-----BEGIN CERTIFICATE-----' block") }
        return certificates
    }

    private static func identity(_ certificate: NIOSSLCertificate, file: String) throws(TLSCredentialsError)
        -> CertificateIdentity
    {
        let der: [UInt8]
        do { der = try certificate.toDERBytes() } catch { throw .malformed(file, "\(error)") }
        do { return try CertificateIdentity(der: der) } catch { throw .malformed(file, "\(error)") }
    }

    /// `2026-11-30 22:00:00 UTC`.
    static func utc(_ time: time_t) -> String {
        var value = time
        var parts = tm()
        gmtime_r(&value, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) UTC"
    }
}

/// Why a TLS handshake failed: a kind, stable enough to count by (a metrics label), and the
/// reason in words for the log. The kind is one of the handshake's refusal reasons:
/// `noCertificate`, `notTLS`, `protocolVersion`, `badCertificate`, `abandoned`, `other`.
package struct HandshakeFailure: Sendable, Equatable {
    package let kind: TLSRefusalReason
    package let reason: String

    package init(_ kind: TLSRefusalReason, _ reason: String) {
        self.kind = kind
        self.reason = reason
    }
}

/// Why a client that completed the TLS handshake is not served (revoked, not authorized).
package struct PeerRefusal: Error, CustomStringConvertible, Sendable {
    package let description: String
    /// The client certificate's DN, when it could be read.
    package let identity: String?
    /// The certificate is on the CRL (else: absent or unreadable).
    package let revoked: Bool
    package init(_ description: String, identity: String? = nil, revoked: Bool = false) {
        self.description = description
        self.identity = identity
        self.revoked = revoked
    }
}

/// A credentials directory that cannot be used; each case names the file.
package enum TLSCredentialsError: Error, CustomStringConvertible, Sendable {
    case unreadable(String, String)
    case malformed(String, String)
    case invalid(String, String)

    package var description: String {
        switch self {
        case .unreadable(let file, let reason): return "cannot read \(file): \(reason)"
        case .malformed(let file, let reason): return "\(file): \(reason)"
        case .invalid(let file, let reason): return "\(file): \(reason)"
        }
    }
}
