// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Logging
import NIOCore
import NIOSSL
import NIOTLS
import X509Credentials

/// Stands between a TLS listener's NIOSSLServerHandler and the protocol it serves (QMP, the
/// metrics endpoint's HTTP): holds the connection until the handshake completed, the client
/// certificate was checked against the CRL (`TLSCredentials.check(peer:)`: swift-nio-ssl takes
/// no CRL) and the client's DN against the `--tls-authz` policy when there is one, and only
/// then calls `admit` (which installs the protocol's handlers after this one) and leaves the
/// pipeline. A failure of any step is logged with its reason, passed to `refused`, and closes
/// this connection only.
///
/// The handshake has `timeout` to complete (`--tls-handshake-timeout`); `settled` is called
/// once, when it completed, failed, timed out or the client left (QMP frees its handshake slot
/// there). Runs on the channel's event loop; one instance per connection.
package final class TLSAdmissionHandler: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer

    /// How the gate logs: what it prefixes, the metadata, and the levels that differ between
    /// QMP and the metrics endpoint.
    package struct Reporting: Sendable {
        package var logger: Logger
        /// Put before every message (`"metrics: "`).
        package var prefix: String
        /// The listener's address and the client's (`HOST:PORT`), for the metadata.
        package var listener: String
        package var peer: String
        /// The level of "TLS client authorized".
        package var authorized: Logger.Level
        /// The level of a refusal because the client closed the connection mid-handshake (the
        /// others are warnings).
        package var abandoned: Logger.Level
        /// The level of "TLS client left before completing the handshake" (a close before NIOSSL
        /// reported anything); nil: not logged (it is still passed to `refused`).
        package var left: Logger.Level?
        /// The log's `source`: the module that makes the gate (QMPServer, MetricsExporter), as if it
        /// logged itself.
        package var source: String

        package init(
            logger: Logger, prefix: String = "", listener: String, peer: String, authorized: Logger.Level = .info,
            abandoned: Logger.Level = .warning, left: Logger.Level? = .info, fileID: String = #fileID
        ) {
            source = fileID.split(separator: "/", maxSplits: 1).first.map(String.init) ?? "n/a"
            self.logger = logger
            self.prefix = prefix
            self.listener = listener
            self.peer = peer
            self.authorized = authorized
            self.abandoned = abandoned
            self.left = left
        }
    }

    /// Where channelActive goes: on at once (a protocol whose handlers wait for data), or held
    /// and fired after `admit` (a protocol that speaks first, as QMP's greeting does).
    package enum ChannelActive: Sendable {
        case forward
        case holdUntilAdmitted
    }

    private let snapshot: TransportSecurity.Snapshot
    private let latest: (@Sendable () -> TransportSecurity.Snapshot)?
    private let timeout: TimeAmount
    private let reporting: Reporting
    private let channelActive: ChannelActive
    private let settled: () -> Void
    private let refused: (TLSRefusalReason, String) -> Void
    private let admit: (ChannelPipeline.SynchronousOperations, CertificateIdentity) throws -> Void
    private var timer: Scheduled<Void>?
    private var isSettled = false

    /// - Parameters:
    ///   - snapshot: the credentials and policy current when the connection was accepted: its
    ///     TLS context serves the handshake.
    ///   - latest: the credentials and policy current now (`TransportSecurity.current`): the CRL
    ///     and the policy that decide once the handshake completed, so that a revocation or a
    ///     policy change applies to a connection accepted before it too, as QEMU checks at the
    ///     end of the handshake. nil: `snapshot`'s.
    ///   - timeout: how long the client has to complete the handshake.
    ///   - settled: called once the handshake completed or failed (or timed out, or the client
    ///     left).
    ///   - refused: why a client is not served, with the reason in words (the log's).
    ///   - admit: installs the protocol's handlers at the end of the pipeline (after this one),
    ///     given the authorized client's identity; an error refuses the client (`.other`).
    package init(
        snapshot: TransportSecurity.Snapshot, latest: (@Sendable () -> TransportSecurity.Snapshot)? = nil,
        timeout: TimeAmount, reporting: Reporting,
        channelActive: ChannelActive = .forward, settled: @escaping () -> Void = {},
        refused: @escaping (TLSRefusalReason, String) -> Void = { _, _ in },
        admit: @escaping (ChannelPipeline.SynchronousOperations, CertificateIdentity) throws -> Void
    ) {
        self.snapshot = snapshot
        self.latest = latest
        self.timeout = timeout
        self.reporting = reporting
        self.channelActive = channelActive
        self.settled = settled
        self.refused = refused
        self.admit = admit
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        let timeout = self.timeout
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            guard !isSettled else { return }
            refuse(
                channel: channel, .timeout, "TLS handshake timed out",
                reason: "no completed handshake within \(timeout.nanoseconds / 1_000_000) ms", dn: nil)
        }
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    package func channelActive(context: ChannelHandlerContext) {
        if channelActive == .forward { context.fireChannelActive() }
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // NIOSSL passes no application data before the handshake completed, and the gate leaves
        // the pipeline as soon as the client is authorized; nothing reaches the protocol otherwise.
        guard isSettled, context.channel.isActive else { return }
        context.fireChannelRead(data)
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent, !isSettled else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        settle()
        let tls = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
        let identity: CertificateIdentity
        let deciding = latest?() ?? snapshot
        switch deciding.credentials.check(
            peer: tls?.peerCertificate, chain: tls?.peerValidatedCertificateChain.map { Array($0) } ?? [])
        {
        case .success(let found): identity = found
        case .failure(let refusal):
            refuse(
                channel: context.channel, refusal.revoked ? .revoked : .badCertificate, "TLS client refused",
                reason: refusal.description, dn: refusal.identity)
            return
        }
        if let authz = deciding.authz, authz.decide(identity.subject) == .deny {
            refuse(
                channel: context.channel, .unauthorized, "TLS client not authorized",
                reason: "the policy denies '\(identity.subject)'", dn: identity.subject.text)
            return
        }
        reporting.logger.log(
            level: reporting.authorized, "\(reporting.prefix)TLS client authorized",
            metadata: ["listener": "\(reporting.listener)", "peer": "\(reporting.peer)", "dn": "\(identity.subject)"],
            source: reporting.source)
        do {
            try admit(context.pipeline.syncOperations, identity)
            if channelActive == .holdUntilAdmitted { context.fireChannelActive() }
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        } catch {
            refuse(
                channel: context.channel, .other, "TLS client not served", reason: "\(error)", dn: identity.subject.text
            )
        }
    }

    package func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard !isSettled else {
            context.fireErrorCaught(error)
            return
        }
        settle()
        let certificate = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).peerCertificate
        let failure = snapshot.credentials.diagnose(handshakeError: error, peer: certificate)
        refuse(
            channel: context.channel, failure.kind, "TLS handshake failed", reason: failure.reason,
            dn: nil)
    }

    package func channelInactive(context: ChannelHandlerContext) {
        // NIOSSL reports a close during the handshake through errorCaught first; this catches
        // what is left (a close before NIOSSL started its handshake).
        if !isSettled {
            settle()
            if let level = reporting.left {
                reporting.logger.log(
                    level: level, "\(reporting.prefix)TLS client left before completing the handshake",
                    metadata: ["listener": "\(reporting.listener)", "peer": "\(reporting.peer)"],
                    source: reporting.source)
            }
            refused(.abandoned, "the client left before completing the handshake")
        }
        context.fireChannelInactive()
    }

    private func settle() {
        isSettled = true
        timer?.cancel()
        timer = nil
        settled()
    }

    private func refuse(channel: Channel, _ kind: TLSRefusalReason, _ message: String, reason: String, dn: String?) {
        if !isSettled { settle() }
        refused(kind, reason)
        var metadata: Logger.Metadata = [
            "listener": "\(reporting.listener)", "peer": "\(reporting.peer)", "reason": "\(reason)",
        ]
        if let dn { metadata["dn"] = "\(dn)" }
        // A client that leaves mid-handshake (a port probe) may be routine; the rest is a
        // misconfigured or unwelcome client, worth a warning.
        reporting.logger.log(
            level: kind == .abandoned ? reporting.abandoned : .warning, "\(reporting.prefix)\(message)",
            metadata: metadata, source: reporting.source)
        channel.close(promise: nil)
    }
}
