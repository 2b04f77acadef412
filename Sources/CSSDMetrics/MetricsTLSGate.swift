// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Logging
import NIOCore
import NIOSSL
import NIOTLS
import Prometheus
import ServerSecurity

/// Stands between the metrics endpoint's NIOSSLServerHandler and its HTTP codec, as QMP's
/// TLSGate does for QMP (Sources/QMPServer/TLSGate.swift), with the same checks: the handshake
/// must complete within `timeout` (`--tls-handshake-timeout`); the verified client certificate
/// must not be on the CRL (`ca-crl.pem`, checked after the handshake: swift-nio-ssl takes no
/// CRL); its DN must be allowed by the `--tls-authz` policy when there is one. Only then does
/// `serve` install HTTP (whose own request timeout starts there). Any failure is logged with
/// its reason, counted by `MetricsTLSRefusals`, and closes this connection only.
///
/// The endpoint's connection bound (`MetricsEndpoint.Configuration.maxConnections`) counts
/// connections from accept, so it bounds handshakes in progress too; they take none of QMP's
/// `--max-tls-handshakes` slots, so that scrapers cannot lock QMP clients out.
///
/// Runs on the server's event loop; one instance per connection.
final class MetricsTLSGate: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let snapshot: TransportSecurity.Snapshot
    private let timeout: TimeAmount
    private let listener: String
    private let peer: String
    private let logger: Logger
    private let refusals: MetricsTLSRefusals
    private let serve: (ChannelPipeline.SynchronousOperations) throws -> Void
    private var timer: Scheduled<Void>?
    private var settled = false

    /// - Parameters:
    ///   - snapshot: the credentials and policy current when the connection was accepted (a
    ///     reload replaces them for later connections only).
    ///   - timeout: how long the client has to complete the handshake.
    ///   - listener: the endpoint's address, for the log.
    ///   - peer: the client's address, for the log.
    ///   - serve: installs the HTTP handlers at the end of the pipeline (after this gate).
    init(
        snapshot: TransportSecurity.Snapshot, timeout: TimeAmount, listener: String, peer: String, logger: Logger,
        refusals: MetricsTLSRefusals, serve: @escaping (ChannelPipeline.SynchronousOperations) throws -> Void
    ) {
        self.snapshot = snapshot
        self.timeout = timeout
        self.listener = listener
        self.peer = peer
        self.logger = logger
        self.refusals = refusals
        self.serve = serve
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        let timeout = self.timeout
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            guard !settled else { return }
            refuse(
                channel: channel, .timeout, "metrics: TLS handshake timed out",
                reason: "no completed handshake within \(timeout.nanoseconds / 1_000_000) ms", dn: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // NIOSSL passes no application data before the handshake completed, and the gate leaves
        // the pipeline as soon as the client is authorized; nothing reaches HTTP otherwise.
        guard settled, context.channel.isActive else { return }
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent, !settled else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        settle()
        let certificate = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).peerCertificate
        let identity: CertificateIdentity
        switch snapshot.credentials.check(peer: certificate) {
        case .success(let found): identity = found
        case .failure(let refusal):
            refuse(
                channel: context.channel, refusal.revoked ? .revoked : .badCertificate, "metrics: TLS client refused",
                reason: refusal.description, dn: refusal.identity)
            return
        }
        if let authz = snapshot.authz, authz.decide(identity.subject) == .deny {
            refuse(
                channel: context.channel, .unauthorized, "metrics: TLS client not authorized",
                reason: "the policy denies '\(identity.subject)'", dn: identity.subject)
            return
        }
        // Debug, not info: Prometheus reconnects at most once per scrape, but a fleet's worth of
        // "authorized" lines says nothing an operator acts on.
        logger.debug(
            "metrics: TLS client authorized",
            metadata: ["listener": "\(listener)", "peer": "\(peer)", "dn": "\(identity.subject)"])
        do {
            try serve(context.pipeline.syncOperations)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        } catch {
            refuse(
                channel: context.channel, .other, "metrics: TLS client not served", reason: "\(error)",
                dn: identity.subject)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard !settled else {
            context.fireErrorCaught(error)
            return
        }
        settle()
        let certificate = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).peerCertificate
        let failure = snapshot.credentials.diagnose(handshakeError: error, peer: certificate)
        refuse(
            channel: context.channel, MetricsTLSRefusals.Reason(failure.kind), "metrics: TLS handshake failed",
            reason: failure.reason, dn: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // NIOSSL reports a close during the handshake through errorCaught first; this catches
        // what is left (a close before NIOSSL started its handshake).
        if !settled {
            settle()
            refusals.count(.abandoned)
        }
        context.fireChannelInactive()
    }

    private func settle() {
        settled = true
        timer?.cancel()
        timer = nil
    }

    private func refuse(
        channel: Channel, _ kind: MetricsTLSRefusals.Reason, _ message: Logger.Message, reason: String, dn: String?
    ) {
        settle()
        refusals.count(kind)
        var metadata: Logger.Metadata = ["listener": "\(listener)", "peer": "\(peer)", "reason": "\(reason)"]
        if let dn { metadata["dn"] = "\(dn)" }
        // A scraper that leaves mid-handshake (a port probe) is routine; the rest is a
        // misconfigured or unwelcome client, worth a warning as on QMP's listeners.
        if kind == .abandoned {
            logger.info(message, metadata: metadata)
        } else {
            logger.warning(message, metadata: metadata)
        }
        channel.close(promise: nil)
    }
}

/// `cssd_metrics_tls_refusals_total{reason}`: TLS connections to the metrics endpoint not
/// served, by reason. Every reason's series exists (at 0) from the start when the endpoint uses
/// TLS, so that `increase()` sees the first one; without TLS the family is absent.
/// Counted on the server's event loop (swift-prometheus' counters are atomic anyway).
package final class MetricsTLSRefusals: Sendable {
    /// The `reason` label: HandshakeFailure's kinds, and what is refused after the handshake.
    package enum Reason: String, Sendable, CaseIterable {
        case noCertificate = "no-certificate"
        case notTLS = "not-tls"
        case protocolVersion = "protocol-version"
        case badCertificate = "bad-certificate"
        case revoked
        case unauthorized
        case timeout
        case abandoned
        case other

        init(_ kind: HandshakeFailure.Kind) {
            switch kind {
            case .noCertificate: self = .noCertificate
            case .notTLS: self = .notTLS
            case .protocolVersion: self = .protocolVersion
            case .badCertificate: self = .badCertificate
            case .abandoned: self = .abandoned
            case .other: self = .other
            }
        }
    }

    private let counters: [Reason: Counter]

    package init(registry: PrometheusCollectorRegistry) {
        var counters: [Reason: Counter] = [:]
        for reason in Reason.allCases {
            counters[reason] = registry.makeCounter(
                descriptor: .init(
                    namespace: "cssd", subsystem: "metrics", metricName: "tls_refusals", unitName: "total",
                    helpText:
                        "TLS connections to the metrics endpoint closed before HTTP, by reason (handshake failed, "
                        + "timed out, certificate revoked, DN not authorized, client left)."),
                labels: [("reason", reason.rawValue)])
        }
        self.counters = counters
    }

    func count(_ reason: Reason) {
        counters[reason]?.increment()
    }
}
