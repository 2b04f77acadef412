// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import JSONValues
import Logging
import PathEvents
import QMPCommands
import QMPWire

/// The audit trail: every command that may change state (any command that is not read-only:
/// not `query-*`, not `qmp_capabilities`) is logged at notice level with who sent it, the
/// listener, the command, its arguments and its outcome, once its reply is known (a deferred
/// sysfs write is logged when it completed), and `force=true` when the request overrode the
/// last-path interlock. Malformed requests (no command) are not logged.
struct CommandAudit {
    let logger: Logger
    let peer: ConnectionPeer
    let connectionID: ConnectionID

    /// Logs a request the session passes (`QMPSession.audit`: read-only commands never come
    /// here, so that a query costs no lookup of its own).
    func record(_ request: QMPRequest, _ result: Result<JSON, QMPError>) {
        let name = request.command
        let outcome: String
        switch result {
        case .success: outcome = "ok"
        case .failure(let error): outcome = "\(error.errorClass.rawValue): \(error.desc)"
        }
        var metadata: Logger.Metadata = [
            "who": "\(peer.identity)", "listener": "\(peer.listener)", "connection": "\(connectionID)",
            "command": "\(name)", "arguments": "\(request.arguments?.serialized() ?? "{}")",
            "outcome": "\(outcome)",
        ]
        // An override of the last-path interlock (API/impact.md) stands out on its own, so that
        // a search for forced changes does not have to parse the arguments.
        if request.arguments?["force"]?.boolValue == true { metadata["force"] = "true" }
        logger.notice("command", metadata: metadata)
    }
}
