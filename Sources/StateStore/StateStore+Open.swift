// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import Foundation
import PathEvents
import QMPSchema
import SQLiteFiles
import SQLiteNIO

extension StateStore {
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
        let replacedEmpty = opened == nil && FileManager.default.fileExists(atPath: path)
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
            try createMeasurementTable(connection)
            let store = StateStore(
                path: path, epoch: meta["epoch"]!, created: created, lastSequence: UInt64(meta["last_sequence"]!)!,
                backend: kind, recorded: recordedCommands(backend: kind, changedState: changedState), options: options,
                file: file, lock: lock)
            store.replacedEmpty = replacedEmpty
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
            // A full or too small filesystem fails here too (SQLite cannot size its shared
            // memory file or write the journal): say so, rather than invite deleting the file.
            if let error = error as? SQLiteError,
                [.full, .ioErrorFailedSharedMemSize, .ioErrorFailedWrite].contains(error.reason)
            {
                throw StateStoreError(
                    "cannot open \(path): its filesystem is full or too small (\(error)); free space and start again")
            }
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

    static func rows(_ connection: SQLiteConnection, _ sql: String, _ binds: [SQLiteData] = []) throws
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
}
