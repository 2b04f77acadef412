// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

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
    /// Leaves negotiation mode with the given capabilities.
    func enterCommandMode(oob: Bool)
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
