// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Logging
import NIOCore
import NIOSSL
import NIOTLS
import ServerSecurity

/// Stands between a TLS listener's NIOSSLServerHandler and QMP: holds the connection until the
/// handshake completed, the client certificate was checked against the CRL and the client's
/// DN against the authorization policy, and only then installs the QMP handler (which sends the
/// greeting). A failure of any step is logged with the reason and closes this connection only.
///
/// The handshake has `timeout` to complete; the gate holds one of the server's bounded
/// handshake slots (`ServerCore.handshakeStarted`) until it completes or fails.
final class TLSGate: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let core: ServerCore
    private let snapshot: TransportSecurity.Snapshot
    private var peer: ConnectionPeer
    private let readOnly: Bool
    private let timeout: TimeAmount
    private let inputBacklog: Int
    private var timer: Scheduled<Void>?
    private var settled = false

    init(
        core: ServerCore, snapshot: TransportSecurity.Snapshot, peer: ConnectionPeer, readOnly: Bool,
        timeout: TimeAmount, inputBacklog: Int
    ) {
        self.inputBacklog = inputBacklog
        self.core = core
        self.snapshot = snapshot
        self.peer = peer
        self.readOnly = readOnly
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        let timeout = self.timeout
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            guard !settled else { return }
            refuse(
                channel: channel, "TLS handshake timed out",
                reason: "no completed handshake within \(timeout.nanoseconds / 1_000_000) ms")
        }
    }

    /// The QMP handler gets its channelActive once the client is authorized.
    func channelActive(context: ChannelHandlerContext) {}

    func channelInactive(context: ChannelHandlerContext) {
        if !settled {
            settle()
            core.logger.info(
                "TLS client left before completing the handshake",
                metadata: ["listener": "\(peer.listener)", "peer": "\(peer.address ?? "?")"])
        }
        context.fireChannelInactive()
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
            if let name = refusal.identity { peer.distinguishedName = name }
            refuse(channel: context.channel, "TLS client refused", reason: refusal.description)
            return
        }
        peer.distinguishedName = identity.subject
        if let authz = snapshot.authz, authz.decide(identity.subject) == .deny {
            refuse(
                channel: context.channel, "TLS client not authorized", reason: "the policy denies '\(identity.subject)'"
            )
            return
        }
        core.logger.info(
            "TLS client authorized",
            metadata: ["listener": "\(peer.listener)", "peer": "\(peer.address ?? "?")", "dn": "\(identity.subject)"])
        do {
            let handler = QMPConnectionHandler(
                session: QMPSession(server: core.state, readOnly: readOnly), core: core, peer: peer,
                inputBacklog: inputBacklog)
            try context.pipeline.syncOperations.addHandler(handler, position: .after(self))
            context.fireChannelActive()
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        } catch {
            refuse(channel: context.channel, "TLS client not served", reason: "\(error)")
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard !settled else {
            context.fireErrorCaught(error)
            return
        }
        settle()
        let certificate = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).peerCertificate
        refuse(
            channel: context.channel, "TLS handshake failed",
            reason: snapshot.credentials.explain(handshakeError: error, peer: certificate))
    }

    private func settle() {
        settled = true
        timer?.cancel()
        timer = nil
        core.handshakeFinished()
    }

    private func refuse(channel: Channel, _ message: Logger.Message, reason: String) {
        if !settled { settle() }
        var metadata: Logger.Metadata = [
            "listener": "\(peer.listener)", "peer": "\(peer.address ?? "?")", "reason": "\(reason)",
        ]
        if let name = peer.distinguishedName { metadata["dn"] = "\(name)" }
        core.logger.warning(message, metadata: metadata)
        channel.close(promise: nil)
    }
}
