// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import PathEvents
import QMPSchema
import QMPWire

/// Executes one parsed request: QEMU 7.2's qmp_dispatch, step for step, so that every
/// malformed request gets the error QEMU gives it.
package enum Dispatcher {
    /// - Parameters:
    ///   - request: a request whose envelope passed `QMPRequest.check` (QMPWire).
    /// - Returns: the command's outcome (its reply, or deferred work that makes it), or the
    ///   error to reply with.
    ///   - time: the time it runs at (`CommandContext.time`); nil: the clock when asked.
    package static func dispatch(
        _ request: QMPRequest, server: ServerState, session: SessionControl, time: EventTime? = nil
    ) -> Result<CommandOutcome, QMPError> {
        dispatch(
            CommandCall(request, server: server), context: CommandContext(server: server, session: session, time: time))
    }

    /// `dispatch` of a call whose command was looked up (`CommandCall`): the command
    /// pipeline's innermost step.
    package static func dispatch(_ call: CommandCall, context: CommandContext) -> Result<CommandOutcome, QMPError> {
        let request = call.request
        let session = context.session
        let result = run(call.entry, oob: request.isOOB, request: request, context: context)
        // During negotiation QEMU replaces the text of any CommandNotFound with a hint.
        if !session.isNegotiated, case .failure(let error) = result, error.errorClass == .commandNotFound {
            return .failure(QMPError(.commandNotFound, "Expecting capabilities negotiation with 'qmp_capabilities'"))
        }
        return result
    }

    private static func run(
        _ entry: ServerState.Entry?, oob: Bool, request: QMPRequest, context: CommandContext
    ) -> Result<CommandOutcome, QMPError> {
        let (server, session) = (context.server, context.session)
        let name = request.command
        guard let entry, session.isNegotiated || entry.command.negotiation else {
            return .failure(QMPError(.commandNotFound, "The command \(name) has not been found"))
        }
        if oob && !entry.command.allowOOB {
            return .failure(.generic("The command \(name) does not support OOB"))
        }
        if session.isReadOnly && !entry.isReadOnly {
            return .failure(
                QMPError(
                    .commandNotFound,
                    "The command \(name) is not allowed on a read-only connection (only query-* commands and path-event subscriptions are)"
                ))
        }
        // No arguments and none declared: share one empty object (nothing will be filled in).
        let arguments =
            request.arguments ?? (entry.command.arguments.isEmpty ? server.emptyArguments : .emptyObject())
        // A generated handler checks and decodes the object in one pass; any other gets it checked here.
        if !entry.checksArguments {
            do {
                try server.validator.validate(arguments: arguments, members: entry.command.arguments)
            } catch {
                return .failure(.generic(error.desc))
            }
        }
        do {
            return .success(try entry.handler(arguments, context))
        } catch {
            return .failure(error)
        }
    }
}
