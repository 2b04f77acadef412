// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import Foundation
import JSONValues
import NIOConcurrencyHelpers
import NIOPosix
import PathChangePipeline
import PathEvents
import QMPCommands
import QMPWire
import SQLiteNIO
import StateStore
import TestSupport
import Testing
import VFIOCCW

@testable import CSSModel

/// A read-write, negotiated session for commands run straight through the dispatcher.
private final class TestSession: SessionControl {
    var isNegotiated: Bool { true }
    var isReadOnly: Bool { false }
    var origin: CommandOrigin { .connection(1) }
    func enterCommandMode(oob: Bool) {}
}

/// One cssd start on a state dir, as CSSD.swift wires it: snapshot, journal, replay, sinks.
private final class Started {
    let store: StateStore
    let backend: ModelBackend
    let state: ServerState
    let restored: StateStore.Restored
    let snapshot: StateStore.LoadedSnapshot?
    let session = TestSession()
    private var time = 1_700_000_000

    init(_ directory: String, snapshotEvery: Int, journal: Int = 1000) throws {
        let subsystem = try Subsystem(topology: .embeddedDefault)
        let fingerprint = StateStore.fingerprint(of: subsystem, backend: "model")
        store = try StateStore.open(
            directory: directory, fingerprint: fingerprint, backend: "model",
            changedState: CommandRegistry.changedState,
            options: StateStore.Options(journalCapacity: journal, snapshotEvery: snapshotEvery))
        backend = ModelBackend(subsystem)
        var guests = try Guests(topology: .embeddedDefault, host: subsystem)
        snapshot = try store.loadSnapshot(model: backend.subsystem)
        if let snapshot {
            backend.subsystem = snapshot.model!
            guests = snapshot.guests
        }
        let journal = try store.loadJournal(capacity: journal, newest: snapshot?.lastSequence ?? 0)
        state = try ServerState.standard(backend: backend, guests: guests, journal: journal)
        restored = try store.restore(into: state)
        state.durability = store
        state.pathChanges.register(store, as: .stateStore)
        store.capture = { [state, backend] in
            StateStore.Captured(
                model: backend.subsystem, guests: state.guests, lastSequence: state.pathChanges.lastSequence)
        }
    }

    /// Runs a command as a session with a state dir does: fixed clock, record, wait until durable.
    @discardableResult
    func run(_ text: String) throws -> JSON {
        let (value, durable) = try attempt(text)
        #expect(throws: Never.self) { try durable.get() }
        return value
    }

    /// `run`, returning the commit's outcome instead of expecting it to succeed (the command's
    /// effect stays, and its record waits for the next commit, as in a session).
    func attempt(_ text: String) throws -> (JSON, Result<Void, BackendError>) {
        time += 1
        let now = EventTime(seconds: time, microseconds: 5)
        state.clock = { now }
        let request = try QMPRequest.check(JSON.parse(text)!, oobEnabled: true).get()
        let before = state.pathChanges.lastSequence
        let result: Result<JSON, QMPError>
        switch Dispatcher.dispatch(request, server: state, session: session) {
        case .success(.reply(let value)): result = .success(value)
        case .success(.deferred(let work)): result = work.runInline()
        case .failure(let error): result = .failure(error)
        }
        let value = try result.get()
        let after = state.pathChanges.lastSequence
        let token = store.append(request: text, time: now, sequences: after > before ? (before + 1)...after : nil)
        return (value, store.waitUntilDurable(token))
    }

    /// What a client can see: the paths, subchannels, CRW queue, guests and journal.
    var visible: [String] {
        let journal = state.journal.changes.map {
            "\($0.sequence) \($0.kind) \($0.time) \($0.change) \($0.guests)"
        }
        return [
            "\(backend.subsystem.channelPaths)", "\(backend.subsystem.subchannels)",
            "\(backend.subsystem.crwQueue)", "\(state.guests.state)", "\(state.pathChanges.lastSequence)",
        ] + journal
    }
}

private func commandRows(_ directory: String) throws -> Int {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { try? group.syncShutdownGracefully() }
    let connection = try SQLiteConnection.open(
        storage: .file(path: directory + "/state.sqlite"), threadPool: .singleton, on: group.next()
    ).wait()
    defer { try? connection.close().wait() }
    let rows = try connection.query("SELECT count(*) AS n FROM commands").wait()
    return rows.first!.column("n")!.integer!
}

