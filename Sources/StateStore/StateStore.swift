// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PathChangePipeline
import PathEvents
import QMPSchema
import QMPWire
import SQLiteFiles
import SQLiteNIO
import VFIOCCW

/// A state dir that cannot be used: cssd refuses to start and names the problem; nothing in
/// the dir was changed.
package struct StateStoreError: Error, CustomStringConvertible, Sendable {
    package let description: String

    init(_ description: String) { self.description = description }
}

/// What cssd owns, kept in SQLite (WAL, `synchronous=FULL`) in `DIR/state.sqlite`
/// (`--state-dir DIR`) so that it survives a crash (SIGKILL) and a restart (API/resume.md).
///
/// The design is a snapshot plus a log of the commands made since (those the schema marks
/// `"changes"`: `subsystem` ones with the model only, since a real host is the truth, and
/// `guests` ones on every backend: `recordedCommands(backend:)`), each with the clock it ran
/// under, plus the journal of published changes (`journal`, the newest
/// `--event-journal N`). On start the snapshot (the model's runtime state, the guests, the
/// last sequence) is loaded, the journal up to it is read back, and the log's tail is replayed,
/// in order, through the same handlers on the pure model of the same topology (which numbers
/// and journals its changes again). Every `snapshotEvery` commands (and on a clean stop) a new
/// snapshot is written and the log before it deleted, in one transaction: restart costs the
/// state's size plus at most `snapshotEvery` commands, not the history. With linux-sysfs the
/// host's last recorded state (`host_paths`, `host_masks`) is kept too, so that what changed
/// while cssd was down can be published at start. The epoch and a fingerprint of the topology
/// (checked with the model only: a host's devices come and go) sit in `meta`. The dir is locked
/// while the store is open (`StateDirLock`); a new store appears whole or not at all
/// (`SQLiteFile.create`), and `close` leaves `state.sqlite` alone holding everything.
///
/// Durability: the session appends a record on the event loop (`append`), and its reply waits
/// (off the loop) in `waitUntilDurable`, which commits every record appended so far in one
/// transaction (group commit: the replies of commands made meanwhile wait for the same fsync).
/// Events of a change are held until it is durable (`deliverableThrough`), so a sequence
/// number a subscriber saw is never given to another change after a crash.
///
/// Costs: one row (~100 bytes) per command since the last snapshot; one journal row per
/// published change (1 to 17 bytes per affected subchannel plus ~60); a snapshot of ~62 bytes per
/// subchannel plus the guests (Benchmarks/RESULTS.md).
package final class StateStore: DurableLog, @unchecked Sendable {
    /// The format written in `meta`; another one is refused.
    static let format = "cssd-state-2"
    /// Older formats this one extends (their tables are added on open, nothing is rewritten).
    static let olderFormats: Set<String> = ["cssd-state-1"]

    package let path: String
    /// This history's epoch (kept across restarts).
    package let epoch: String
    /// The state dir was new (nothing to restore).
    package let created: Bool
    /// The last sequence number recorded before this start.
    package let storedLastSequence: UInt64
    /// The commands a successful call of which is recorded (`recordedCommands(backend:)`).
    package let recorded: Set<String>
    /// The backend whose state this is.
    package let backend: BackendKind
    /// Told (on the committing thread, in the order added) after each commit: held events may
    /// go. `addDurableListener`.
    private let durableListeners = NIOLockedValueBox<[@Sendable () -> Void]>([])
    /// Most changes kept in the `journal` table (`--event-journal N`; 0 keeps none).
    package let journalCapacity: Int
    /// The host is the truth (linux-sysfs): its last recorded state is kept.
    package let keepsHost: Bool
    /// Commands between snapshots (0: only on a clean stop).
    package let snapshotEvery: Int
    /// Reads, on the event loop, what a snapshot keeps (set before the server serves).
    package var capture: (() -> Captured)?

    /// What a snapshot keeps, read on the event loop (values: the copies are O(1)).
    package struct Captured: Sendable {
        package let model: Subsystem?
        package let guests: Guests
        package let lastSequence: UInt64

        package init(model: Subsystem?, guests: Guests, lastSequence: UInt64) {
            self.model = model
            self.guests = guests
            self.lastSequence = lastSequence
        }
    }

    private let file: SQLiteFile
    private var connection: SQLiteConnection { file.connection }
    /// Held until `close`: one cssd per state dir.
    private let lock: StateDirLock
    /// `close` ran (under `commitLock`): nothing touches the file any more.
    private var closed = false

    private struct Record {
        /// Also the command's row id.
        let token: UInt64
        /// nil: no command (a published change, or a snapshot).
        let request: String?
        let time: EventTime
        let sequences: ClosedRange<UInt64>?
        /// A published change for the `journal` table (and, with `keepsHost`, the host tables).
        var journal: JournaledPathChange? = nil
        /// A snapshot: the state after every command up to `through`.
        var snapshot: (through: UInt64, captured: Captured)? = nil
    }

    private struct Pending {
        var records: [Record] = []
        var nextToken: UInt64 = 1
        var committed: UInt64 = 0
        var lastSequence: UInt64 = 0
        var commandsSinceSnapshot = 0
    }

    /// The snapshot read at start: commands up to `through` are in it.
    private var snapshotThrough: UInt64 = 0
    /// The `journal` table as committed (touched under `commitLock`). A commit works on a
    /// copy and keeps it only once its transaction committed: a commit that fails (a full
    /// disk) and is retried with the same records counts each of them once.
    private var journalTable = JournalTable()

    /// What the `journal` table holds, oldest first, and what its trim has still to delete.
    struct JournalTable {
        /// `rows[start...]` are held; the ones before wait for their batched delete.
        private(set) var rows: [(sequence: UInt64, affected: Int)] = []
        private(set) var start = 0
        /// Affected subchannels over the held rows.
        private(set) var affected = 0
        /// Rows forgotten but not yet deleted, and the newest of them.
        private(set) var undeleted = 0
        private(set) var undeletedAffected = 0
        private(set) var deleteThrough: UInt64 = 0

        /// Adds a committed row. A sequence number not after the newest held is a row already
        /// counted (`INSERT OR REPLACE` rewrote it): it is not counted again.
        mutating func add(sequence: UInt64, affected: Int) {
            if let newest = rows.last, sequence <= newest.sequence { return }
            rows.append((sequence, affected))
            self.affected += affected
        }

        /// Forgets the oldest rows beyond `capacity` changes and `budget` affected subchannels
        /// (the newest row is always kept).
        mutating func trim(capacity: Int, budget: Int) {
            while rows.count - start > capacity || (affected > budget && rows.count - start > 1) {
                let row = rows[start]
                start += 1
                affected -= row.affected
                undeleted += 1
                undeletedAffected += row.affected
                deleteThrough = row.sequence
            }
        }

        /// The sequence number through which rows are to be deleted now, when the forgotten
        /// ones make a batch (an eighth of either bound, at least 64 rows), so that a delete
        /// is not paid per change; nil otherwise. Counted as deleted.
        mutating func batchToDelete(capacity: Int, budget: Int) -> UInt64? {
            guard undeleted > 0 && (undeleted >= max(capacity / 8, 64) || undeletedAffected >= budget / 8) else {
                return nil
            }
            undeleted = 0
            undeletedAffected = 0
            return deleteThrough
        }

        /// Drops the forgotten entries once they are most of the array.
        mutating func compact() {
            if start > 1024 && start > rows.count / 2 {
                rows.removeFirst(start)
                start = 0
            }
        }
    }

    private let pending = NIOLockedValueBox(Pending())
    /// Commits that no reply waits for (changes observed on the host).
    private let committer = NIOThreadPool(numberOfThreads: 1)
    /// Held by the one committing thread.
    private let commitLock = NIOLock()

    /// Whether a store of `backend`'s state records commands that change `state`: guests are
    /// cssd's own on every backend; the channel subsystem only with the model (a real host
    /// keeps its own and is the truth).
    package static func records(_ state: ChangedState, backend: BackendKind) -> Bool {
        switch state {
        case .guests: true
        case .subsystem: backend == .model
        }
    }

    /// The commands recorded for `backend`: those of `changedState` (what the schema marks
    /// `"changes"`: the command layer's `CommandRegistry.changedState`, generated from API/*.json
    /// at build time) with a state this backend's store keeps.
    package static func recordedCommands(backend: BackendKind, changedState: [String: ChangedState]) -> Set<String> {
        Set(changedState.filter { records($0.value, backend: backend) }.keys)
    }

    private init(
        path: String, epoch: String, created: Bool, lastSequence: UInt64, backend: BackendKind,
        recorded: Set<String>, options: Options, file: SQLiteFile, lock: StateDirLock
    ) {
        self.path = path
        self.epoch = epoch
        self.created = created
        self.storedLastSequence = lastSequence
        self.backend = backend
        self.recorded = recorded
        self.journalCapacity = options.journalCapacity
        self.keepsHost = options.keepsHost
        self.snapshotEvery = options.snapshotEvery
        self.file = file
        self.lock = lock
        pending.withLockedValue { $0.lastSequence = lastSequence }
        committer.start()
    }

    /// How the store keeps what it keeps.
    package struct Options: Sendable {
        /// `--event-journal N`: most changes kept in the `journal` table.
        package var journalCapacity: Int
        /// Commands between snapshots (`--state-snapshot-every`); 0: only on a clean stop.
        package var snapshotEvery: Int
        /// Keep the host's last state (linux-sysfs).
        package var keepsHost: Bool

        package init(journalCapacity: Int = 65_536, snapshotEvery: Int = 100_000, keepsHost: Bool = false) {
            self.journalCapacity = journalCapacity
            self.snapshotEvery = snapshotEvery
            self.keepsHost = keepsHost
        }
    }

    /// Opens (or creates) the state of `directory`, and locks it for this process until
    /// `close` (`StateDirLock`: one cssd per state dir).
    ///
    /// A new `state.sqlite` appears whole or not at all (`SQLiteFile.create`: built aside,
    /// renamed into place), so that a crash or a full disk during a first start leaves nothing
    /// to refuse. A `state.sqlite` that holds no table at all (0 bytes, or SQLite's header
    /// alone: what an interrupted first start of an older cssd left) is taken as never
    /// created and replaced: it holds nothing to keep, and refusing it would only make the
    /// operator delete it by hand.
    /// - Parameters:
    ///   - fingerprint: the topology's (`fingerprint(of:backend:)`); with the model backend a
    ///     state dir of another one is refused. A host (`options.keepsHost`) is not compared:
    ///     its devices come and go, and what changed is published at start instead
    ///     (`recordedHost`, `recordHostLayout`).
    ///   - backend: the backend's name; the model's state records model commands too.
    ///   - changedState: what each command that changes state changes (the command layer's
    ///     `CommandRegistry.changedState`); those this backend's store keeps are recorded.
    /// - Throws: `StateStoreError` for a dir that is not a directory or is read-only, one that
    ///   another cssd holds, a file that is not a cssd state database (corrupt, or something
    ///   else), another format, or another backend or (model) topology. Nothing is written
    ///   then, and the lock is let go.
    package static func open(
        directory: String, fingerprint: String, backend: String, changedState: [String: ChangedState],
        options: Options = Options()
    ) throws(StateStoreError) -> StateStore {
        var isDirectory: ObjCBool = false
        let manager = FileManager.default
        if manager.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw StateStoreError("state dir \(directory) is not a directory") }
        } else {
            do {
                try manager.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw StateStoreError("cannot create state dir \(directory): \(error.localizedDescription)")
            }
        }
        guard access(directory, W_OK) == 0 else {
            throw StateStoreError(
                "state dir \(directory) is not writable (read-only?): cssd must write its state there")
        }
        let lock = try StateDirLock.acquire(directory: directory)
        do {
            return try open(
                directory: directory, fingerprint: fingerprint, backend: backend, changedState: changedState,
                options: options, lock: lock)
        } catch {
            lock.release()
            throw error
        }
    }

    private static func open(
        directory: String, fingerprint: String, backend: String, changedState: [String: ChangedState],
        options: Options, lock: StateDirLock
    ) throws(StateStoreError) -> StateStore {
        let path = directory + "/state.sqlite"
        if FileManager.default.fileExists(atPath: path) && access(path, R_OK | W_OK) != 0 {
            throw StateStoreError("\(path) is not writable (read-only?): cssd must write its state there")
        }
        guard let kind = BackendKind(rawValue: backend) else { throw StateStoreError("no backend '\(backend)'") }
        let topology = options.keepsHost ? nil : fingerprint
        var created = false
        var opened = try openExisting(path, backend: backend, fingerprint: topology)
        if opened == nil {
            do {
                try SQLiteFile.create(path) { connection in
                    try createTables(connection, from: nil)
                    for (key, value) in [
                        ("format", format), ("backend", backend), ("fingerprint", fingerprint),
                        ("epoch", PathEventJournal.newEpoch()), ("last_sequence", "0"),
                    ] {
                        _ = try rows(
                            connection, "INSERT INTO meta (key, value) VALUES (?, ?)", [.text(key), .text(value)])
                    }
                }
            } catch let error as SQLiteFileError {
                throw StateStoreError(error.description)
            } catch {
                throw StateStoreError("cannot create \(path): \(error)")
            }
            created = true
            opened = try openExisting(path, backend: backend, fingerprint: topology)
        }
        guard let (file, meta) = opened else { throw StateStoreError("\(path) vanished while it was created") }
        let connection = file.connection
        do {
            if meta["format"] != format {
                _ = try rows(connection, "BEGIN")
                try createTables(connection, from: meta["format"]!)
                _ = try rows(connection, "UPDATE meta SET value = ? WHERE key = 'format'", [.text(format)])
                _ = try rows(connection, "COMMIT")
            }
            let store = StateStore(
                path: path, epoch: meta["epoch"]!, created: created, lastSequence: UInt64(meta["last_sequence"]!)!,
                backend: kind, recorded: recordedCommands(backend: kind, changedState: changedState), options: options,
                file: file, lock: lock)
            try store.readPositions()
            return store
        } catch let error as StateStoreError {
            file.close()
            throw error
        } catch {
            file.close()
            throw StateStoreError("cannot use \(path): \(error)")
        }
    }

    /// `path` checked (read-only) and opened for writing with its `meta`; nil when there is no
    /// file, or one that was never created (no table at all).
    private static func openExisting(_ path: String, backend: String, fingerprint: String?)
        throws(StateStoreError) -> (SQLiteFile, [String: String])?
    {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        var meta: [String: String] = [:]
        do {
            let file = try SQLiteFile.open(path, existed: true, synchronous: .full) { connection in
                meta = try check(connection, path: path, backend: backend, fingerprint: fingerprint)
            }
            return (file, meta)
        } catch is NeverCreated {
            return nil
        } catch let error as StateStoreError {
            throw error
        } catch let error as SQLiteFileError {
            throw StateStoreError(error.description)
        } catch {
            throw StateStoreError("cannot use \(path): \(error)")
        }
    }

    /// A database with no table at all: an interrupted first start's (see `open`).
    private struct NeverCreated: Error {}

    /// Refuses a file that is not a state database of this backend and topology (nil: any
    /// topology), or whose snapshot does not check (read-only connection); its `meta` table
    /// when it is one. Throws `NeverCreated` for a database with no table at all.
    private static func check(_ connection: SQLiteConnection, path: String, backend: String, fingerprint: String?)
        throws -> [String: String]
    {
        let check: [SQLiteRow]
        let tables: Int
        do {
            check = try rows(connection, "PRAGMA quick_check")
            tables = try rows(connection, "SELECT count(*) AS n FROM sqlite_master").first?.column("n")?.integer ?? 0
        } catch {
            throw StateStoreError("\(path) is not a cssd state database (corrupt or another file): \(error)")
        }
        guard check.first?.column("quick_check")?.string == "ok" else {
            throw StateStoreError("\(path) is corrupt (SQLite quick_check: \(check.first?.description ?? "?"))")
        }
        guard tables > 0 else { throw NeverCreated() }
        var meta: [String: String] = [:]
        do {
            for row in try rows(connection, "SELECT key, value FROM meta") {
                meta[row.column("key")!.string!] = row.column("value")!.string!
            }
        } catch {
            throw StateStoreError("\(path) is not a cssd state database (no meta table: \(error))")
        }
        guard let stored = meta["format"], stored == format || olderFormats.contains(stored) else {
            throw StateStoreError("\(path) has format \(meta["format"] ?? "none"), not \(format)")
        }
        guard meta["backend"] == backend else {
            throw StateStoreError(
                "\(path) was written by the \(meta["backend"] ?? "?") backend, not \(backend): "
                    + "use another state dir")
        }
        guard fingerprint == nil || meta["fingerprint"] == fingerprint else {
            throw StateStoreError(
                "\(path) was written for another topology (fingerprint \(meta["fingerprint"] ?? "?"), "
                    + "this one is \(fingerprint)): use the topology it was written for, or another state dir")
        }
        guard meta["epoch"] != nil, let last = meta["last_sequence"].flatMap(UInt64.init) else {
            throw StateStoreError("\(path) lacks its epoch or last sequence (corrupt)")
        }
        if meta["format"] == format { try checkSnapshot(connection, path: path, lastSequence: last) }
        return meta
    }

    /// The tables of this format; `from` an older one, those it lacks.
    private static func createTables(_ connection: SQLiteConnection, from older: String?) throws {
        if older == nil {
            _ = try rows(connection, "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            _ = try rows(
                connection,
                "CREATE TABLE commands (id INTEGER PRIMARY KEY, request TEXT NOT NULL, seconds INTEGER NOT NULL, "
                    + "microseconds INTEGER NOT NULL, first_sequence INTEGER, last_sequence INTEGER)")
        }
        // One row per published change (JournaledPathChange.encoded), the newest --event-journal N.
        _ = try rows(
            connection,
            "CREATE TABLE journal (sequence INTEGER PRIMARY KEY, affected INTEGER NOT NULL, record BLOB NOT NULL)")
        // At most one row: the state after every command up to `through_command`.
        _ = try rows(
            connection,
            "CREATE TABLE snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), through_command INTEGER NOT NULL, "
                + "last_sequence INTEGER NOT NULL, model BLOB, guests BLOB NOT NULL, checksum TEXT NOT NULL)")
        // linux-sysfs: the host's last recorded state (ChannelPath bytes; pam, pom, lpm).
        _ = try rows(connection, "CREATE TABLE host_paths (chpid INTEGER PRIMARY KEY, state BLOB NOT NULL)")
        _ = try rows(
            connection,
            "CREATE TABLE host_masks (id INTEGER PRIMARY KEY, pam INTEGER NOT NULL, pom INTEGER NOT NULL, "
                + "lpm INTEGER NOT NULL)")
    }

    /// The checksum a snapshot row is stored with: FNV-1a over its blobs and numbers.
    private static func snapshotChecksum(through: UInt64, lastSequence: UInt64, model: [UInt8]?, guests: [UInt8])
        -> String
    {
        var writer = StateWriter(capacity: 32 + (model?.count ?? 0) + guests.count)
        writer.put(through)
        writer.put(lastSequence)
        writer.put(model != nil)
        writer.put(UInt64(model?.count ?? 0))
        writer.put(model ?? [])
        writer.put(guests)
        let digits = String(stateChecksum(writer.bytes), radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// Refuses a snapshot whose checksum does not match (a torn or edited row), before anything
    /// is written.
    private static func checkSnapshot(_ connection: SQLiteConnection, path: String, lastSequence: UInt64) throws {
        guard let row = try rows(connection, "SELECT * FROM snapshot WHERE id = 1").first else { return }
        let snapshot = try decodeSnapshotRow(row, path: path)
        guard snapshot.lastSequence <= lastSequence else {
            throw StateStoreError(
                "\(path): the snapshot is corrupt (it names sequence \(snapshot.lastSequence), the last recorded "
                    + "is \(lastSequence)); remove the state dir to start a new history")
        }
    }

    private struct SnapshotRow {
        let through: UInt64
        let lastSequence: UInt64
        let model: [UInt8]?
        let guests: [UInt8]
    }

    private static func decodeSnapshotRow(_ row: SQLiteRow, path: String) throws(StateStoreError) -> SnapshotRow {
        guard let through = row.column("through_command")?.integer, let last = row.column("last_sequence")?.integer,
            let guests = row.column("guests")?.blob, let checksum = row.column("checksum")?.string, through >= 0,
            last >= 0
        else { throw StateStoreError("\(path): the snapshot is corrupt (a field is missing or of another type)") }
        let model = row.column("model")?.blob.map { Array($0.readableBytesView) }
        let snapshot = SnapshotRow(
            through: UInt64(through), lastSequence: UInt64(last), model: model,
            guests: Array(guests.readableBytesView))
        let expected = snapshotChecksum(
            through: snapshot.through, lastSequence: snapshot.lastSequence, model: model, guests: snapshot.guests)
        guard checksum == expected else {
            throw StateStoreError(
                "\(path): the snapshot is corrupt (checksum \(checksum), its contents give \(expected)); "
                    + "remove the state dir to start a new history")
        }
        return snapshot
    }

    /// Where the ids and the journal table start.
    private func readPositions() throws {
        let maxID = try Self.rows(connection, "SELECT max(id) AS id FROM commands").first?.column("id")?.integer ?? 0
        let through =
            try Self.rows(connection, "SELECT through_command FROM snapshot WHERE id = 1").first?
            .column("through_command")?.integer ?? 0
        pending.withLockedValue { $0.nextToken = UInt64(max(maxID, through, 0)) + 1 }
        for row in try Self.rows(connection, "SELECT sequence, affected FROM journal ORDER BY sequence") {
            journalTable.add(
                sequence: UInt64(row.column("sequence")?.integer ?? 0), affected: row.column("affected")?.integer ?? 0)
        }
    }

    private static func rows(_ connection: SQLiteConnection, _ sql: String, _ binds: [SQLiteData] = []) throws
        -> [SQLiteRow]
    {
        try SQLiteFile.rows(connection, sql, binds)
    }

    /// A fingerprint of the topology a backend serves at start: its name, its chpids and its
    /// subchannels with their devices and paths (FNV-1a, 64 bits, as 16 hex digits).
    package static func fingerprint(of subsystem: Subsystem, backend: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ value: UInt64) {
            var v = value
            for _ in 0..<8 {
                hash ^= v & 0xff
                hash = hash &* 0x0000_0100_0000_01b3
                v >>= 8
            }
        }
        for byte in backend.utf8 { mix(UInt64(byte)) }
        for path in subsystem.channelPaths { mix(UInt64(path.id.rawValue)) }
        for subchannel in subsystem.subchannels {
            mix(UInt64(subchannel.id.rawValue))
            mix(UInt64(subchannel.deviceID?.rawValue ?? 0xffff_ffff))
            for path in subchannel.channelPaths { mix(UInt64(path?.rawValue ?? 0xffff)) }
        }
        let digits = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// What the snapshot held (`loadSnapshot`).
    package struct LoadedSnapshot {
        /// The model's runtime state applied to the topology's model (nil: none kept).
        package var model: Subsystem?
        package var guests: Guests
        /// The last sequence number at the snapshot.
        package var lastSequence: UInt64
        /// The commands it covers (the log is replayed after them).
        package var commands: UInt64
    }

    /// Reads the snapshot, if there is one, onto the topology's model and guests (call once,
    /// before `loadJournal` and `restore`).
    /// - Throws: `StateStoreError` for a snapshot that is corrupt or of another topology.
    package func loadSnapshot(model: Subsystem?) throws(StateStoreError) -> LoadedSnapshot? {
        let found: [SQLiteRow]
        do {
            found = try Self.rows(connection, "SELECT * FROM snapshot WHERE id = 1")
        } catch {
            throw StateStoreError("cannot read \(path): \(error)")
        }
        guard let row = found.first else { return nil }
        let snapshot = try Self.decodeSnapshotRow(row, path: path)
        var loaded = LoadedSnapshot(
            model: nil, guests: Guests(), lastSequence: snapshot.lastSequence, commands: snapshot.through)
        do throws(StateCodingError) {
            if let bytes = snapshot.model {
                guard var restored = model else {
                    throw StateCodingError("it holds a model's state, and this backend is not the model")
                }
                try restored.restoreRuntimeState(bytes)
                loaded.model = restored
            }
            loaded.guests = try Guests(state: snapshot.guests)
        } catch {
            throw StateStoreError(
                "\(path): the snapshot cannot be used (\(error)); remove the state dir to start a new history")
        }
        snapshotThrough = snapshot.through
        return loaded
    }

    /// The journal as the `journal` table keeps it, up to change `newest` (the last sequence of
    /// the snapshot with the model, whose later changes the replay journals again; the last
    /// recorded one with a real host). Only a run of consecutive changes ending at `newest` is
    /// taken (a state dir of an older format has none: the journal starts empty).
    /// - Throws: `StateStoreError` for a row that cannot be decoded.
    package func loadJournal(capacity: Int, newest: UInt64) throws(StateStoreError) -> PathEventJournal {
        var changes: [JournaledPathChange] = []
        if capacity > 0 && newest > 0 {
            let low = newest > UInt64(capacity) ? newest - UInt64(capacity) : 0
            let found: [SQLiteRow]
            do {
                found = try Self.rows(
                    connection,
                    "SELECT sequence, record FROM journal WHERE sequence > ? AND sequence <= ? ORDER BY sequence",
                    [.integer(Int(low)), .integer(Int(newest))])
            } catch {
                throw StateStoreError("cannot read \(path): \(error)")
            }
            for row in found {
                let sequence = UInt64(row.column("sequence")?.integer ?? 0)
                let change: JournaledPathChange
                do throws(StateCodingError) {
                    guard let blob = row.column("record")?.blob else { throw StateCodingError("not a blob") }
                    change = try JournaledPathChange(encoded: Array(blob.readableBytesView))
                    guard change.sequence == sequence else {
                        throw StateCodingError("it holds change \(change.sequence)")
                    }
                } catch {
                    throw StateStoreError(
                        "\(path): journal row \(sequence) is corrupt (\(error)); remove the state dir to start a new history"
                    )
                }
                if let last = changes.last, last.sequence + 1 != sequence { changes = [] }
                changes.append(change)
            }
            if changes.last?.sequence != newest { changes = [] }
        }
        let journal = PathEventJournal(
            capacity: capacity, epoch: epoch, newest: (changes.first?.sequence ?? newest + 1) - 1)
        for change in changes { journal.append(change) }
        return journal
    }

    /// The host as last recorded (linux-sysfs): `current` with the recorded channel paths and
    /// masks set; nil when none was recorded yet (a new state dir, or an older format).
    package func recordedHost(onto current: Subsystem) throws(StateStoreError) -> Subsystem? {
        do {
            let paths = try Self.rows(connection, "SELECT chpid, state FROM host_paths")
            guard !paths.isEmpty else { return nil }
            var recorded = current
            for row in paths {
                guard let blob = row.column("state")?.blob else { throw StateCodingError("a host path without state") }
                var reader = StateReader(Array(blob.readableBytesView))
                let path = try ChannelPath(from: &reader)
                guard recorded.channelPath(path.id) != nil else { continue }
                try recorded.setObservedPath(path)
            }
            for row in try Self.rows(connection, "SELECT id, pam, pom, lpm FROM host_masks") {
                let raw = UInt32(truncatingIfNeeded: row.column("id")?.integer ?? -1)
                let id = SubchannelID(
                    cssid: UInt8(raw >> 24), ssid: UInt8(truncatingIfNeeded: raw >> 16),
                    schno: UInt16(truncatingIfNeeded: raw))
                guard let subchannel = recorded.subchannel(id) else { continue }
                try recorded.setObservedMasks(
                    id, pam: UInt8(truncatingIfNeeded: row.column("pam")?.integer ?? 0),
                    pom: UInt8(truncatingIfNeeded: row.column("pom")?.integer ?? 0),
                    lpm: UInt8(truncatingIfNeeded: row.column("lpm")?.integer ?? 0), vpm: subchannel.verifiedPathMask)
            }
            return recorded
        } catch let error as StateStoreError {
            throw error
        } catch {
            throw StateStoreError("\(path): the recorded host state is corrupt (\(error))")
        }
    }

    /// Records the whole host as it is now (linux-sysfs, when nothing was recorded yet).
    package func recordHost(_ host: Subsystem) throws(StateStoreError) {
        do {
            try commitLock.withLock {
                _ = try Self.rows(connection, "BEGIN")
                try writeHost(paths: host.channelPaths, masks: host.subchannels.map { ($0.id, $0.schib.pmcw) })
                _ = try Self.rows(connection, "COMMIT")
            }
        } catch {
            _ = try? Self.rows(connection, "ROLLBACK")
            throw StateStoreError("cannot write \(path): \(error)")
        }
    }

    /// How the host's devices differ from the ones last recorded (`recordHostLayout`).
    package struct HostLayoutChange: Sendable, Equatable {
        package var subchannelsAdded = 0
        package var subchannelsRemoved = 0
        package var channelPathsAdded = 0
        package var channelPathsRemoved = 0

        package var isEmpty: Bool { self == HostLayoutChange() }
    }

    /// Makes the recorded host's devices those of `host` (linux-sysfs, at start, after the
    /// changes of `recordedHost` were published): the rows of subchannels and channel paths
    /// that are gone are deleted, and new ones are recorded as they are now (no earlier state
    /// of theirs was recorded: there is nothing to publish about them). The rows of the others
    /// are left to the changes published at start, which write them once durable; so after a
    /// crash in between those changes are published again at the next start, never lost.
    /// One transaction; O(subchannels).
    /// - Returns: what was added and removed since the last recorded state.
    /// - Throws: `StateStoreError` when the tables cannot be read or written.
    package func recordHostLayout(_ host: Subsystem) throws(StateStoreError) -> HostLayoutChange {
        do {
            return try commitLock.withLock {
                let recordedPaths = Set(
                    try Self.rows(connection, "SELECT chpid FROM host_paths").compactMap { $0.column("chpid")?.integer }
                )
                let recordedSubchannels = Set(
                    try Self.rows(connection, "SELECT id FROM host_masks").compactMap { $0.column("id")?.integer })
                let paths = host.channelPaths
                let subchannels = host.subchannels
                let currentPaths = Set(paths.map { Int($0.id.rawValue) })
                let currentSubchannels = Set(subchannels.map { Int($0.id.rawValue) })
                let addedPaths = paths.filter { !recordedPaths.contains(Int($0.id.rawValue)) }
                let addedSubchannels = subchannels.filter { !recordedSubchannels.contains(Int($0.id.rawValue)) }
                let removedPaths = Array(recordedPaths.subtracting(currentPaths))
                let removedSubchannels = Array(recordedSubchannels.subtracting(currentSubchannels))
                let change = HostLayoutChange(
                    subchannelsAdded: addedSubchannels.count, subchannelsRemoved: removedSubchannels.count,
                    channelPathsAdded: addedPaths.count, channelPathsRemoved: removedPaths.count)
                guard !change.isEmpty else { return change }
                _ = try Self.rows(connection, "BEGIN")
                for (table, key, removed) in [
                    ("host_paths", "chpid", removedPaths), ("host_masks", "id", removedSubchannels),
                ] {
                    var index = 0
                    while index < removed.count {
                        let chunk = removed[index..<min(index + 500, removed.count)]
                        let marks = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
                        _ = try Self.rows(
                            connection, "DELETE FROM \(table) WHERE \(key) IN (\(marks))",
                            chunk.map { SQLiteData.integer($0) })
                        index += chunk.count
                    }
                }
                try writeHost(paths: addedPaths, masks: addedSubchannels.map { ($0.id, $0.schib.pmcw) })
                _ = try Self.rows(connection, "COMMIT")
                return change
            }
        } catch {
            _ = try? Self.rows(connection, "ROLLBACK")
            throw StateStoreError("cannot write \(path): \(error)")
        }
    }

    /// Upserts channel paths and subchannel masks into the host tables (inside a transaction).
    private func writeHost(paths: [ChannelPath], masks: [(SubchannelID, PMCW)]) throws {
        var index = 0
        while index < paths.count {
            let chunk = paths[index..<min(index + 400, paths.count)]
            var binds: [SQLiteData] = []
            for path in chunk {
                var writer = StateWriter(capacity: 16)
                path.write(to: &writer)
                binds.append(.integer(Int(path.id.rawValue)))
                binds.append(.blob(ByteBuffer(bytes: writer.bytes)))
            }
            let values = Array(repeating: "(?, ?)", count: chunk.count).joined(separator: ", ")
            _ = try Self.rows(connection, "INSERT OR REPLACE INTO host_paths (chpid, state) VALUES " + values, binds)
            index += chunk.count
        }
        index = 0
        while index < masks.count {
            let chunk = masks[index..<min(index + 400, masks.count)]
            var binds: [SQLiteData] = []
            binds.reserveCapacity(chunk.count * 4)
            for (id, pmcw) in chunk {
                binds.append(.integer(Int(id.rawValue)))
                binds.append(.integer(Int(pmcw.pam)))
                binds.append(.integer(Int(pmcw.pom)))
                binds.append(.integer(Int(pmcw.lpm)))
            }
            let values = Array(repeating: "(?, ?, ?, ?)", count: chunk.count).joined(separator: ", ")
            _ = try Self.rows(
                connection, "INSERT OR REPLACE INTO host_masks (id, pam, pom, lpm) VALUES " + values, binds)
            index += chunk.count
        }
    }

    /// What `restore` did.
    package struct Restored: Sendable {
        package var commands = 0
        package var failed: [String] = []
        package var lastSequence: UInt64 = 0
        /// Time spent reading the records, and replaying them.
        package var reading: Duration = .zero
        package var replaying: Duration = .zero
    }

    /// Replays the recorded commands after the snapshot (all of them without one), in order,
    /// each at its own time, through `replayer` (the server's handlers; call before the server
    /// runs, with its durable log not yet set).
    package func restore(into replayer: CommandReplayer) throws(StateStoreError) -> Restored {
        precondition(!replayer.isRecording, "restore before recording")
        var restored = Restored()
        var after = Int(snapshotThrough)
        while true {
            let page: [SQLiteRow]
            let readStart = ContinuousClock.now
            do {
                page = try Self.rows(
                    connection,
                    "SELECT id, request, seconds, microseconds FROM commands WHERE id > ? ORDER BY id LIMIT 50000",
                    [.integer(after)])
            } catch {
                throw StateStoreError("cannot read \(path): \(error)")
            }
            restored.reading += ContinuousClock.now - readStart
            guard !page.isEmpty else { break }
            let replayStart = ContinuousClock.now
            defer { restored.replaying += ContinuousClock.now - replayStart }
            for row in page {
                after = row.column("id")!.integer!
                let time = EventTime(
                    seconds: row.column("seconds")!.integer!, microseconds: row.column("microseconds")!.integer!)
                let text = row.column("request")?.string
                switch text.map({ replayer.replay(request: $0, at: time) }) ?? .notJSON {
                case .succeeded: break
                case .failed(let why): restored.failed.append("\(text!): \(why)")
                case .notJSON: throw StateStoreError("\(path): record \(after) is not a JSON request (corrupt)")
                }
                restored.commands += 1
            }
        }
        restored.lastSequence = replayer.lastPublishedSequence
        // The replayed tail is still in the log: the next snapshot (periodic, or at a clean stop)
        // counts it.
        pending.withLockedValue { $0.commandsSinceSnapshot = restored.commands }
        return restored
    }

    /// Writes a snapshot now (a clean stop), after every pending record, if commands were
    /// recorded since the last one. Call where `capture` may run: on the event loop's thread
    /// or when nothing runs on the loop any more (`appendSnapshot` then `waitUntilDurable`
    /// does the same in two steps, the first on the loop).
    package func snapshotNow() {
        if let token = appendSnapshot() { _ = waitUntilDurable(token) }
    }

    /// Appends a snapshot of the state now, after every pending record, if commands were
    /// recorded since the last one (call on the event loop: it runs `capture`).
    /// - Returns: the token to make it durable (`waitUntilDurable`), nil when none is due.
    package func appendSnapshot() -> UInt64? {
        guard let capture else { return nil }
        return pending.withLockedValue { state in
            guard state.commandsSinceSnapshot > 0 else { return nil }
            state.commandsSinceSnapshot = 0
            let token = state.nextToken
            state.nextToken += 1
            state.records.append(
                Record(
                    token: token, request: nil, time: EventTime(seconds: 0, microseconds: 0), sequences: nil,
                    snapshot: (token - 1, capture())))
            return token
        }
    }

    /// Closes the store at the end of a stop: the commits still queued for observed changes
    /// run, the write-ahead log is checkpointed into `state.sqlite` and truncated (so that the
    /// file alone is the whole state), the connection is closed and the state dir's lock let
    /// go. Call once no command is taken any more and before the event loop stops (a commit
    /// wakes the loop's subscribers through its durable listeners). Later commits fail; idempotent.
    /// - Returns: why the checkpoint failed (the state is whole all the same: it is in the
    ///   write-ahead log, which the next start reads), nil when it did not.
    @discardableResult
    package func close() -> String? {
        try? committer.syncShutdownGracefully()
        return commitLock.withLock {
            guard !closed else { return nil }
            closed = true
            var failure: String?
            do {
                let result = try Self.rows(connection, "PRAGMA wal_checkpoint(TRUNCATE)")
                if let busy = result.first?.column("busy")?.integer, busy != 0 {
                    failure = "the checkpoint was blocked by another reader of \(path)"
                }
            } catch {
                failure = "\(error)"
            }
            file.close()
            lock.release()
            return failure
        }
    }

    /// Adds a listener told after every commit (on the committing thread, which it must not
    /// hold: it only wakes what waits), after the ones added before: the server's held events,
    /// the `--notify` outbox. Any thread; a listener added after a commit misses only that one.
    package func addDurableListener(_ listener: @escaping @Sendable () -> Void) {
        durableListeners.withLockedValue { $0.append(listener) }
    }

    // MARK: DurableLog

    package func records(_ command: String) -> Bool { recorded.contains(command) }

    package func append(request: String, time: EventTime, sequences: ClosedRange<UInt64>?) -> UInt64 {
        let token = append(Record(token: 0, request: request, time: time, sequences: sequences))
        // Every `snapshotEvery` commands: the state now (on the loop, after this command) is
        // the snapshot of every command up to this one; it is committed with them or after them,
        // and the log up to it goes in the same transaction.
        let due = pending.withLockedValue { state in
            state.commandsSinceSnapshot += 1
            guard snapshotEvery > 0, state.commandsSinceSnapshot >= snapshotEvery, capture != nil else { return false }
            state.commandsSinceSnapshot = 0
            return true
        }
        if due, let capture {
            let snapshot = append(
                Record(
                    token: 0, request: nil, time: time, sequences: nil, snapshot: (token, capture())))
            committer.submit { _ in _ = self.waitUntilDurable(snapshot) }
        }
        return token
    }

    /// The newest sequence number committed: every change up to it is durable (records are
    /// committed in sequence order). Any thread, no I/O (the `--notify` outbox publishes only
    /// up to it; `deliverableThrough` is for the event loop).
    package var committedSequence: UInt64 { pending.withLockedValue { $0.lastSequence } }

    package var deliverableThrough: UInt64 {
        pending.withLockedValue { state in
            for record in state.records { if let range = record.sequences { return range.lowerBound - 1 } }
            return .max
        }
    }

    package func waitUntilDurable(_ token: UInt64) -> Result<Void, BackendError> {
        commitLock.withLock {
            let batch: [Record] = pending.withLockedValue { state in
                state.committed >= token ? [] : state.records
            }
            guard !batch.isEmpty else { return .success(()) }
            guard !closed else {
                return .failure(.io(path: path, operation: "commit", errno: 0, message: "the state store is closed"))
            }
            let last = batch.compactMap(\.sequences?.upperBound).max()
            do {
                try commit(batch, lastSequence: last)
            } catch {
                _ = try? Self.rows(connection, "ROLLBACK")
                return .failure(.io(path: path, operation: "commit", errno: 0, message: "\(error)"))
            }
            pending.withLockedValue { state in
                state.committed = batch.last!.token
                state.records.removeFirst(batch.count)
                if let last { state.lastSequence = max(state.lastSequence, last) }
            }
            for listener in durableListeners.withLockedValue({ $0 }) { listener() }
            return .success(())
        }
    }

    /// One transaction: the commands (in statements of up to 500 rows), the journal rows, the
    /// host's new state (linux-sysfs), the newest snapshot with the log up to it deleted, the
    /// last sequence, and the journal rows beyond `journalCapacity` deleted.
    private func commit(_ batch: [Record], lastSequence: UInt64?) throws {
        _ = try Self.rows(connection, "BEGIN")
        var index = 0
        while index < batch.count {
            let chunk = batch[index..<min(index + 500, batch.count)]
            var sql = "INSERT INTO commands (id, request, seconds, microseconds, first_sequence, last_sequence) VALUES "
            var binds: [SQLiteData] = []
            binds.reserveCapacity(chunk.count * 6)
            for record in chunk where record.request != nil {
                sql += binds.isEmpty ? "(?, ?, ?, ?, ?, ?)" : ", (?, ?, ?, ?, ?, ?)"
                binds.append(.integer(Int(record.token)))
                binds.append(.text(record.request!))
                binds.append(.integer(record.time.seconds))
                binds.append(.integer(record.time.microseconds))
                binds.append(record.sequences.map { .integer(Int($0.lowerBound)) } ?? .null)
                binds.append(record.sequences.map { .integer(Int($0.upperBound)) } ?? .null)
            }
            if !binds.isEmpty { _ = try Self.rows(connection, sql, binds) }
            index += chunk.count
        }
        // Journal rows: a statement per 64 changes (a change may hold 65,536 subchannels).
        let published = batch.compactMap(\.journal)
        let journaled = journalCapacity > 0 ? published : []
        index = 0
        while index < journaled.count {
            let chunk = journaled[index..<min(index + 64, journaled.count)]
            var binds: [SQLiteData] = []
            for change in chunk {
                binds.append(.integer(Int(change.sequence)))
                binds.append(.integer(change.change.affected.count))
                binds.append(.blob(ByteBuffer(bytes: change.encoded)))
            }
            let values = Array(repeating: "(?, ?, ?)", count: chunk.count).joined(separator: ", ")
            _ = try Self.rows(
                connection, "INSERT OR REPLACE INTO journal (sequence, affected, record) VALUES " + values, binds)
            index += chunk.count
        }
        // Kept in `journalTable` only once the transaction committed (a failed commit is
        // retried with the same records).
        var table = journalTable
        for change in journaled { table.add(sequence: change.sequence, affected: change.change.affected.count) }
        if keepsHost {
            for change in published {
                try writeHost(
                    paths: [change.change.after],
                    masks: change.change.affected.map { affected in
                        var pmcw = PMCW()
                        pmcw.pam = affected.pam
                        pmcw.pom = affected.pom
                        pmcw.lpm = affected.lpm
                        return (affected.id, pmcw)
                    })
            }
        }
        if let snapshot = batch.last(where: { $0.snapshot != nil })?.snapshot {
            let (through, captured) = snapshot
            let model = captured.model?.runtimeState
            let guests = captured.guests.state
            _ = try Self.rows(
                connection,
                "INSERT OR REPLACE INTO snapshot (id, through_command, last_sequence, model, guests, checksum) "
                    + "VALUES (1, ?, ?, ?, ?, ?)",
                [
                    .integer(Int(through)), .integer(Int(captured.lastSequence)),
                    model.map { .blob(ByteBuffer(bytes: $0)) } ?? .null, .blob(ByteBuffer(bytes: guests)),
                    .text(
                        Self.snapshotChecksum(
                            through: through, lastSequence: captured.lastSequence, model: model, guests: guests)),
                ])
            _ = try Self.rows(connection, "DELETE FROM commands WHERE id <= ?", [.integer(Int(through))])
        }
        // The table keeps what the journal keeps: the newest `journalCapacity` changes, and at
        // most `PathEventJournal.defaultSubchannelBudget` affected subchannels over them (a vary
        // of a chpid shared by 65,536 subchannels is a 1.1 MB row). Older rows go in batches.
        let budget = PathEventJournal.defaultSubchannelBudget
        table.trim(capacity: journalCapacity, budget: budget)
        if let through = table.batchToDelete(capacity: journalCapacity, budget: budget) {
            _ = try Self.rows(connection, "DELETE FROM journal WHERE sequence <= ?", [.integer(Int(through))])
        }
        table.compact()
        if let lastSequence {
            _ = try Self.rows(
                connection, "UPDATE meta SET value = ? WHERE key = 'last_sequence'", [.text(String(lastSequence))])
        }
        _ = try Self.rows(connection, "COMMIT")
        journalTable = table
    }
}

extension StateStore: PathChangeSink {
    /// A change on a real host (linux-sysfs: observed, or made by a command) is not replayed,
    /// but its sequence number is kept: its events wait until that is durable, so the number is
    /// never given again after a crash. With the model the session records the commands.
    package func pathChangePublished(_ published: PublishedPathChange) {
        let journaled = journalCapacity > 0 || keepsHost ? published.journaled : nil
        let token = append(
            Record(
                token: 0, request: nil, time: published.time, sequences: published.sequence...published.sequence,
                journal: journaled))
        // With the model every change comes from a recorded command, whose reply commits this
        // record with it (one fsync). With a real host, commands' changes are the host's (not
        // recorded): commit on the committer.
        if case .command = published.cause, Self.records(.subsystem, backend: backend) { return }
        committer.submit { _ in _ = self.waitUntilDurable(token) }
    }

    private func append(_ record: Record) -> UInt64 {
        pending.withLockedValue { state in
            let token = state.nextToken
            state.nextToken += 1
            let numbered = Record(
                token: token, request: record.request, time: record.time, sequences: record.sequences,
                journal: record.journal, snapshot: record.snapshot)
            state.records.append(numbered)
            return token
        }
    }
}
