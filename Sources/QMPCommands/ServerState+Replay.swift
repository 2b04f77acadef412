// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import JSONValues
import PathChangePipeline
import PathEvents
import QMPWire

extension ServerState: CommandReplayer {
    package var isRecording: Bool { durability != nil }
    package var lastPublishedSequence: UInt64 { pathChanges.lastSequence }

    /// Runs one recorded request through the handlers, as a negotiated read-write connection
    /// that owns nothing (`ReplaySession`), with its changes stamped `time`. Only replies and
    /// the model's writes (no blocking part) were recorded: a deferred outcome runs here, inline.
    package func replay(request text: String, at time: EventTime) -> ReplayOutcome {
        guard let request = JSON.parse(text) else { return .notJSON }
        let checked: QMPRequest
        switch QMPRequest.check(request, oobEnabled: true) {
        case .success(let value): checked = value
        case .failure(let rejection): return .failed(rejection.desc)
        }
        let result: Result<JSON, QMPError>
        switch CommandResult(Dispatcher.dispatch(checked, server: self, session: ReplaySession(), time: time)) {
        case .done(let reply): result = reply
        case .waits(let work): result = work.runInline()
        }
        if case .failure(let error) = result { return .failed(error.desc) }
        // A scenario's steps are recorded with their progress in the id: how far it got.
        scenarios.replayed(id: checked.id)
        return .succeeded
    }
}

/// The session the replay runs commands in: negotiated, read-write (deferred outcomes run inline).
final class ReplaySession: SessionControl {
    var isNegotiated: Bool { true }
    var isReadOnly: Bool { false }
    var origin: CommandOrigin { .replay }
    func enterCommandMode(oob: Bool) {}
}