private func journalSequences(_ directory: String) throws -> [Int] {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { try? group.syncShutdownGracefully() }
    let connection = try SQLiteConnection.open(
        storage: .file(path: directory + "/state.sqlite"), threadPool: .singleton, on: group.next()
    ).wait()
    defer { try? connection.close().wait() }
    return try connection.query("SELECT sequence FROM journal ORDER BY sequence").wait().map {
        $0.column("sequence")!.integer!
    }
}

private struct ProgramFailed: Error, CustomStringConvertible {
    let description: String
}

/// Runs a program (mount, umount) and expects it to succeed.
private func runProgram(_ path: String, _ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw ProgramFailed(description: "\(path) \(arguments) exited with \(process.terminationStatus)")
    }
}

/// Writes zeros to `path` until the file system is full (ENOSPC).
private func fill(_ path: String) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    precondition(fd >= 0, "cannot create \(path)")
    defer { close(fd) }
    let block = [UInt8](repeating: 0, count: 4096)
    while block.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
}

private func execute(_ directory: String, _ sql: String) throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { try? group.syncShutdownGracefully() }
    let connection = try SQLiteConnection.open(
        storage: .file(path: directory + "/state.sqlite"), threadPool: .singleton, on: group.next()
    ).wait()
    _ = try connection.query(sql).wait()
    try connection.close().wait()
}

