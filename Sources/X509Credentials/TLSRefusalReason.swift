// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// Why a TLS client was not served: in the handshake (`HandshakeFailure.kind`) or after it.
/// The raw values are the `reason` label of the refusal counters (API/metrics.md).
package enum TLSRefusalReason: String, Sendable, CaseIterable {
    /// The client sent no certificate (QEMU's verify-peer=on requires one).
    case noCertificate = "no-certificate"
    /// The bytes were not TLS (plain HTTP or QMP sent to a TLS port).
    case notTLS = "not-tls"
    /// No common TLS version of 1.2 or later.
    case protocolVersion = "protocol-version"
    /// The certificate did not verify: another CA, expired, not yet valid (or, after the
    /// handshake, unreadable).
    case badCertificate = "bad-certificate"
    /// The certificate is on the CRL (`ca-crl.pem`).
    case revoked
    /// The `--tls-authz` policy denies the DN.
    case unauthorized
    /// No completed handshake within the timeout.
    case timeout
    /// The client closed the connection before the handshake completed.
    case abandoned
    /// Anything else: what BoringSSL reported, or a failure to install the protocol's handlers.
    case other
}
