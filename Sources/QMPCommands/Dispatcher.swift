// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import QMPSchema
import QMPWire

/// Executes one parsed request: QEMU 7.2's qmp_dispatch, step for step, so that every
/// malformed request gets the error QEMU gives it.
package enum Dispatcher {
    /// - Parameters:
    ///   - request: a request whose envelope passed `QMPRequest.check` (QMPWire).
    /// - Returns: the command's outcome (its reply, or deferred work that makes it), or the
    ///   error to reply with.
    package static func dispatch(
        _ request: QMPRequest, server: ServerState, session: SessionControl
    ) -> Result<CommandOutcome, QMPError> {
        var readOnly = false
        return dispatch(request, server: server, session: session, readOnly: &readOnly)
    }

    /// `dispatch`, and whether the request's command only reads (`Command.isReadOnly`:
    /// query-* and negotiation), from the same lookup: the audit log skips those, and looking
    /// the name up a second time per request cost as much as the check of the envelope.
    /// - Parameter readOnly: set to whether the schema's command of that name (on this server
    ///   or, with its condition off, not) is read-only; false for a name the schema lacks.
    package static func dispatch(
        _ request: QMPRequest, server: ServerState, session: SessionControl, readOnly: inout Bool
    ) -> Result<CommandOutcome, QMPError> {
        let entry = server.entries[request.command]
        // A command whose condition is off is not on the server, but it is still what its name says.
        readOnly = entry?.isReadOnly ?? server.schema.command(named: request.command)?.isReadOnly ?? false
        let result = run(entry, oob: request.isOOB, request: request, server: server, session: session)
        // During negotiation QEMU replaces the text of any CommandNotFound with a hint.
        if !session.isNegotiated, case .failure(let error) = result, error.errorClass == .commandNotFound {
            return .failure(QMPError(.commandNotFound, "Expecting capabilities negotiation with 'qmp_capabilities'"))
        }
        return result
    }

    private static func run(
        _ entry: ServerState.Entry?, oob: Bool, request: QMPRequest, server: ServerState, session: SessionControl
    ) -> Result<CommandOutcome, QMPError> {
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
                    "The command \(name) is not allowed on a read-only connection (only query-* commands are)"))
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
            return .success(try entry.handler(arguments, CommandContext(server: server, session: session)))
        } catch {
            return .failure(error)
        }
    }
}