@Suite(.serialized) struct StateStoreTests {
    /// Commands that change every kind of state the snapshot keeps.
    private func workload(_ started: Started, rounds: Int) throws {
        let guest = started.state.guests.names.first!
        try started.run(
            #"{"execute":"set-path-event-strategy","arguments":{"guest":"\#(guest)","strategy":"per-device"}}"#)
        for round in 0..<rounds {
            let chpid = "0.4\(round % 4)"
            let state = (round / 4) % 2 == 0 ? "offline" : "online"
            // The fourth of 0.40-0.43 takes the last path of 42 DASDs in use: forced (the
            // last-path interlock), as the workload means to change every kind of state.
            try started.run(
                #"{"execute":"vary-path","arguments":{"chpid":"\#(chpid)","state":"\#(state)","force":true}}"#)
            if round % 5 == 0 {
                try started.run(
                    #"{"execute":"inject-path-fault","arguments":{"chpid":"0.44","fault":"temporary-error"}}"#)
                try started.run(#"{"execute":"store-crw"}"#)
                try started.run(#"{"execute":"guest-store-crw","arguments":{"guest":"\#(guest)"}}"#)
            }
        }
        try started.run(#"{"execute":"configure-chpid","arguments":{"chpid":"0.45","state":"standby"}}"#)
    }

    @Test func snapshotAndLogTailRestoreTheSameStateAndTheLogIsTruncated() throws {
        let directory = makeTemporaryDirectory(prefix: "cssd-state")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try Started(directory, snapshotEvery: 7)
        try workload(first, rounds: 40)
        let before = first.visible
        let commands = first.state.pathChanges.lastSequence
        #expect(commands > 40)
        first.store.close()
        // Snapshots every 7 commands: at most 7 rows are left in the log.
        #expect(try commandRows(directory) <= 7)

        let second = try Started(directory, snapshotEvery: 7)
        #expect(second.snapshot != nil)
        #expect(second.restored.failed.isEmpty)
        #expect(second.restored.commands <= 7)
        #expect(second.visible == before)
        // The numbering and the state go on from there.
        try second.run(#"{"execute":"vary-path","arguments":{"chpid":"0.46","state":"offline"}}"#)
        #expect(second.state.pathChanges.lastSequence == commands + 1)
        second.store.snapshotNow()
        let after = second.visible
        second.store.close()
        #expect(try commandRows(directory) == 0)

        let third = try Started(directory, snapshotEvery: 0)
        #expect(third.restored.commands == 0)
        #expect(third.visible == after)
        third.store.close()
    }

    /// A scenario step of several records (a group's chpids): its changes are all made, then
    /// its records appended together. A periodic snapshot due among them is taken
    /// after the last one: one taken between would hold the whole step and be followed by the
    /// rest of its records, replayed again on top. The record logged after a snapshot (the
    /// player's "interrupted" marker) outlives the log the snapshot deletes.
    @Test func recordsAppendedTogetherGetOneSnapshotAfterTheLastAndItsFollowerIsKept() throws {
        let directory = makeTemporaryDirectory(prefix: "cssd-state")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // One command, then the step's three records: the snapshot every three commands falls
        // due at the step's second record.
        let first = try Started(directory, snapshotEvery: 3)
        try first.run(#"{"execute":"vary-path","arguments":{"chpid":"0.46","state":"offline"}}"#)
        let marker = #"{"execute":"query-scenario","id":{"scenario":"s","step":"down","played":1,"total":2}}"#
        first.store.afterSnapshot = { marker }
        let now = EventTime(seconds: 1_700_000_100, microseconds: 0)
        first.state.clock = { now }
        var sequences: [ClosedRange<UInt64>] = []
        let requests = ["0.40", "0.41", "0.42"].map {
            #"{"execute":"inject-path-fault","arguments":{"chpid":"\#($0)","fault":"permanent-error"}}"#
        }
        for request in requests {
            let before = first.state.pathChanges.lastSequence
            let parsed = try QMPRequest.check(JSON.parse(request)!, oobEnabled: true).get()
            guard case .success = Dispatcher.dispatch(parsed, server: first.state, session: first.session) else {
                Issue.record("\(request) failed")
                return
            }
            sequences.append((before + 1)...first.state.pathChanges.lastSequence)
        }
        let token = first.store.appendingTogether {
            zip(requests, sequences).map { first.store.append(request: $0, time: now, sequences: $1) }.last!
        }
        #expect(throws: Never.self) { try first.store.waitUntilDurable(token).get() }
        // The snapshot's commit is the committer's: wait until the log holds the marker alone.
        let deadline = ContinuousClock.now + .seconds(30)
        while try commandRows(directory) != 1, ContinuousClock.now < deadline { usleep(10_000) }
        #expect(try commandRows(directory) == 1)
        let before = first.visible
        first.store.close()

        let second = try Started(directory, snapshotEvery: 3)
        #expect(second.snapshot != nil)
        // Only the marker is replayed (a read-only query), none of the step's records.
        #expect(second.restored.commands == 1)
        #expect(second.restored.failed.isEmpty)
        #expect(second.visible == before)
        #expect(second.state.scenarios.interrupted?.lastStep == "down")
        second.store.close()
    }

    /// A commit on another thread while a group is being appended (the committer taking a
    /// periodic snapshot while the loop appends the next step) takes what precedes the group
    /// and none of it: a crash finds the step whole or not at all.
    @Test func aCommitDuringAppendingTogetherLeavesTheGroupOut() throws {
        let directory = makeTemporaryDirectory(prefix: "cssd-state")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let started = try Started(directory, snapshotEvery: 0)
        let store = started.store
        let now = EventTime(seconds: 1_700_000_200, microseconds: 0)
        let before = store.append(request: #"{"execute":"query-version"}"#, time: now, sequences: nil)
        let rowsDuringGroup = NIOLockedValueBox<Int?>(nil)
        let last = store.appendingTogether { () -> UInt64 in
            _ = store.append(request: #"{"execute":"query-chpids"}"#, time: now, sequences: nil)
            let thread = Thread {
                _ = store.waitUntilDurable(before)
                rowsDuringGroup.withLockedValue { $0 = try? commandRows(directory) }
            }
            thread.start()
            while rowsDuringGroup.withLockedValue({ $0 }) == nil { usleep(1_000) }
            return store.append(request: #"{"execute":"query-version"}"#, time: now, sequences: nil)
        }
        #expect(rowsDuringGroup.withLockedValue { $0 } == 1)
        #expect(throws: Never.self) { try store.waitUntilDurable(last).get() }
        #expect(try commandRows(directory) == 3)
        store.close()
    }

    @Test func everyDurableListenerIsToldOfEachCommitInTheOrderAdded() throws {
        let directory = makeTemporaryDirectory(prefix: "cssd-state")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let started = try Started(directory, snapshotEvery: 0)
        let told = NIOLockedValueBox<[String]>([])
        started.store.addDurableListener { told.withLockedValue { $0.append("server") } }
        started.store.addDurableListener { told.withLockedValue { $0.append("notifier") } }
        try started.run(#"{"execute":"vary-path","arguments":{"chpid":"0.40","state":"offline"}}"#)
        try started.run(#"{"execute":"vary-path","arguments":{"chpid":"0.40","state":"online"}}"#)
        #expect(told.withLockedValue { $0 } == ["server", "notifier", "server", "notifier"])
        started.store.close()
    }

    @Test func withoutASnapshotTheWholeLogIsReplayedAsBefore() throws {
        let directory = makeTemporaryDirectory(prefix: "cssd-state")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try Started(directory, snapshotEvery: 0)
        try workload(first, rounds: 12)
        let before = first.visible
        first.store.close()
        let second = try Started(directory, snapshotEvery: 0)
        #expect(second.snapshot == nil)
        #expect(second.visible == before)
        second.store.close()
    }

    @Test func aCorruptSnapshotIsRefusedAndLeftAlone() throws {
        let directory = makeTemporaryDirectory(prefix: "cssd-state")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try Started(directory, snapshotEvery: 3)
        try workload(first, rounds: 6)
        first.store.close()
        try execute(directory, "UPDATE snapshot SET guests = x'0100000001'")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: directory + "/state.sqlite"))
        #expect {
            _ = try Started(directory, snapshotEvery: 3)
        } throws: { error in
            "\(error)".contains("the snapshot is corrupt (checksum")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory + "/state.sqlite")) == bytes)
    }

    @Test func theJournalTableKeepsTheNewestChangesAndLoadsBack() throws {
        let directory = makeTemporaryDirectory(prefix: "cssd-state")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try Started(directory, snapshotEvery: 10, journal: 16)
        try workload(first, rounds: 200)
        let newest = first.state.pathChanges.lastSequence
        let held = first.state.journal.changes.map(\.sequence)
        first.store.snapshotNow()
        first.store.close()
        let second = try Started(directory, snapshotEvery: 10, journal: 16)
        #expect(second.restored.commands == 0)
        #expect(second.state.journal.changes.map(\.sequence) == held)
        #expect(second.state.journal.newest == newest)
        let resumed = try second.state.journal.resume(epoch: second.store.epoch, after: newest - 10)
        #expect(resumed.gap == nil && resumed.changes.count == 10)
        second.store.close()
    }
}

/// Commits that fail (a full disk) and are retried: the `journal` table keeps its bound exactly.
@Suite(.serialized) struct FailedCommitTests {
    /// 0.40 and 0.41 in turn, off then on: every command changes one path's masks and no
    /// device's redundancy (the DASDs keep 0.42 and 0.43), so each publishes exactly one change.
    private func vary(_ n: Int) -> String {
        #"{"execute":"vary-path","arguments":{"chpid":"0.4\#(n % 2)","state":"\#((n / 2) % 2 == 0 ? "offline" : "online")"}}"#
    }

    /// A real full disk (a 4 MiB tmpfs filled up, as root): 10 changes committed, 20 whose
    /// commits fail, then 16 more once there is room again (the first of those commits every
    /// record still pending). After a clean stop and a restart the journal holds the newest
    /// `capacity` changes with no gap, and the table holds each change once.
    @Test(.enabled(if: getuid() == 0, "mounts a tmpfs: root only"))
    func theJournalBoundHoldsThroughCommitsThatFailOnAFullDisk() throws {
        let mountPoint = makeTemporaryDirectory(prefix: "cssd-state")
        try runProgram("/bin/mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", mountPoint])
        defer {
            try? runProgram("/bin/umount", [mountPoint])
            try? FileManager.default.removeItem(atPath: mountPoint)
        }
        let directory = mountPoint + "/state"
        let capacity = 32
        let first = try Started(directory, snapshotEvery: 0, journal: capacity)
        for n in 0..<10 { try first.run(vary(n)) }
        fill(mountPoint + "/filler")
        var failed = 0
        for n in 10..<30 {
            if case .failure = try first.attempt(vary(n)).1 { failed += 1 }
        }
        #expect(failed == 20)
        try FileManager.default.removeItem(atPath: mountPoint + "/filler")
        for n in 30..<46 { try first.run(vary(n)) }
        let newest = first.state.pathChanges.lastSequence
        #expect(newest == 46)
        first.store.snapshotNow()
        first.store.close()

        let table = try journalSequences(directory)
        #expect(Set(table).count == table.count)
        #expect(Array(table.suffix(capacity)) == Array((Int(newest) - capacity + 1)...Int(newest)))
        let second = try Started(directory, snapshotEvery: 0, journal: capacity)
        #expect(second.restored.commands == 0)
        #expect(second.state.journal.changes.map(\.sequence) == Array((newest - UInt64(capacity) + 1)...newest))
        let resumed = try second.state.journal.resume(epoch: second.store.epoch, after: newest - UInt64(capacity))
        #expect(resumed.gap == nil && resumed.changes.count == capacity)
        second.store.close()
    }
}

@Suite struct StateCodingTests {
    @Test func theModelsRuntimeStateRoundTripsAndIsCheckedAgainstTheTopology() throws {
        var model = try Subsystem(topology: .embeddedDefault)
        let pristine = model
        _ = try model.varyPath(try ChannelPathID(parsing: "0.41"), to: .offline)
        _ = try model.injectPathFault(try ChannelPathID(parsing: "0.42"), .permanentError)
        _ = model.storeChannelReportWord()
        var restored = pristine
        try restored.restoreRuntimeState(model.runtimeState)
        #expect(restored.channelPaths == model.channelPaths)
        #expect(restored.subchannels == model.subchannels)
        #expect(restored.crwQueue.pending == model.crwQueue.pending)
        #expect(
            restored.subchannelsWithoutOperationalPath(cssid: 0) == model.subchannelsWithoutOperationalPath(cssid: 0))
        var truncated = pristine
        #expect(throws: StateCodingError.self) {
            try truncated.restoreRuntimeState(Array(model.runtimeState.dropLast(3)))
        }
        #expect(truncated.subchannels == pristine.subchannels)
        var other = try Subsystem(topology: try .synthetic(subchannels: 16, chpids: 2, paths: 2))
        #expect(throws: StateCodingError.self) { try other.restoreRuntimeState(model.runtimeState) }
    }

    @Test func guestsRoundTrip() throws {
        var host = try Subsystem(topology: .embeddedDefault)
        var guests = try Guests(topology: .embeddedDefault, host: host)
        let name = guests.names.first!
        try guests.setStrategy(.crw, of: name)
        let change = try host.varyPath(try ChannelPathID(parsing: "0.40"), to: .offline)
        _ = guests.hostPathChanged(change, as: .offline)
        let restored = try Guests(state: guests.state)
        #expect(restored.state == guests.state)
        #expect(restored.names == guests.names)
        let a = try guests.guest(name)
        let b = try restored.guest(name)
        #expect(a.devices == b.devices && a.chpidMap == b.chpidMap && a.crwQueue == b.crwQueue && a.stats == b.stats)
        for device in a.devices.values {
            guard let hostID = device.host else { continue }
            #expect(restored.binding(of: hostID)?.id == device.id)
        }
        #expect(throws: StateCodingError.self) { try Guests(state: Array(guests.state.dropLast())) }
    }

    @Test func affectedSubchannelsRoundTripWhateverTheyPredict() throws {
        func id(_ n: UInt16) -> SubchannelID { SubchannelID(cssid: 0, ssid: 0, schno: n) }
        func device(_ n: UInt16) -> DeviceID { DeviceID(cssid: 0, ssid: 0, devno: n) }
        func entry(_ n: UInt16, _ devno: UInt16?, lpm: UInt8, slot: Int = 1) -> AffectedSubchannel {
            AffectedSubchannel(
                id: id(n), device: devno.map(device), slot: slot, pim: 0xc0, lpm: lpm, pam: 0xc0, pom: 0xff, pnom: 0,
                lpum: 0x80, pathNotOperational: false)
        }
        // Consecutive (1 byte each), a gap, no device, other masks, a device that does not follow.
        let affected = [
            entry(0, 0x100, lpm: 0x80), entry(1, 0x101, lpm: 0x80), entry(2, 0x102, lpm: 0x80),
            entry(9, 0x103, lpm: 0x80), entry(10, nil, lpm: 0x80), entry(11, 0x500, lpm: 0x40, slot: 0),
            entry(12, 0x501, lpm: 0x40, slot: 0), entry(0xffff, 0xffff, lpm: 0),
        ]
        let path = ChannelPath(id: ChannelPathID(cssid: 0, chpid: 0x40), type: 0x1a, subchannelCount: 8)
        var after = path
        after.vary = .offline
        let change = PathChange(before: path, after: after, affected: affected, crws: [], crwsLost: 0)
        let journaled = JournaledPathChange(
            sequence: 1, change: change, kind: .offline, time: EventTime(seconds: 1, microseconds: 2), guests: [])
        #expect(try JournaledPathChange(encoded: journaled.encoded).change == change)
        let consecutive = (0..<65_536).map { entry(UInt16($0), UInt16($0), lpm: 0x80) }
        let big = JournaledPathChange(
            sequence: 1,
            change: PathChange(before: path, after: after, affected: consecutive, crws: [], crwsLost: 0),
            kind: .offline, time: EventTime(seconds: 1, microseconds: 2), guests: [])
        #expect(big.encoded.count < 65_536 + 200)
        #expect(try JournaledPathChange(encoded: big.encoded).change.affected == consecutive)
    }

    @Test func aJournaledChangeRoundTrips() throws {
        var host = try Subsystem(topology: .embeddedDefault)
        var guests = try Guests(topology: .embeddedDefault, host: host)
        let change = try host.injectPathFault(try ChannelPathID(parsing: "0.40"), .permanentError)
        let reached = guests.hostPathChanged(change, as: .permanentError)
        let journaled = JournaledPathChange(
            sequence: 42, change: change, kind: .permanentError, time: EventTime(seconds: 7, microseconds: 9),
            guests: reached)
        let decoded = try JournaledPathChange(encoded: journaled.encoded)
        #expect(decoded.sequence == 42 && decoded.change == change && decoded.kind == .permanentError)
        #expect(decoded.time == journaled.time && decoded.guests == reached)
        #expect(throws: StateCodingError.self) { try JournaledPathChange(encoded: Array(journaled.encoded.dropLast())) }
    }

    /// linux-sysfs guests (HOST_GUEST_PATH_CHANGED) are journaled after the model's, so that a
    /// resuming subscriber gets them again; a record without them reads as before.
    @Test func aJournaledChangeWithHostGuestsRoundTrips() throws {
        var host = try Subsystem(topology: .embeddedDefault)
        let change = try host.varyPath(try ChannelPathID(parsing: "0.40"), to: .offline)
        let devices = change.affected.prefix(3).map {
            HostGuestDevice(
                subchannel: $0.id, mdev: "9c2a8b4e-1f3d-4e5a-9b6c-7d8e9f0a1b2c", pim: $0.pim, pam: $0.pam, pom: $0.pom,
                lpm: $0.lpm, pnom: $0.pnom)
        }
        let hostGuests = [
            HostGuestPathChange(
                guest: "db-1", pid: 4100, hostChpid: change.chpid, change: .offline, devices: Array(devices),
                withoutPath: 1),
            HostGuestPathChange(
                guest: "web", pid: nil, hostChpid: change.chpid, change: .offline, devices: [], withoutPath: 0),
        ]
        let journaled = JournaledPathChange(
            sequence: 3, change: change, kind: .offline, time: EventTime(seconds: 7, microseconds: 9), guests: [],
            hostGuests: hostGuests)
        let decoded = try JournaledPathChange(encoded: journaled.encoded)
        #expect(decoded == journaled)
        #expect(throws: StateCodingError.self) { try JournaledPathChange(encoded: Array(journaled.encoded.dropLast())) }
    }

    /// A scenario step's change keeps its cause in the journal, with or without host guests;
    /// a record without one reads as before (no cause).
    @Test func aJournaledScenarioStepKeepsItsCause() throws {
        var host = try Subsystem(topology: .embeddedDefault)
        let change = try host.injectPathFault(try ChannelPathID(parsing: "0.41"), .permanentError)
        let cause = ScenarioCause(scenario: "switch-failure", step: "flap#3/down")
        let journaled = JournaledPathChange(
            sequence: 5, change: change, kind: .permanentError, time: EventTime(seconds: 1, microseconds: 2),
            guests: [], cause: cause)
        #expect(try JournaledPathChange(encoded: journaled.encoded) == journaled)
        let plain = JournaledPathChange(
            sequence: 5, change: change, kind: .permanentError, time: EventTime(seconds: 1, microseconds: 2), guests: []
        )
        #expect(try JournaledPathChange(encoded: plain.encoded).cause == nil)
        #expect(plain.encoded.count < journaled.encoded.count)
    }
}
