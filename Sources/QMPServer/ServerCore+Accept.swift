// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import NIOCore
import NIOSSL
import QMPCommands
import ServerSecurity

/// A listener's address as connections report it (a tcp port 0 becomes the bound port);
/// read and written on the event loop.
final class ListenerName: @unchecked Sendable {
    var value: String
    init(_ value: String) { self.value = value }
}

extension ServerCore {
    /// Sets up an accepted channel: applies the limits, takes the peer's identity, and installs
    /// either the QMP handler (unix, plain tcp) or TLS and its gate (tcp with --tls-creds).
    func accept(
        _ channel: Channel, listener: String, readOnly: Bool, security: TransportSecurity?, inputBacklog: Int,
        observed: Listener? = nil
    ) -> EventLoopFuture<Void> {
        loop.preconditionInEventLoop()
        let address = ConnectionPeer.address(of: channel)
        guard openChannels < limits.maxClients else {
            logger.warning(
                "connection refused: too many clients",
                metadata: [
                    "listener": "\(listener)", "peer": "\(address ?? "unix")", "max-clients": "\(limits.maxClients)",
                ])
            channel.close(promise: nil)
            return loop.makeSucceededVoidFuture()
        }
        openChannels += 1
        channel.closeFuture.whenComplete { [self] _ in openChannels -= 1 }
        // Metrics count the connections served, not the ones refused above.
        if let observer, let observed {
            observer.connectionOpened(listener: observed)
            channel.closeFuture.whenComplete { _ in observer.connectionClosed(listener: observed) }
        }

        if let security {
            guard handshakeStarted() else {
                logger.warning(
                    "connection refused: too many TLS handshakes in progress",
                    metadata: [
                        "listener": "\(listener)", "peer": "\(address ?? "?")", "max": "\(limits.maxHandshakes)",
                    ])
                channel.close(promise: nil)
                return loop.makeSucceededVoidFuture()
            }
            let snapshot = security.current
            let peer = ConnectionPeer(listener: listener, transport: .tls, address: address)
            return channel.eventLoop.makeCompletedFuture {
                let sync = channel.pipeline.syncOperations
                try sync.addHandler(snapshot.makeServerHandler())
                try sync.addHandler(
                    self.tlsGate(
                        snapshot: snapshot, latest: { security.current }, peer: peer, readOnly: readOnly,
                        inputBacklog: inputBacklog,
                        observed: observed))
            }
        }
        if address != nil {
            let peer = ConnectionPeer(listener: listener, transport: .tcp, address: address)
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(
                    self.makeHandler(peer: peer, readOnly: readOnly, inputBacklog: inputBacklog))
            }
        }
        return ConnectionPeer.credentials(of: channel).flatMapThrowing { credentials in
            let peer = ConnectionPeer(listener: listener, transport: .unix, credentials: credentials)
            try channel.pipeline.syncOperations.addHandler(
                self.makeHandler(peer: peer, readOnly: readOnly, inputBacklog: inputBacklog))
        }
    }

    /// The TLS admission gate of a QMP connection: it holds one of the bounded handshake slots
    /// (`handshakeStarted`) until the handshake settles, and installs the QMP handler (which then
    /// gets its channelActive and sends the greeting) once the client is authorized. A refusal
    /// is told to the observer (`cssd_qmp_tls_refusals_total`) when the listener is `observed`.
    func tlsGate(
        snapshot: TransportSecurity.Snapshot, latest: @escaping @Sendable () -> TransportSecurity.Snapshot,
        peer: ConnectionPeer, readOnly: Bool, inputBacklog: Int,
        observed: Listener?
    ) -> TLSAdmissionHandler {
        TLSAdmissionHandler(
            snapshot: snapshot, latest: latest, timeout: limits.handshakeTimeout,
            reporting: .init(logger: logger, listener: peer.listener, peer: peer.address ?? "?"),
            channelActive: .holdUntilAdmitted, settled: { [self] in handshakeFinished() },
            refused: { [self] reason, _ in
                if let observer, let observed { observer.tlsRefused(listener: observed, reason: reason) }
            },
            admit: { [self] sync, identity in
                var peer = peer
                peer.distinguishedName = identity.subject.text
                try sync.addHandler(makeHandler(peer: peer, readOnly: readOnly, inputBacklog: inputBacklog))
            })
    }

    private func makeHandler(peer: ConnectionPeer, readOnly: Bool, inputBacklog: Int) -> QMPConnectionHandler {
        QMPConnectionHandler(
            session: QMPSession(server: state, readOnly: readOnly), core: self, peer: peer, inputBacklog: inputBacklog)
    }
}
