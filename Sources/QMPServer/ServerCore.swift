// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import JSONValues
import Logging
import NIOCore
import NIOPosix
import PathChangePipeline
import PathEvents
import QMPCommands

/// The state every connection shares: commands, the live connections (for events), hooks.
///
/// All of it lives on the server's single event loop. One loop serves every connection: the
/// command handlers and, later, the channel-subsystem model they change need no locks, and the
/// order of replies and events across connections is simply the order of execution.
final class ServerCore: @unchecked Sendable {
    let loop: EventLoop
    let state: ServerState
    let logger: Logger
    private var connections: [ConnectionID: QMPConnectionHandler] = [:]
    private(set) var connectionCount = 0
    /// Told of connections and backend readings (metrics); set before the server starts.
    var observer: ServerObserver?
    /// Threads for what blocks, one per kind, off the event loop.
    let threads = BlockingThreads()
    /// Accepted channels not yet closed: QMP connections and TLS handshakes.
    var openChannels = 0
    /// TLS handshakes not yet completed or failed.
    private(set) var handshakesInProgress = 0
    let limits: ConnectionLimits

    init(loop: EventLoop, state: ServerState, logger: Logger, limits: ConnectionLimits = ConnectionLimits()) {
        self.loop = loop
        self.state = state
        self.logger = logger
        self.limits = limits
        state.pathChanges.register(self, as: .connections)
        state.connectionReports = { [unowned self] in self.connections.values.map { $0.report() } }
        state.scenarios.scheduling = self
    }

    /// Takes a handshake slot; false when `limits.maxHandshakes` are in progress.
    func handshakeStarted() -> Bool {
        loop.preconditionInEventLoop()
        guard handshakesInProgress < limits.maxHandshakes else { return false }
        handshakesInProgress += 1
        return true
    }

    /// Gives a handshake slot back (completed, failed, timed out or closed).
    func handshakeFinished() {
        loop.preconditionInEventLoop()
        handshakesInProgress -= 1
    }

    func connectionOpened(_ handler: QMPConnectionHandler) {
        loop.preconditionInEventLoop()
        connections[handler.session.connectionID] = handler
        connectionCount = connections.count
        logger.debug("connection opened", metadata: ["connections": "\(connections.count)"])
    }

    func connectionClosed(_ handler: QMPConnectionHandler) {
        loop.preconditionInEventLoop()
        connections[handler.session.connectionID] = nil
        connectionCount = connections.count
        logger.debug("connection closed", metadata: ["connections": "\(connections.count)"])
    }

    /// Wakes every connection that holds a subscription: events held until their changes were
    /// durable may go now. O(connections) per commit (commits are at most a few thousand a
    /// second: one fsync each).
    func wakeSubscribers() {
        loop.preconditionInEventLoop()
        for (owner, handler) in connections where state.pathEvents.hasSubscriptions(owner) { handler.eventsQueued() }
    }

    /// Wakes one connection that got events (`evaluateUtilization`).
    func wakeConnection(_ owner: ConnectionID) {
        connections[owner]?.eventsQueued()
    }

    /// Sends an event to every connection in command mode.
    func broadcast(_ name: String, data: JSON?, afterPathEvents: Bool = false) {
        loop.preconditionInEventLoop()
        let time = state.clock()
        for handler in connections.values {
            if afterPathEvents {
                handler.sendEventAfterPathEvents(
                    name, data: data, seconds: time.seconds, microseconds: time.microseconds)
            } else {
                handler.sendEvent(name, data: data, seconds: time.seconds, microseconds: time.microseconds)
            }
        }
    }

    /// Sends SHUTDOWN, then closes every connection once its output is flushed.
    func closeAll(cause: ShutdownCause) {
        loop.preconditionInEventLoop()
        broadcast("SHUTDOWN", data: .object([("guest", .bool(false)), ("reason", .string(cause.rawValue))]))
        for handler in connections.values { handler.closeAfterFlush() }
    }

    /// Applies a reading the observed backend's follower computed off the loop, and publishes
    /// what changed as path events (`ServerState.applyObserved`). Nothing here reads the machine.
    func applyBackendUpdate(_ update: ObservedUpdate) {
        loop.preconditionInEventLoop()
        let changed = state.applyObserved(update)
        guard changed > 0 else { return }
        logger.info("backend changed", metadata: ["backend": "\(state.backend.name)", "paths": "\(changed)"])
    }
}

extension ServerCore: PathChangeSink {
    /// Wakes the connections that got events: each writes them in a turn of its own, after
    /// the current one (so after the reply of the command that made them). The connection
    /// whose command published the change is not woken: it writes its events right after
    /// that command's reply.
    func pathChangePublished(_ published: PublishedPathChange) {
        var publisher: ConnectionID?
        if case .command(by: .connection(let connection)) = published.cause { publisher = connection }
        for owner in published.reached.owners where owner != publisher { connections[owner]?.eventsQueued() }
    }
}
