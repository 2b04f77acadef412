// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// Where a scenario's playing stands, and the step to play next: the pure core of a player.
///
/// The run holds no clock and does no I/O: whoever plays it (a test, a benchmark, the server's
/// timers in wall time) asks for the next step, applies it, and reports back. Steps are applied
/// to the model in timeline order, one at a time, each complete before the next, so a run
/// stopped between two steps leaves the model consistent, with `played` steps applied.
package struct ScenarioRun: Sendable {
    /// Where the run is.
    package enum State: String, Hashable, Sendable {
        /// Steps remain and may be played.
        case playing
        /// Steps remain; none is played until resumed.
        case paused
        /// Stopped before the end (`stop()`, or a step that failed); the remaining steps are
        /// never played.
        case stopped
        /// Every step was played.
        case finished
    }

    package let scenario: Scenario
    package private(set) var state: State
    /// How many steps were applied (the index of the next one).
    package private(set) var played = 0
    /// Why the run stopped early: the step and the model's error text.
    package private(set) var failure: (step: String, reason: String)?

    package init(_ scenario: Scenario) {
        self.scenario = scenario
        state = scenario.steps.isEmpty ? .finished : .playing
    }

    /// The next step to play, nil when paused, stopped or finished.
    package var next: ScenarioStep? { state == .playing ? scenario.steps[played] : nil }

    /// The last step applied, nil before the first.
    package var lastPlayed: ScenarioStep? { played > 0 ? scenario.steps[played - 1] : nil }

    /// Applies the next step to `model`.
    /// - Returns: the changes it made, one per chpid for a multi-chpid fault (each with its CRW),
    ///   in order; empty when there was no step to play.
    /// - Note: operator steps are applied as the model applies them: the last-path interlock is
    ///   the server's (QMPCommands), which checks `force` before a step reaches the model.
    ///   A step the model refuses stops the run (`failure`), with the model as the steps before
    ///   it left it.
    package mutating func playNext(on model: inout Subsystem) -> [PathChange] {
        guard let step = next else { return [] }
        do {
            guard let changes = try Self.apply(step.action, to: &model) else {
                failure = (step.name, "\(step.action.command) is not in the model yet (issue 26, pending)")
                state = .stopped
                return []
            }
            played += 1
            if played == scenario.steps.count { state = .finished }
            return changes
        } catch {
            failure = (step.name, error.description)
            state = .stopped
            return []
        }
    }

    package mutating func pause() { if state == .playing { state = .paused } }
    package mutating func resume() { if state == .paused { state = .playing } }
    /// Stops the run; the steps played stay applied.
    package mutating func stop() { if state == .playing || state == .paused { state = .stopped } }

    /// One action on the model.
    /// - Returns: its changes: for a device added or removed one per installed chpid
    ///   (`DeviceChange.pathChanges`, the subchannel report on the first); for a control unit's
    ///   quiesce or resume one per device path the DASD driver stopped or started using
    ///   (`Subsystem.quiesceControlUnitPaths`). Never nil (the optional is kept for callers
    ///   written when device steps were pending).
    /// - Throws: the model's `ModelError` (an unknown id, a path not installed, a device that
    ///   exists already).
    package static func apply(_ action: ScenarioAction, to model: inout Subsystem) throws(ModelError) -> [PathChange]? {
        switch action {
        case let .pathFault(chpids, fault): return try model.injectPathFaults(chpids, fault)
        case let .vary(chpid, state, subchannel, _):
            if let subchannel { return [try model.varyPath(chpid, to: state, subchannel: subchannel)] }
            return [try model.varyPath(chpid, to: state)]
        case let .configure(chpid, state, _): return [try model.configurePath(chpid, to: state)]
        case let .devicePathFault(device, chpid, fault): return [try model.injectDevicePathFault(device, chpid, fault)]
        case let .addDevice(added): return try model.addDevice(added.topologySubchannel).pathChanges
        case let .removeDevice(device): return try model.removeDevice(device).pathChanges
        case let .controlUnitQuiesce(chpids, devices, resume):
            return try model.quiesceControlUnitPaths(chpids, devices: devices, resume: resume)
        }
    }
}
