// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import QMPSchema
import QMPWire

/// What a handler may know and do about the connection it serves.
public protocol SessionControl: AnyObject {
    /// In command mode (capabilities negotiated).
    var isNegotiated: Bool { get }
    /// A read-only connection: only query-* commands.
    var isReadOnly: Bool { get }
    /// The connection's id: the owner of its path-event subscriptions.
    var connectionID: Int { get }
    /// Whether a command may hand blocking work off the event loop (a network connection);
    /// otherwise it runs it inline (tests, the fuzzer).
    var canDefer: Bool { get }
    /// Replies later: the connection stops processing its input, runs `work.blocking` off the
    /// loop, then `work.finish` on the loop, whose value or error is the reply.
    func deferReply(_ work: DeferredWork)
    /// Leaves negotiation mode with the given capabilities.
    func enterCommandMode(oob: Bool)
}

/// Work a command hands off the event loop because it may block, and how its reply is made.
public struct DeferredWork {
    public let blocking: @Sendable () -> Result<Void, BackendError>
    public let finish: (Result<Void, BackendError>) throws(QMPError) -> JSON

    public init(
        blocking: @escaping @Sendable () -> Result<Void, BackendError>,
        finish: @escaping (Result<Void, BackendError>) throws(QMPError) -> JSON
    ) {
        self.blocking = blocking
        self.finish = finish
    }
}

/// Why the server stops (the SHUTDOWN event's `reason`).
public enum ShutdownCause: String, Sendable {
    case hostQMPQuit = "host-qmp-quit"
    case hostSignal = "host-signal"
}

/// The context of one command: the server-wide state and the calling connection.
public struct CommandContext {
    public let server: ServerState
    public let session: SessionControl

    public init(server: ServerState, session: SessionControl) {
        self.server = server
        self.session = session
    }
}
