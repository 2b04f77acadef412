// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import JSONValues
import PathChangePipeline
import PathEvents
import QMPWire
import Scenario

/// What the scenario player needs of the network layer (`ServerCore` installs it): timers on
/// the server's event loop, a thread to wait for the state dir's commits, and the log. Without
/// it (a `ServerState` alone: unit tests, the fuzzer) model time plays inside `scenario-play`
/// and wall time is refused.
package protocol ScenarioScheduling: AnyObject {
    /// Runs `work` on the server's loop after `milliseconds` (0: in a later turn, after what is
    /// queued). - Returns: cancels it, if it has not run.
    func schedule(after milliseconds: Int, _ work: @escaping () -> Void) -> () -> Void
    /// Waits off the loop until record `token` of `log` is durable, then calls `done` on the
    /// loop with the failure's text (nil: committed).
    func whenDurable(_ token: UInt64, of log: DurableLog, _ done: @escaping (String?) -> Void)
    /// A line of the server's log: how a run ended, why a step was refused.
    func logScenario(_ message: String, warning: Bool)
    /// SCENARIO_ENDED to every connection in command mode, after the path events already
    /// deliverable to it: `status` is the run's ScenarioStatus as it ended.
    func announceEnd(_ status: JSON)
}

/// The server's scenario player (API/scenario.json): the loaded scenario, its `ScenarioRun`
/// (the pure core: which step is next, paused, stopped), and the timers that play it.
///
/// Each step is applied to the model backend by the run, whole, then each of its changes is
/// published through `ServerState.pathChanges` with the cause `.scenario(name:step:)`, at one
/// time, exactly as the command it names would publish it (same kinds, same redundancy-loss
/// follow-ups, same sequence numbers), and, with `--state-dir`, recorded as that command
/// (`vary-path` and `configure-chpid` with `force`, as they were checked), its request id
/// naming the scenario, step and progress, so that the replay at start reproduces the model
/// and knows the scenario was interrupted. Operator steps pass the last-path interlock first
/// (`CommandContext.checkLastPaths`) unless they state `force`; hardware steps never do.
///
/// Model time plays `batch` steps per turn of the event loop, then yields to the connections
/// (and, with a state dir, waits for the batch to be durable), so a long scenario neither
/// starves other clients nor holds unbounded records. Lives on the server's event loop.
package final class ScenarioPlayer {
    /// Steps played per turn of the event loop in model time.
    package static let batch = 256

    package private(set) var scenario: Scenario?
    package private(set) var run: ScenarioRun?
    package private(set) var clock: Scenario.Clock?
    /// Why the run stopped at a step (the interlock's refusal, the model's error): `STEP: WHY`.
    package private(set) var failure: String?
    /// A run the state dir's replay found unfinished (`replayed(id:)`).
    package private(set) var interrupted: Interrupted?
    /// The network layer's timers; nil: none (see `ScenarioScheduling`).
    package weak var scheduling: ScenarioScheduling?

    /// What the replay learnt of a run that cssd stopped in the middle of.
    package struct Interrupted: Equatable, Sendable {
        package var name: String
        package var clock: String?
        package var played: Int
        package var total: Int
        package var lastStep: String
    }

    /// Bumped whenever scheduled work must not run any more (stop, pause, a new play).
    private var generation = 0
    private var cancelTimer: (() -> Void)?
    /// Wall time: the instant offset 0 stands for (moved forward by pauses).
    private var wallOrigin = ContinuousClock.now
    private var pausedAt: ContinuousClock.Instant?
    private unowned let server: ServerState

    init(server: ServerState) { self.server = server }

    // MARK: Commands

    /// Loads `text` (scenario-load), checked whole and against the running topology.
    /// - Throws: GenericError `LINE:COLUMN: REASON`, or while a run plays or is paused.
    package func load(_ text: String) throws(QMPError) {
        if let state = run?.state, state == .playing || state == .paused {
            throw .generic(
                "scenario '\(run!.scenario.name)' is \(state.rawValue): stop it (scenario-stop) before loading another")
        }
        let parsed: Scenario
        do throws(ScenarioError) {
            parsed = try Scenario.parse(text)
            try parsed.check(against: Self.targets(of: server.subsystem))
        } catch {
            throw .generic(error.description)
        }
        scenario = parsed
        run = nil
        clock = nil
        failure = nil
        interrupted = nil
    }

    /// Starts the loaded scenario from its first step (scenario-play).
    /// - Throws: GenericError when none is loaded, one plays or is paused, the backend is not
    ///   the model, or wall time has no timers.
    package func play(clock requested: Scenario.Clock?) throws(QMPError) {
        guard let scenario else { throw .generic("no scenario is loaded (scenario-load)") }
        if let state = run?.state, state == .playing || state == .paused {
            throw .generic(
                "scenario '\(scenario.name)' is already \(state.rawValue): one scenario plays at a time (scenario-stop first)"
            )
        }
        guard server.backend is ModelBackend else {
            throw .generic("scenarios play on the model backend only (this server's is \(server.backend.name))")
        }
        let clock = requested ?? scenario.clock
        if clock == .wall && scheduling == nil {
            throw .generic("wall time needs the server's timers (not available here): play it in model time")
        }
        self.clock = clock
        failure = nil
        interrupted = nil
        run = ScenarioRun(scenario)
        generation += 1
        wallOrigin = .now
        pausedAt = nil
        scheduling?.logScenario(
            "scenario '\(scenario.name)' playing: \(scenario.steps.count) steps, \(clock.rawValue) time", warning: false
        )
        if run?.state == .finished { ended() } else { kick() }
    }

    /// Pauses a playing run after the step being applied (scenario-pause).
    package func pause() throws(QMPError) {
        guard var run, run.state == .playing else { throw .generic("no scenario is playing") }
        run.pause()
        self.run = run
        cancelScheduled()
        pausedAt = .now
    }

    /// Resumes a paused run (scenario-resume); wall offsets count on from where it paused.
    package func resume() throws(QMPError) {
        guard var run, run.state == .paused else { throw .generic("no scenario is paused") }
        run.resume()
        self.run = run
        if let pausedAt { wallOrigin += ContinuousClock.now - pausedAt }
        pausedAt = nil
        kick()
    }

    /// Stops a playing or paused run (scenario-stop); the steps played stay applied.
    package func stop() throws(QMPError) {
        guard var run, run.state == .playing || run.state == .paused else {
            throw .generic("no scenario is playing or paused")
        }
        run.stop()
        self.run = run
        cancelScheduled()
        ended()
    }

    /// The record that tells the next start a run was cut short by this stop, for a run still
    /// playing or paused: a clean stop's snapshot folds the steps' records, whose ids told it
    /// before (the model is kept either way). Nil otherwise.
    package var interruptionMarker: String? {
        guard let run, run.state == .playing || run.state == .paused else { return nil }
        return Self.marker(progress(step: run.lastPlayed?.name ?? "", played: run.played))
    }

    /// Where the player stands (query-scenario and every command's reply).
    var status: ScenarioStatusReply {
        if let interrupted {
            return ScenarioStatusReply(
                state: .interrupted, name: interrupted.name,
                clock: interrupted.clock.flatMap { ScenarioClock(rawValue: $0) },
                played: interrupted.played, total: interrupted.total, lastStep: interrupted.lastStep)
        }
        guard let scenario else { return ScenarioStatusReply(state: .idle, played: 0, total: 0) }
        guard let run else {
            return ScenarioStatusReply(state: .loaded, name: scenario.name, played: 0, total: scenario.steps.count)
        }
        let state: ScenarioState =
            switch run.state {
            case .playing: .playing
            case .paused: .paused
            case .finished: .finished
            case .stopped: failure == nil ? .stopped : .failed
            }
        let next = run.played < scenario.steps.count ? scenario.steps[run.played].name : nil
        return ScenarioStatusReply(
            state: state, name: scenario.name, clock: clock.flatMap { ScenarioClock(rawValue: $0.rawValue) },
            played: run.played, total: scenario.steps.count, lastStep: run.lastPlayed?.name,
            nextStep: run.state == .finished ? nil : next, failure: failure)
    }

    // MARK: Playing

    /// Plays the run from a later turn of the loop (the reply of the command that started it
    /// goes first), or, without timers, here and now to its end (model time).
    private func kick() {
        generation += 1
        let generation = self.generation
        guard let scheduling else {
            while run?.state == .playing, advance(generation) {}
            return
        }
        cancelTimer = scheduling.schedule(after: 0) { [weak self] in _ = self?.advance(generation) }
    }

    /// Plays what is due now (model time: a batch), then schedules the rest.
    /// - Returns: whether steps remain to be played by a later call (without timers only).
    @discardableResult
    private func advance(_ expected: Int) -> Bool {
        guard expected == generation, let clock, run?.state == .playing else { return false }
        var token: UInt64?
        switch clock {
        case .model:
            var count = 0
            while count < Self.batch, run?.state == .playing {
                guard playStep(&token) else { break }
                count += 1
            }
        case .wall:
            let elapsed = ContinuousClock.now - wallOrigin
            while let step = run?.next, Duration.milliseconds(step.offset) <= elapsed {
                guard playStep(&token) else { break }
            }
        }
        guard run?.state == .playing else {
            if let token, let log = server.durability { commit(token, of: log, then: nil) }
            ended()
            return false
        }
        guard let scheduling else {
            // No loop to return to: the caller plays on (wall time needs timers, refused in
            // `play`).
            if let token, let log = server.durability { commit(token, of: log, then: nil) }
            return true
        }
        let next = { [weak self] in _ = self?.advance(expected) }
        if let token, let log = server.durability, clock == .model {
            // The next batch waits for this one's records: the memory they hold stays bounded.
            commit(token, of: log) { next() }
            return false
        }
        if let token, let log = server.durability { commit(token, of: log, then: nil) }
        var delay = 0
        if clock == .wall, let step = run?.next {
            let due = wallOrigin + .milliseconds(step.offset) - ContinuousClock.now
            delay = max(0, Int((due / .milliseconds(1)).rounded(.up)))
        }
        cancelTimer = scheduling.schedule(after: delay, next)
        return false
    }

    /// Commits the records up to `token`; a failure stops the run (its changes were made, the
    /// model is consistent, but a restart would not see them).
    private func commit(_ token: UInt64, of log: DurableLog, then next: (() -> Void)?) {
        guard let scheduling else {
            _ = log.waitUntilDurable(token)
            return
        }
        scheduling.whenDurable(token, of: log) { [weak self] error in
            guard let self else { return }
            if let error, var run = self.run, run.state == .playing || run.state == .paused {
                self.failure = "\(run.lastPlayed?.name ?? "-"): could not be recorded in the state dir: \(error)"
                run.stop()
                self.run = run
                self.cancelScheduled()
                self.ended()
                return
            }
            next?()
        }
    }

    /// Applies the next step and publishes its changes; false when the run stopped at it.
    /// `token`: the last state-dir record appended.
    private func playStep(_ token: inout UInt64?) -> Bool {
        guard var run, let step = run.next, let model = server.backend as? ModelBackend else { return false }
        let origin = CommandOrigin.scenario(name: run.scenario.name, step: step.name)
        let time = server.clock()
        let context = CommandContext(server: server, session: ScenarioSession(origin), time: time)
        if let check = Self.interlocked(step.action), !check.force {
            do throws(QMPError) {
                try context.checkLastPaths(check.action, check.removal, force: false)
            } catch {
                failure = "\(step.name): \(error.desc)"
                run.stop()
                self.run = run
                return false
            }
        }
        if case .removeDevice(let device) = step.action,
            let subchannel = model.subsystem.subchannel(device: device)?.id,
            let guest = server.guests.binding(of: subchannel)?.guest
        {
            // As remove-device refuses it: the guest's device cannot vanish under it unseen.
            failure = "\(step.name): device \(device) is passed through to guest '\(guest)'; detach it first"
            run.stop()
            self.run = run
            return false
        }
        let changes = run.playNext(on: &model.subsystem)
        self.run = run
        if let refused = run.failure, run.state == .stopped {
            failure = "\(refused.step): \(refused.reason)"
            return false
        }
        let kind = Self.kind(of: step.action)
        let records = Self.records(for: step.action, changes: changes)
        let log = server.durability.flatMap { $0.records("inject-path-fault") ? $0 : nil }
        var next = 0
        // One step, one whole change: no periodic snapshot between its records.
        let appendTogether: (() -> Void) -> Void = { body in
            guard let log else { return body() }
            log.appendingTogether(body)
        }
        appendTogether {
            for record in records {
                let before = server.pathChanges.lastSequence
                for change in changes[next..<next + record.changes] {
                    if let kind { server.pathChanges.publish(change, as: kind, cause: .command(by: origin), at: time) }
                }
                next += record.changes
                let after = server.pathChanges.lastSequence
                guard let log else { continue }
                var request = record.request
                // Every record of the step names it (the replay journals its changes with the
                // scenario and step as cause) and how far the run got (the restart counts the
                // steps from these: the step's records are committed together).
                request.append(("id", progress(step: step.name, played: run.played)))
                token = log.append(
                    request: JSON.object(request).serialized(), time: time,
                    sequences: after > before ? (before + 1)...after : nil)
            }
        }
        if changes.isEmpty, let log {
            token = log.append(
                request: Self.marker(progress(step: step.name, played: run.played)), time: time, sequences: nil)
        }
        return true
    }

    /// The request id of a step's record: the scenario, the step and how far the run got.
    private func progress(step: String, played: Int) -> JSON {
        .object([
            ("scenario", .string(run?.scenario.name ?? "")), ("clock", .string(clock?.rawValue ?? "model")),
            ("step", .string(step)), ("played", .integer(played)), ("total", .integer(run?.scenario.steps.count ?? 0)),
        ])
    }

    /// A run ended (finished, stopped, failed): the log line, and the state dir's record that
    /// it ended (a restart then does not call it interrupted).
    private func ended() {
        guard let run else { return }
        let status = self.status
        let message =
            "scenario '\(run.scenario.name)' \(status.state.rawValue): \(run.played) of \(run.scenario.steps.count) steps played"
            + (failure.map { "; \($0)" } ?? "")
        scheduling?.logScenario(message, warning: failure != nil)
        // In a later turn of the loop: after the reply of the command that ended it.
        let announce = { [weak scheduling] in
            _ = scheduling?.schedule(after: 0) { [weak scheduling] in scheduling?.announceEnd(status.json) }
        }
        guard let log = server.durability, log.records("inject-path-fault") else {
            announce()
            return
        }
        let token = log.append(
            request: Self.marker(
                .object([
                    ("scenario", .string(run.scenario.name)), ("ended", .string(status.state.rawValue)),
                    ("played", .integer(run.played)), ("total", .integer(run.scenario.steps.count)),
                ])), time: server.clock(), sequences: nil)
        // Announced once the run's records are durable: its last events are deliverable then,
        // and go first.
        guard let scheduling else {
            _ = log.waitUntilDurable(token)
            return
        }
        scheduling.whenDurable(token, of: log) { _ in announce() }
    }

    private func cancelScheduled() {
        generation += 1
        cancelTimer?()
        cancelTimer = nil
    }

    // MARK: Replay (--state-dir)

    /// Told of every request the state dir's replay ran, with its id: the records of a
    /// scenario's steps say how far it got, and the record of its end that it ended.
    func replayed(id: JSON?) {
        guard let id, let name = id["scenario"]?.stringValue else { return }
        guard id["ended"] == nil, let step = id["step"]?.stringValue, let played = id["played"]?.intValue,
            let total = id["total"]?.intValue, played < total
        else {
            interrupted = nil
            return
        }
        interrupted = Interrupted(
            name: name, clock: id["clock"]?.stringValue, played: played, total: total, lastStep: step)
    }

    /// A record that changes nothing and carries `id`: a read-only command the replay runs
    /// harmlessly, whose id tells the player where a run stood.
    static func marker(_ id: JSON) -> String {
        JSON.object([("execute", .string("query-scenario")), ("id", id)]).serialized()
    }

    // MARK: Steps as commands

    /// What a running topology has for `Scenario.check(against:)`.
    static func targets(of subsystem: Subsystem) -> ScenarioTargets {
        var devices: [DeviceID: SubchannelID] = [:]
        var subchannels = Set<SubchannelID>()
        for subchannel in subsystem.subchannels {
            subchannels.insert(subchannel.id)
            if let device = subchannel.deviceID { devices[device] = subchannel.id }
        }
        return ScenarioTargets(
            chpids: Set(subsystem.channelPaths.map(\.id)), devices: devices, subchannels: subchannels)
    }

    /// The events' `change` of a step's changes, as the command of the same name publishes
    /// them; nil for an action whose changes the model does not make yet.
    static func kind(of action: ScenarioAction) -> PathEventChange? {
        switch action {
        case .pathFault(_, let fault), .devicePathFault(_, _, let fault): PathEventChange(fault)
        case .vary(_, let state, _, _): PathEventChange(state)
        case .configure(_, let state, _): PathEventChange(state)
        case .addDevice: .subchannelAdded
        case .removeDevice: .subchannelRemoved
        case .controlUnitQuiesce(_, _, let resume): resume ? .driverEnabled : .driverDisabledCuir
        }
    }

    /// The records a step's `changes` are kept as in the state dir, in order: each the command
    /// that makes the same changes on replay and how many of the changes it made (add-device
    /// makes one per installed chpid; a control unit's quiesce one per device and path, each
    /// as `inject-dasd-path-fault` makes it). A step with no change has none.
    static func records(for action: ScenarioAction, changes: [PathChange]) -> [(
        request: [(String, JSON)], changes: Int
    )] {
        guard !changes.isEmpty else { return [] }
        if case .controlUnitQuiesce(_, _, let resume) = action {
            return changes.map { change in
                let device = change.affected.first?.device?.description ?? ""
                return (
                    [
                        ("execute", .string("inject-dasd-path-fault")),
                        (
                            "arguments",
                            .object([
                                ("devno", .string(device)), ("chpid", .string(change.chpid.description)),
                                ("fault", .string(resume ? "cuir-resume" : "cuir-quiesce")),
                            ])
                        ),
                    ], 1
                )
            }
        }
        let requests = requests(for: action)
        if requests.count == changes.count { return requests.map { ($0, 1) } }
        return requests.count == 1 ? [(requests[0], changes.count)] : []
    }

    /// For an operator step that removes a path: the interlock's action text, the removal and
    /// the step's `force`; nil for a step the interlock does not check.
    static func interlocked(_ action: ScenarioAction) -> (action: String, removal: PathRemoval, force: Bool)? {
        switch action {
        case .vary(let chpid, .offline, let subchannel?, let force):
            (
                "vary-path \(chpid) offline for subchannel \(subchannel)",
                PathRemoval(perSubchannel: [([chpid], [subchannel])]), force
            )
        case .vary(let chpid, .offline, nil, let force):
            ("vary-path \(chpid) offline", PathRemoval(chpids: [chpid]), force)
        case .configure(let chpid, .standby, let force):
            ("configure-chpid \(chpid) standby", PathRemoval(chpids: [chpid]), force)
        default: nil
        }
    }

    /// The commands that make a step's changes, one per change in order (one per chpid of a
    /// multi-chpid fault), as the state dir records and replays them; operator steps with
    /// `force` (they passed the interlock, or stated it, when played).
    static func requests(for action: ScenarioAction) -> [[(String, JSON)]] {
        func command(_ name: String, _ arguments: [(String, JSON)]) -> [(String, JSON)] {
            [("execute", .string(name)), ("arguments", .object(arguments))]
        }
        switch action {
        case .pathFault(let chpids, let fault):
            return chpids.map {
                command("inject-path-fault", [("chpid", .string($0.description)), ("fault", .string(fault.rawValue))])
            }
        case .vary(let chpid, let state, let subchannel, _):
            var arguments: [(String, JSON)] = [
                ("chpid", .string(chpid.description)), ("state", .string(state.rawValue)),
            ]
            if let subchannel { arguments.append(("subchannel", .string(subchannel.description))) }
            arguments.append(("force", .bool(true)))
            return [command("vary-path", arguments)]
        case .configure(let chpid, let state, _):
            return [
                command(
                    "configure-chpid",
                    [
                        ("chpid", .string(chpid.description)), ("state", .string(state.description)),
                        ("force", .bool(true)),
                    ])
            ]
        case .devicePathFault(let device, let chpid, let fault):
            return [
                command(
                    "inject-device-path-fault",
                    [
                        ("device", .string(device.description)), ("chpid", .string(chpid.description)),
                        ("fault", .string(fault.rawValue)),
                    ])
            ]
        case .addDevice(let added):
            return [
                command(
                    "add-device",
                    [
                        ("device", .string(added.device.description)),
                        ("subchannel", .string(added.subchannel.description)),
                        ("chpids", .array(added.chpids.map { .string($0.description) })),
                        (
                            "dev-type",
                            .string(Hex.string(added.devType, width: 4) + "/" + Hex.string(added.devModel, width: 2))
                        ),
                        (
                            "cu-type",
                            .string(Hex.string(added.cuType, width: 4) + "/" + Hex.string(added.cuModel, width: 2))
                        ),
                    ])
            ]
        case .removeDevice(let device):
            return [command("remove-device", [("device", .string(device.description))])]
        case .controlUnitQuiesce:
            return []  // one record per change (`records(for:changes:)`)
        }
    }
}

/// The session a scenario's steps run in: negotiated, read-write, owning no subscription; its
/// origin names the scenario and step.
final class ScenarioSession: SessionControl {
    let origin: CommandOrigin

    init(_ origin: CommandOrigin) { self.origin = origin }

    var isNegotiated: Bool { true }
    var isReadOnly: Bool { false }
    func enterCommandMode(oob: Bool) {}
}
