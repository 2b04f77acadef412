// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import NIOConcurrencyHelpers
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
/// The search is bounded, since chain building over what a client presents can be made to
/// explode (layers of certificates that each sign all of the next: K^L paths): at most
/// `maxChainLength` certificates presented (GnuTLS's default verify depth), at most
/// `maxIssuerLookups` issuer look-ups among them, and at most `maxConcurrent` verifications at
/// once in the process; beyond any of these the client is refused. GnuTLS, which sorts the
/// presented list instead of searching it, refuses such chains as quickly.
///
/// Runs the verification off the event loop (a task); the handshake waits for the promise.
package struct ClientChainVerifier: Sendable {
    /// Most certificates a client may present (GnuTLS's DEFAULT_MAX_VERIFY_DEPTH).
    static let maxChainLength = 16
    /// Most issuer look-ups in the presented intermediates for one verification (a chain of 16
    /// needs 15).
    static let maxIssuerLookups = 32
    /// Most verifications in progress at once.
    static let maxConcurrent = 8
    private static let inProgress = NIOLockedValueBox(0)

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
        guard presented.count <= Self.maxChainLength else { return promise.succeed(.failed) }
        let admitted = Self.inProgress.withLockedValue { count in
            guard count < Self.maxConcurrent else { return false }
            count += 1
            return true
        }
        guard admitted else { return promise.succeed(.failed) }
        Task {
            let result = await Self.verify(presented, roots: roots)
            Self.inProgress.withLockedValue { $0 -= 1 }
            promise.succeed(result)
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
            IssuerKeyUsagePolicy()
            ClientAuthenticationPolicy()
        }
        let store = CertificateStore(custom: BudgetedStore(intermediates, lookups: maxIssuerLookups))
        switch await verifier.validate(leaf: leaf, intermediates: store) {
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
/// names `clientAuth` or any purpose (RFC 5280 section 4.2.1.12). A critical subject
/// alternative name is accepted: a client is known by its DN, its SAN is not checked (as GnuTLS
/// does for a client).
struct ClientAuthenticationPolicy: VerifierPolicy {
    let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [
        .X509ExtensionID.extendedKeyUsage, .X509ExtensionID.subjectAlternativeName,
    ]

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

/// Every issuer of the chain with a key usage extension may sign certificates (`keyCertSign`,
/// RFC 5280 section 4.2.1.3); RFC5280Policy only claims the extension.
struct IssuerKeyUsagePolicy: VerifierPolicy {
    let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [.X509ExtensionID.keyUsage]

    func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) -> PolicyEvaluationResult {
        for issuer in chain.dropFirst() {
            let usage: KeyUsage?
            do {
                usage = try issuer.extensions.keyUsage
            } catch {
                return .failsToMeetPolicy(reason: "the key usage of an issuer cannot be read")
            }
            if let usage, !usage.keyCertSign {
                return .failsToMeetPolicy(reason: "an issuer's key usage does not allow signing certificates")
            }
        }
        return .meetsPolicy
    }
}

/// The presented intermediates, looked up by subject at most `lookups` times: the search for a
/// path through them ends there.
struct BudgetedStore: CustomCertificateStore {
    private var bySubject: [X509.DistinguishedName: [Certificate]] = [:]
    private let budget: Budget

    final class Budget: Sendable {
        private let left: NIOLockedValueBox<Int>
        init(_ lookups: Int) { left = NIOLockedValueBox(lookups) }
        func take() -> Bool {
            left.withLockedValue { left in
                guard left > 0 else { return false }
                left -= 1
                return true
            }
        }
    }

    init(_ certificates: [Certificate], lookups: Int) {
        budget = Budget(lookups)
        append(contentsOf: certificates)
    }

    subscript(subject: X509.DistinguishedName) -> [Certificate]? {
        get async { budget.take() ? bySubject[subject] : nil }
    }

    func contains(_ certificate: Certificate) async -> Bool {
        bySubject[certificate.subject]?.contains(certificate) ?? false
    }

    mutating func append(contentsOf certificates: some Sequence<Certificate>) {
        for certificate in certificates { bySubject[certificate.subject, default: []].append(certificate) }
    }

    static func == (lhs: Self, rhs: Self) -> Bool { lhs.bySubject == rhs.bySubject }
    func hash(into hasher: inout Hasher) { hasher.combine(bySubject) }
}
