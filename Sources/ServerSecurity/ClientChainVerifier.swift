// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import NIOCore
import NIOSSL
import SwiftASN1
import X509

/// Verifies the certificate chain a TLS client presents, and keeps the chain it verified so that
/// every certificate of it can be checked against the CRLs once the handshake completed
/// (`TLSCredentials.check(peer:chain:)`).
///
/// Why not BoringSSL's own verification: swift-nio-ssl takes no CRL, and after its verification
/// only the leaf is known; an intermediate CA that the client presents and the root's CRL revokes
/// would go unnoticed, where QEMU (GnuTLS, `gnutls_certificate_verify_peers2`) refuses the client.
/// So the presented chain goes to swift-certificates' `Verifier`: chain building from the client's
/// intermediates to a root of `ca-cert.pem`, signatures, RFC 5280 (validity of every certificate,
/// basic constraints, name constraints, critical extensions), and a client certificate must not
/// be limited by its extended key usage to other purposes than TLS client authentication (as
/// BoringSSL's `SSL_CLIENT` purpose check). The chain it builds is handed to swift-nio-ssl as
/// the verification's metadata (`NIOSSLHandler.peerValidatedCertificateChain`).
///
/// Runs the verification off the event loop (a task); the handshake waits for the promise.
package struct ClientChainVerifier: Sendable {
    private let roots: CertificateStore

    /// - Throws: an error when a CA certificate cannot be read by swift-certificates.
    init(caCertificates: [NIOSSLCertificate]) throws {
        roots = CertificateStore(try caCertificates.map { try Certificate(derEncoded: try $0.toDERBytes()) })
    }

    /// The server handler of one connection, verifying with this verifier.
    package func makeServerHandler(context: NIOSSLContext) -> NIOSSLServerHandler {
        NIOSSLServerHandler(context: context, customVerificationCallbackWithMetadata: verify)
    }

    /// NIOSSL's custom verification: `presented` is the client's chain, leaf first.
    func verify(
        _ presented: [NIOSSLCertificate], _ promise: EventLoopPromise<NIOSSLVerificationResultWithMetadata>
    ) {
        let roots = self.roots
        Task {
            promise.succeed(await Self.verify(presented, roots: roots))
        }
    }

    static func verify(_ presented: [NIOSSLCertificate], roots: CertificateStore) async
        -> NIOSSLVerificationResultWithMetadata
    {
        guard let first = presented.first else { return .failed }
        let leaf: Certificate
        let intermediates: [Certificate]
        do {
            leaf = try Certificate(derEncoded: try first.toDERBytes())
            intermediates = try presented.dropFirst().map { try Certificate(derEncoded: try $0.toDERBytes()) }
        } catch {
            return .failed
        }
        var verifier = Verifier(rootCertificates: roots) {
            RFC5280Policy()
            ClientAuthenticationPolicy()
        }
        switch await verifier.validate(leaf: leaf, intermediates: CertificateStore(intermediates)) {
        case .validCertificate(let chain):
            do {
                let certificates = try chain.map { certificate -> NIOSSLCertificate in
                    var serializer = DER.Serializer()
                    try serializer.serialize(certificate)
                    return try NIOSSLCertificate(bytes: serializer.serializedBytes, format: .der)
                }
                return .certificateVerified(VerificationMetadata(NIOSSL.ValidatedCertificateChain(certificates)))
            } catch {
                return .failed
            }
        case .couldNotValidate:
            return .failed
        }
    }
}

/// The leaf may be used for TLS client authentication: no extended key usage, or one that
/// names `clientAuth` or any purpose (RFC 5280 section 4.2.1.12).
struct ClientAuthenticationPolicy: VerifierPolicy {
    let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [.X509ExtensionID.extendedKeyUsage]

    func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) -> PolicyEvaluationResult {
        let leaf = chain.leaf
        let usage: ExtendedKeyUsage?
        do {
            usage = try leaf.extensions.extendedKeyUsage
        } catch {
            return .failsToMeetPolicy(reason: "the extended key usage of the client certificate cannot be read")
        }
        guard let usage else { return .meetsPolicy }
        if usage.contains(.clientAuth) || usage.contains(.any) { return .meetsPolicy }
        return .failsToMeetPolicy(reason: "the client certificate is not for TLS client authentication")
    }
}
