// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import JSONValues
import QMPCommands
import QMPWire

/// Metrics: times each command's dispatch (and the work run with it, the model's writes) on
/// the event loop and tells the observer its outcome. Work that waits (a sysfs write, a
/// durable record) counts as its dispatch's outcome, a success, and its wait is not timed.
struct MetricsMiddleware: CommandMiddleware {
    let observer: CommandObserver

    func handle(_ call: CommandCall, context: CommandContext, next: CommandNext) -> CommandResult {
        let started = ContinuousClock.now
        let result = next(call, context)
        observer.commandCompleted(
            call.request.command, error: result.errorClass, duration: ContinuousClock.now - started)
        return result
    }
}

/// The audit trail (`CommandAudit`): every command that is not read-only (not `query-*`, not
/// negotiation; unknown names included) with its outcome, once its reply is known (for work
/// that waits, when it finished; a reply dropped by a stop is not audited).
struct AuditMiddleware: CommandMiddleware {
    let audit: (QMPRequest, Result<JSON, QMPError>) -> Void

    /// Read-only commands are not audited (no call per query).
    var wrapsReadOnlyCommands: Bool { false }

    func handle(_ call: CommandCall, context: CommandContext, next: CommandNext) -> CommandResult {
        let result = next(call, context)
        guard !call.isReadOnly else { return result }
        switch result {
        case .done(let reply):
            audit(call.request, reply)
            return result
        case .waits(let work):
            let (audit, request) = (self.audit, call.request)
            return .waits(work.observingReply { audit(request, $0) })
        }
    }
}
