// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import JSONValues
import QMPWire

/// A checked request on its way through the command pipeline, its command looked up once.
package struct CommandCall {
    package let request: QMPRequest
    /// This server's command of that name; nil when it has none (unknown, or its condition off).
    let entry: ServerState.Entry?
    /// Whether the command only reads (`Command.isReadOnly`: query-* and negotiation), on this
    /// server or, with its condition off, not; false for a name the schema lacks. The audit
    /// skips those.
    package let isReadOnly: Bool

    package init(_ request: QMPRequest, server: ServerState) {
        self.request = request
        let entry = server.entries[request.command]
        self.entry = entry
        // A command whose condition is off is not on the server, but it is still what its name says.
        self.isReadOnly = entry?.isReadOnly ?? server.schema.command(named: request.command)?.isReadOnly ?? false
    }
}

/// What the command pipeline makes of a call: the reply now, or work that blocks before it.
package enum CommandResult {
    /// The reply: the `return` value or the error.
    case done(Result<JSON, QMPError>)
    /// The reply waits for `work`, which has a blocking part (a sysfs write, a durable record).
    case waits(DeferredWork)

    /// The reply now, or, for work that waits, the outcome of its dispatch: success.
    package var errorClass: QMPError.Class? {
        if case .done(.failure(let error)) = self { return error.errorClass }
        return nil
    }

    /// The one place a command's outcome becomes a result: a reply is done; deferred work
    /// with no blocking part (the model's writes) runs here, at once; deferred work that
    /// blocks waits (the session runs it off the loop, or inline without one).
    package init(_ outcome: Result<CommandOutcome, QMPError>) {
        switch outcome {
        case .success(.reply(let value)): self = .done(.success(value))
        case .success(.deferred(let work)) where work.blocking == nil: self = .done(work.runInline())
        case .success(.deferred(let work)): self = .waits(work)
        case .failure(let error): self = .done(.failure(error))
        }
    }
}

/// The rest of the pipeline, as a middleware sees it.
package typealias CommandNext = (CommandCall, CommandContext) -> CommandResult

/// A concern that wraps the dispatch of every command (metrics, audit, durability), as
/// Hummingbird 2's `MiddlewareProtocol` wraps a route: it gets the call, its context and the
/// rest of the pipeline, and returns the result (changed or not). Runs on the server's event
/// loop: it must not block (what blocks goes in the result's deferred work).
package protocol CommandMiddleware {
    /// Whether it wraps read-only commands (`CommandCall.isReadOnly`) too; one that does not
    /// (the audit, durability) costs a query nothing.
    var wrapsReadOnlyCommands: Bool { get }
    func handle(_ call: CommandCall, context: CommandContext, next: CommandNext) -> CommandResult
}

extension CommandMiddleware {
    package var wrapsReadOnlyCommands: Bool { true }
}

/// Middlewares around the dispatcher, the first outermost.
package struct CommandPipeline {
    /// nil: no middleware, the dispatcher alone.
    private let run: CommandNext?
    /// For read-only commands: the middlewares that wrap them (`wrapsReadOnlyCommands`) alone.
    /// Queries are most requests, and each link shows in their server CPU: with none (no
    /// metrics) they go straight to the dispatcher.
    private let runReadOnly: CommandNext?

    /// - Parameter middlewares: outermost first; the dispatcher is innermost.
    package init(_ middlewares: [CommandMiddleware]) {
        run = Self.chain(middlewares)
        runReadOnly = Self.chain(middlewares.filter(\.wrapsReadOnlyCommands))
    }

    private static func chain(_ middlewares: [CommandMiddleware]) -> CommandNext? {
        guard !middlewares.isEmpty else { return nil }
        var run: CommandNext = dispatch
        for middleware in middlewares.reversed() {
            let next = run
            run = { call, context in middleware.handle(call, context: context, next: next) }
        }
        return run
    }

    private static func dispatch(_ call: CommandCall, context: CommandContext) -> CommandResult {
        CommandResult(Dispatcher.dispatch(call, context: context))
    }

    /// Runs `call` through the middlewares and the dispatcher.
    package func handle(_ call: CommandCall, context: CommandContext) -> CommandResult {
        guard let run = call.isReadOnly ? runReadOnly : run else { return Self.dispatch(call, context: context) }
        return run(call, context)
    }
}

extension DeferredWork {
    /// The same work, with `observe` told of its reply once it is known.
    package func observingReply(_ observe: @escaping (Result<JSON, QMPError>) -> Void) -> DeferredWork {
        let finish = self.finish
        return DeferredWork(blocking: blocking, waitsOn: waitsOn, holdsEventsFrom: holdsEventsFrom, record: record) {
            (outcome) throws(QMPError) -> JSON in
            do throws(QMPError) {
                let value = try finish(outcome)
                observe(.success(value))
                return value
            } catch {
                observe(.failure(error))
                throw error
            }
        }
    }
}

/// Durability (`--state-dir`): a command that changes what cssd owns runs at a time fixed
/// before it (its events' timestamp, kept with it), is recorded when it succeeded, and its
/// reply waits for the record to be durable: work that waits on `.durableRecord`, which holds
/// the events of its changes until then (`DeferredWork.holdsEventsFrom`). A command that
/// failed, or that blocks on its own (a sysfs write: the host stays the truth), is not
/// recorded. Without a durable log (or for a command it does not record) it passes through.
package struct DurabilityMiddleware: CommandMiddleware {
    package init() {}

    /// Read-only commands change nothing: none is recorded.
    package var wrapsReadOnlyCommands: Bool { false }

    package func handle(_ call: CommandCall, context: CommandContext, next: CommandNext) -> CommandResult {
        let server = context.server
        guard let log = server.durability, log.records(call.request.command) else { return next(call, context) }
        if let refusal = log.refusal { return .done(.failure(.generic(refusal))) }
        let time = context.now()
        let before = server.pathChanges.lastSequence
        let result = next(call, context.at(time))
        guard case .done(.success(let value)) = result else { return result }
        let after = server.pathChanges.lastSequence
        let token = log.append(
            request: call.request.message.serialized(), time: time,
            sequences: after > before ? (before + 1)...after : nil)
        return .waits(
            .durable(token, of: log, holdsEventsFrom: after > before ? before + 1 : nil) {
                (outcome) throws(QMPError) -> JSON in
                if case .failure(let error) = outcome {
                    throw .generic("the change was made but could not be recorded in the state dir: \(error)")
                }
                return value
            })
    }
}
