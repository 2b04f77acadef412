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
        // A scenario step's records name it in their id: its changes are journaled with the
        // cause they had when played, scenario and step included.
        var origin = CommandOrigin.replay
        if let name = checked.id?["scenario"]?.stringValue, let step = checked.id?["step"]?.stringValue {
            origin = .scenario(name: name, step: step)
        }
        let session = ReplaySession(origin: origin)
        switch CommandResult(Dispatcher.dispatch(checked, server: self, session: session, time: time)) {
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
    let origin: CommandOrigin
    init(origin: CommandOrigin = .replay) { self.origin = origin }
    func enterCommandMode(oob: Bool) {}
}
