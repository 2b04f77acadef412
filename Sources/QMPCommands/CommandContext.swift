// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import JSONValues
import PathChangePipeline
import PathEvents
import QMPSchema
import QMPWire

/// What a handler may know and do about the connection it serves.
package protocol SessionControl: AnyObject {
    /// In command mode (capabilities negotiated).
    var isNegotiated: Bool { get }
    /// A read-only connection: only query-* commands and those the schema allows (subscriptions).
    var isReadOnly: Bool { get }
    /// Who runs the commands: a client's connection (the owner of its path-event
    /// subscriptions), or the replay at start.
    var origin: CommandOrigin { get }
    /// Leaves negotiation mode with the given capabilities.
    func enterCommandMode(oob: Bool)
}

/// What a command did: its reply, or work whose end makes the reply.
package enum CommandOutcome {
    /// The `return` value, to send now.
    case reply(JSON)
    /// The reply waits for work that may block. With no blocking part (the model backend) it
    /// runs at once (`CommandResult`); otherwise the session decides where it runs: a network
    /// connection stops processing its input, runs `blocking` off the event loop, then `finish`
    /// on the loop; without a loop to defer to (tests, the fuzzer) it runs both at once and
    /// replies at once.
    case deferred(DeferredWork)
}

/// Work a command hands off the event loop because it may block, and how its reply is made.
package struct DeferredWork {
    /// What the blocking part waits for. Each kind runs on a thread of its own, so that none
    /// queues behind another: a sysfs write the kernel is slow to complete holds neither the
    /// durable replies of other connections nor a TLS policy reload.
    package enum Wait: Sendable {
        /// A write to the backend (sysfs), which may block as long as the kernel takes.
        case backendWrite
        /// The record of a change in the state dir becoming durable (its commit).
        case durableRecord
    }

    /// What the blocking part returns to `finish`: its error, or what it read (a backend
    /// write's reading of its chpid, `PendingWrite.Outcome`; nil when it read nothing).
    package typealias Outcome = PendingWrite.Outcome

    /// The part that may block, on any thread; nil when there is none.
    package let blocking: (@Sendable () -> Outcome)?
    /// Back on the event loop, with the blocking part's outcome: the reply's value or error.
    package let finish: (Outcome) throws(QMPError) -> JSON
    /// What `blocking` waits for.
    package let waitsOn: Wait
    /// The first sequence number of the changes whose events wait with the reply (they are
    /// written after it); nil when none wait.
    package let holdsEventsFrom: UInt64?
    /// The record whose commit `blocking` waits for, when that is all it does: a session then
    /// keeps running the commands queued behind it and waits for all of their records at
    /// once (group commit per connection, `QMPSession`); nil: `blocking` is opaque.
    package let record: DurableRecord?

    package init(
        blocking: (@Sendable () -> Outcome)?, waitsOn: Wait = .backendWrite,
        holdsEventsFrom: UInt64? = nil, record: DurableRecord? = nil,
        finish: @escaping (Outcome) throws(QMPError) -> JSON
    ) {
        self.blocking = blocking
        self.waitsOn = waitsOn
        self.holdsEventsFrom = holdsEventsFrom
        self.record = record
        self.finish = finish
    }

    /// Deferred work that only waits for `token` of `log` to be durable (`waitsOn`
    /// `.durableRecord`, `record` set), then makes its reply with `finish`.
    package static func durable(
        _ token: UInt64, of log: DurableLog, holdsEventsFrom: UInt64? = nil,
        finish: @escaping (Outcome) throws(QMPError) -> JSON
    ) -> DeferredWork {
        DeferredWork(
            blocking: { log.waitUntilDurable(token).map { nil } }, waitsOn: .durableRecord,
            holdsEventsFrom: holdsEventsFrom, record: DurableRecord(log: log, token: token), finish: finish)
    }

    /// Runs both parts here and now: the reply's value or error.
    package func runInline() -> Result<JSON, QMPError> {
        let outcome = blocking?() ?? .success(nil)
        do throws(QMPError) { return .success(try finish(outcome)) } catch { return .failure(error) }
    }
}

/// A record in a durable log that a reply waits for (`DeferredWork.record`).
package struct DurableRecord: Sendable {
    package let log: DurableLog
    /// `DurableLog.append`'s token: records are committed in token order.
    package let token: UInt64

    package init(log: DurableLog, token: UInt64) {
        self.log = log
        self.token = token
    }
}

/// Why the server stops (the SHUTDOWN event's `reason`).
package enum ShutdownCause: String, Sendable {
    case hostQMPQuit = "host-qmp-quit"
    case hostSignal = "host-signal"
}

/// The context of one command: the server-wide state, the caller and the time it runs at.
package struct CommandContext {
    package let server: ServerState
    /// The calling connection (its id owns its subscriptions and causes its changes).
    package let session: SessionControl
    /// The time the command runs at, its changes' timestamp: fixed for a command that is
    /// recorded (`DurabilityMiddleware`) and for its replay (the recorded time); nil: the
    /// server's clock when asked (`now()`).
    package let time: EventTime?

    package init(server: ServerState, session: SessionControl, time: EventTime? = nil) {
        self.server = server
        self.session = session
        self.time = time
    }

    /// The command's time (`time`), or the server's clock now.
    package func now() -> EventTime { time ?? server.clock() }

    /// The client connection the command came on; nil for the replay at start.
    package var connection: ConnectionID? {
        if case .connection(let id) = session.origin { id } else { nil }
    }

    /// This context, running at `time`.
    package func at(_ time: EventTime) -> CommandContext {
        CommandContext(server: server, session: session, time: time)
    }

    /// Publishes a change the command made (`PathChangePublisher.publish`), caused by the
    /// calling connection, at the command's time.
    @discardableResult
    package func publish(_ change: PathChange, as kind: PathEventChange) -> PublishedPathChange? {
        server.pathChanges.publish(change, as: kind, cause: .command(by: session.origin), at: time)
    }
}
