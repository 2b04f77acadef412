// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import Foundation
import JSONValues
import PathChangePipeline
import PathEvents
import QMPCommands
import QMPSchema
import QMPWire
import StateStore
import TestSupport
import Testing
import VFIOCCW

/// A session of the replay's kind, whose negotiation state a sample may choose.
private final class SampleSession: SessionControl {
    var isNegotiated: Bool
    var isReadOnly: Bool { false }
    var origin: CommandOrigin { .connection(1) }
    init(negotiated: Bool) { isNegotiated = negotiated }
    func enterCommandMode(oob: Bool) { isNegotiated = true }
}

/// What a snapshot keeps of a model server, as bytes: what survives a restart.
private struct Owned: Equatable, CustomStringConvertible {
    let model: [UInt8]
    let guests: [UInt8]
    let lastSequence: UInt64
    /// The model's channel-measurement facility (enabled, loads, counts), at a fixed model time.
    let measurement: [UInt8]

    /// Sizes and FNV-1a digests: enough to see which part differs without kilobytes of bytes.
    var description: String {
        func digest(_ bytes: [UInt8]) -> String {
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            return "\(bytes.count) bytes #\(String(hash, radix: 16))"
        }
        return
            "model \(digest(model)), guests \(digest(guests)), last sequence \(lastSequence), "
            + "measurement \(digest(measurement))"
    }
}

/// One start of cssd with the model and a state dir, wired as CSSD.swift wires it, every
/// condition on (so that `quit` exists); commands run as a session runs them: a successful
/// one is recorded only when the store says it records that command.
private final class ModelDaemon {
    let store: StateStore
    let backend: ModelBackend
    let state: ServerState
    let restored: StateStore.Restored
    let snapshot: StateStore.LoadedSnapshot?
    private var time = 1_700_000_000

    init(_ directory: String) throws {
        let subsystem = try Subsystem(topology: .embeddedDefault)
        store = try StateStore.open(
            directory: directory, fingerprint: StateStore.fingerprint(of: subsystem, backend: "model"),
            backend: "model", changedState: CommandRegistry.changedState,
            options: StateStore.Options(journalCapacity: 1000, snapshotEvery: 0))
        backend = ModelBackend(subsystem)
        var guests = try Guests(topology: .embeddedDefault, host: subsystem)
        snapshot = try store.loadSnapshot(model: backend.subsystem)
        if let snapshot {
            backend.subsystem = snapshot.model!
            guests = snapshot.guests
        }
        let conditions = Set(Schema.embedded().commands.compactMap(\.condition))
        let journal = try store.loadJournal(capacity: 1000, newest: snapshot?.lastSequence ?? 0)
        state = try ServerState.standard(
            options: ServerOptions(conditions: conditions), backend: backend, guests: guests, journal: journal)
        restored = try store.restore(into: state)
        // As the daemon does (Daemon+Measurement.swift): the facility's state, after the replay.
        _ = try store.restoreMeasurement(into: backend)
        state.durability = store
        state.pathChanges.register(store, as: .stateStore)
    }

    var owned: Owned {
        Owned(
            model: backend.subsystem.runtimeState, guests: state.guests.state,
            lastSequence: state.pathChanges.lastSequence, measurement: backend.measurement.savedState(at: .zero))
    }

    /// Runs `text` as QMPSession.execute does with a state dir.
    @discardableResult
    func run(_ text: String, negotiated: Bool = true) -> Result<JSON, QMPError> {
        time += 1
        let now = EventTime(seconds: time, microseconds: 0)
        state.clock = { now }
        let request: QMPRequest
        switch QMPRequest.check(JSON.parse(text)!, oobEnabled: true) {
        case .success(let checked): request = checked
        case .failure(let rejection): return .failure(.generic(rejection.desc))
        }
        let before = state.pathChanges.lastSequence
        let result: Result<JSON, QMPError>
        switch Dispatcher.dispatch(request, server: state, session: SampleSession(negotiated: negotiated)) {
        case .success(.reply(let value)): result = .success(value)
        case .success(.deferred(let work)): result = work.runInline()
        case .failure(let error): result = .failure(error)
        }
        if case .success = result, store.records(request.command) {
            let after = state.pathChanges.lastSequence
            let token = store.append(request: text, time: now, sequences: after > before ? (before + 1)...after : nil)
            _ = store.waitUntilDurable(token)
        }
        return result
    }
}

/// A valid call of a command on the embedded default topology, after the calls that give it
/// something to act on.
private struct Sample {
    var setup: [String] = []
    var request: String
    var negotiated = true
    /// The model refuses the command with a GenericError containing this text (the
    /// intended-state commands: linux-sysfs only, kept in the state dir's own table rather
    /// than the command log), and changes nothing.
    var refusedOnModel: String? = nil
}

/// Every command of the schema, called. A command added to API/ without a sample here fails
/// `everyCommandHasASample`: decide what it changes, mark it in the schema, add its sample.
private let samples: [String: Sample] = {
    func call(_ name: String, _ arguments: String? = nil) -> String {
        arguments.map { #"{"execute":"\#(name)","arguments":\#($0)}"# } ?? #"{"execute":"\#(name)"}"#
    }
    var samples: [String: Sample] = [:]
    for name in [
        "query-version", "query-commands", "query-qmp-schema", "quit", "query-chpids", "query-subchannels",
        "query-orphaned-devices", "query-css", "query-path-event-journal", "query-path-event-subscriptions",
        "query-notify", "query-guests", "query-path-event-stats", "query-connections", "subscribe-path-events",
        "query-chpid-measurements", "query-chpid-drift", "query-path-redundancy", "query-dasd-paths",
        "query-path-verification",
    ] {
        samples[name] = Sample(request: call(name))
    }
    samples["qmp_capabilities"] = Sample(request: call("qmp_capabilities"), negotiated: false)
    // Host passthrough is what a linux-sysfs host shows; the model's guests are query-guests.
    samples["query-host-passthrough"] = Sample(
        request: call("query-host-passthrough"), refusedOnModel: "the model backend has no host passthrough")
    samples["unsubscribe-path-events"] = Sample(
        setup: [call("subscribe-path-events")], request: call("unsubscribe-path-events", #"{"subscription":1}"#))
    samples["store-subchannel"] = Sample(request: call("store-subchannel", #"{"subchannel":"0.0.0003"}"#))
    samples["modify-subchannel"] = Sample(
        request: call("modify-subchannel", #"{"subchannel":"0.0.0003","intparm":1234,"enabled":false}"#))
    // A CRW to store: a fault makes one.
    samples["store-crw"] = Sample(
        setup: [call("inject-path-fault", #"{"chpid":"0.44","fault":"temporary-error"}"#)], request: call("store-crw"))
    samples["query-path-impact"] = Sample(request: call("query-path-impact", #"{"chpids":["0.60"]}"#))
    samples["reset-channel-path"] = Sample(request: call("reset-channel-path", #"{"chpid":"0.40"}"#))
    samples["vary-path"] = Sample(request: call("vary-path", #"{"chpid":"0.40","state":"offline"}"#))
    samples["configure-chpid"] = Sample(request: call("configure-chpid", #"{"chpid":"0.40","state":"standby"}"#))
    samples["inject-path-fault"] = Sample(
        request: call("inject-path-fault", #"{"chpid":"0.41","fault":"permanent-error"}"#))
    samples["add-device"] = Sample(
        request: call(
            "add-device",
            #"{"device":"0.0.4000","subchannel":"0.0.0040","chpids":["0.44","0.45"],"dev-type":"3390/0c","cu-type":"3990/e9"}"#
        ))
    samples["remove-device"] = Sample(request: call("remove-device", #"{"device":"0.0.2000"}"#))
    samples["query-guest-subchannels"] = Sample(request: call("query-guest-subchannels", #"{"guest":"guest1"}"#))
    // The host's masks changed since the guest last looked: its STSCH copies them in (crw).
    samples["guest-store-subchannel"] = Sample(
        setup: [call("vary-path", #"{"chpid":"0.40","state":"offline"}"#)],
        request: call("guest-store-subchannel", #"{"guest":"guest1","subchannel":"fe.0.0002"}"#))
    samples["guest-store-crw"] = Sample(
        setup: [call("vary-path", #"{"chpid":"0.40","state":"offline"}"#)],
        request: call("guest-store-crw", #"{"guest":"guest1"}"#))
    samples["attach-passthrough"] = Sample(
        request: call("attach-passthrough", #"{"guest":"guest1","host-subchannel":"0.0.002d"}"#))
    samples["detach-passthrough"] = Sample(
        request: call("detach-passthrough", #"{"guest":"guest1","guest-subchannel":"fe.0.0002"}"#))
    // The channel-measurement facility is kept as its state (ChangedState.measurement).
    // Issue 22: the model's DASD drivers (a 3390 on a 3990 is one); a path the driver
    // disabled to give back, and IFCCs counted against the model clock (replayed with it).
    samples["dasd-path-reset"] = Sample(
        setup: [call("inject-dasd-path-fault", #"{"devno":"0.0.2000","chpid":"0.44","fault":"miscabled"}"#)],
        request: call("dasd-path-reset", #"{"devno":"0.0.2000","chpids":["0.44"]}"#))
    samples["verify-paths"] = Sample(request: call("verify-paths", #"{"chpids":["0.44","0.45"]}"#))
    samples["inject-dasd-path-fault"] = Sample(
        request: call("inject-dasd-path-fault", #"{"devno":"0.0.2000","chpid":"0.45","fault":"ifcc","count":300}"#))
    samples["set-channel-measurement"] = Sample(request: call("set-channel-measurement", #"{"enabled":true}"#))
    samples["set-chpid-load"] = Sample(
        request: call("set-chpid-load", #"{"chpid":"0.40","load":{"util_part":10}}"#))
    samples["set-path-event-strategy"] = Sample(
        request: call("set-path-event-strategy", #"{"guest":"guest1","strategy":"per-device"}"#))
    for (name, arguments) in [
        ("set-chpid-intent", #"{"chpid":"0.40","vary":"offline"}"#), ("clear-chpid-intent", #"{"chpid":"0.40"}"#),
        ("reapply-chpid-intent", #"{"chpid":"0.40"}"#),
    ] {
        samples[name] = Sample(
            request: call(name, arguments), refusedOnModel: "the model backend keeps no intended state")
    }
    // Issue 26: the scenario player. Without the server's timers (this harness) model time
    // plays within scenario-play, so no run can be caught playing: pause, resume and stop are
    // refused here (the live tests, Tests/python/test_scenario_player.py, play them).
    let scenario =
        #"{\"scenario\": \"s\", \"steps\": [{\"at\": 0, \"execute\": \"inject-path-fault\", \"arguments\": {\"chpids\": [\"0.42\", \"0.43\"], \"fault\": \"permanent-error\"}}, {\"at\": 1, \"execute\": \"inject-device-path-fault\", \"arguments\": {\"device\": \"0.0.2000\", \"chpid\": \"0.44\", \"fault\": \"temporary-error\"}}, {\"at\": 2, \"execute\": \"vary-path\", \"arguments\": {\"chpid\": \"0.4c\", \"state\": \"offline\", \"force\": true}}]}"#
    let load = call("scenario-load", #"{"scenario":"\#(scenario)"}"#)
    samples["scenario-load"] = Sample(request: load)
    samples["query-scenario"] = Sample(setup: [load], request: call("query-scenario"))
    samples["scenario-play"] = Sample(setup: [load], request: call("scenario-play"))
    samples["scenario-pause"] = Sample(
        setup: [load], request: call("scenario-pause"), refusedOnModel: "no scenario is playing")
    samples["scenario-resume"] = Sample(
        setup: [load], request: call("scenario-resume"), refusedOnModel: "no scenario is paused")
    samples["scenario-stop"] = Sample(
        setup: [load], request: call("scenario-stop"), refusedOnModel: "no scenario is playing or paused")
    samples["inject-device-path-fault"] = Sample(
        request: call("inject-device-path-fault", #"{"device":"0.0.2000","chpid":"0.44","fault":"permanent-error"}"#))
    return samples
}()

/// Commands that change state through records of their own rather than their request: a
/// scenario's steps are recorded one by one as the commands that make them (ScenarioPlayer), so
/// scenario-play is not marked "changes", yet what it played must survive a crash.
private let recordsItsSteps: Set<String> = ["scenario-play"]

/// What a SIGKILL leaves of a running cssd's state dir, taken while it runs and writes nothing:
/// the database and its WAL as they are on disk (SQLite rebuilds the WAL index on open). Unlike
/// a close, nothing is written at the end.
private func crashImage(of directory: String) throws -> String {
    let image = makeTemporaryDirectory(prefix: "cssd-recorded")
    for file in ["state.sqlite", "state.sqlite-wal"]
    where FileManager.default.fileExists(atPath: directory + "/" + file) {
        try FileManager.default.copyItem(atPath: directory + "/" + file, toPath: image + "/" + file)
    }
    return image
}

/// The set of commands `--state-dir` records comes from the schema's `"changes"`, and the
/// schema says it of exactly the commands that change what a snapshot keeps: each command of
/// the schema runs on a model server with a state dir, and its effect must survive a crash
/// (a restart from the log alone, no snapshot).
@Suite struct RecordedCommandsTests {
    static let schema = Schema.embedded()

    @Test func everyCommandHasASample() {
        let names = Set(Self.schema.commands.map(\.name))
        #expect(names.subtracting(samples.keys).sorted() == [], "commands without a sample")
        #expect(Set(samples.keys).subtracting(names).sorted() == [], "samples of no command")
    }

    @Test func theGeneratedTableIsTheSchemasAnnotation() {
        let annotated = Dictionary(
            uniqueKeysWithValues: Self.schema.commands.compactMap { command in
                command.changes.map { (command.name, $0) }
            })
        #expect(CommandRegistry.changedState == annotated)
    }

    @Test(arguments: Schema.embedded().commands.map(\.name))
    func aCommandChangesStateIfAndOnlyIfItIsMarkedAndItsEffectSurvivesACrash(_ name: String) throws {
        let sample = try #require(samples[name], "no sample for \(name)")
        let directory = makeTemporaryDirectory(prefix: "cssd-recorded")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let daemon = try ModelDaemon(directory)
        for text in sample.setup { _ = try daemon.run(text).get() }
        let before = daemon.owned
        let result = daemon.run(sample.request, negotiated: sample.negotiated)
        if let refusal = sample.refusedOnModel {
            defer { daemon.store.close() }
            guard case .failure(let error) = result else {
                Issue.record("\(name) must be refused on the model")
                return
            }
            #expect(error.desc.contains(refusal), "\(name): \(error.desc)")
            #expect(daemon.owned == before, "\(name) was refused but changed the state")
            #expect(Self.schema.command(named: name)?.changes == nil)
            return
        }
        #expect(throws: Never.self, "\(name): the sample must succeed") { try result.get() }
        let after = daemon.owned
        let changes = Self.schema.command(named: name)?.changes
        if recordsItsSteps.contains(name) {
            #expect(after != before && changes == nil, "\(name) must play its steps, recorded as their commands")
        } else if after != before {
            #expect(changes != nil, "\(name) changed the state but the schema does not mark it \"changes\"")
        } else {
            #expect(changes == nil, "\(name) is marked \"changes\" but its sample changed nothing")
        }
        if changes != nil {
            #expect(
                daemon.store.records(name), "\(name) is marked \"changes\" but the model's store does not record it")
        }
        // SIGKILL: nothing but what was committed; the restart replays the log.
        let image = try crashImage(of: directory)
        defer { try? FileManager.default.removeItem(atPath: image) }
        daemon.store.close()
        let restarted = try ModelDaemon(image)
        defer { restarted.store.close() }
        #expect(restarted.snapshot == nil && restarted.restored.failed == [])
        #expect(restarted.owned == after, "\(name): its effect did not survive a restart from the log")
    }

    @Test func aRealHostsStoreRecordsOnlyWhatCSSDOwnsThere() {
        let guests = Set(CommandRegistry.changedState.filter { $0.value == .guests }.keys)
        #expect(guests.contains("guest-store-subchannel"))
        #expect(StateStore.recordedCommands(backend: .linuxSysfs, changedState: CommandRegistry.changedState) == guests)
        #expect(
            StateStore.recordedCommands(backend: .model, changedState: CommandRegistry.changedState)
                == Set(CommandRegistry.changedState.keys))
    }
}
