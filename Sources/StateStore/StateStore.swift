// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PathEvents
import QMPCommands
import QMPWire
import SQLiteNIO

/// A state dir that cannot be used: cssd refuses to start and names the problem; nothing in
/// the dir was changed.
package struct StateStoreError: Error, CustomStringConvertible, Sendable {
    package let description: String

    init(_ description: String) { self.description = description }
}

/// What cssd owns, kept in SQLite (WAL, `synchronous=FULL`) in `DIR/state.sqlite`
/// (`--state-dir DIR`) so that it survives a crash (SIGKILL) and a restart.
///
/// The design is an append-only log of the commands that changed that state (vary-path,
/// configure-chpid, inject-path-fault, reset-channel-path, modify-subchannel, store-crw and
/// the guest commands; with linux-sysfs only the guest commands: the host is the truth), each
/// with the clock it ran under. On start the log is replayed, in order, through the same
/// handlers on the pure model of the same topology: that rebuilds the model backend's runtime
/// state (paths, masks, faults, the CRW queue), the guests, their attachments and strategies,
/// and, because each replayed change is published again under its own time, the sequence
/// numbers and the journal. The epoch and a fingerprint of the topology sit in `meta`.
///
/// Durability: the session appends a record on the event loop (`append`), and its reply waits
/// (off the loop) in `waitUntilDurable`, which commits every record appended so far in one
/// transaction (group commit: the replies of commands made meanwhile wait for the same fsync).
/// Events of a change are held until it is durable (`deliverableThrough`), so a sequence
/// number a subscriber saw is never given to another change after a crash.
///
/// Costs: one row (~100 bytes) per command; restart time grows with the log (see
/// Benchmarks/RESULTS.md); no compaction yet.
package final class StateStore: DurableLog, @unchecked Sendable {
    /// The format written in `meta`; another one is refused.
    static let format = "cssd-state-1"

    package let path: String
    /// This history's epoch (kept across restarts).
    package let epoch: String
    /// The state dir was new (nothing to restore).
    package let created: Bool
    /// The last sequence number recorded before this start.
    package let storedLastSequence: UInt64
    /// The commands a successful call of which is recorded.
    package let recorded: Set<String>
    /// Called (on the committing thread) after a commit: held events may go.
    package var onDurable: (@Sendable () -> Void)?

    private let group: MultiThreadedEventLoopGroup
    private let pool: NIOThreadPool
    private let connection: SQLiteConnection

    private struct Record {
        let token: UInt64
        /// nil: only a sequence number to keep (a change observed on the host).
        let request: String?
        let time: EventTime
        let sequences: ClosedRange<UInt64>?
    }

    private struct Pending {
        var records: [Record] = []
        var nextToken: UInt64 = 1
        var committed: UInt64 = 0
        var lastSequence: UInt64 = 0
    }

    private let pending = NIOLockedValueBox(Pending())
    /// Commits that no reply waits for (changes observed on the host).
    private let committer = NIOThreadPool(numberOfThreads: 1)
    /// Held by the one committing thread.
    private let commitLock = NIOLock()

    /// Commands that change the model backend's state.
    package static let modelCommands: Set<String> = [
        "vary-path", "configure-chpid", "inject-path-fault", "reset-channel-path", "modify-subchannel", "store-crw",
    ]
    /// Commands that change guests, attachments and strategies (owned by cssd on any backend).
    package static let guestCommands: Set<String> = [
        "attach-passthrough", "detach-passthrough", "set-path-event-strategy", "guest-store-crw",
    ]

    private init(
        path: String, epoch: String, created: Bool, lastSequence: UInt64, recorded: Set<String>,
        group: MultiThreadedEventLoopGroup, pool: NIOThreadPool, connection: SQLiteConnection
    ) {
        self.path = path
        self.epoch = epoch
        self.created = created
        self.storedLastSequence = lastSequence
        self.recorded = recorded
        self.group = group
        self.pool = pool
        self.connection = connection
        pending.withLockedValue { $0.lastSequence = lastSequence }
        committer.start()
    }

    /// Opens (or creates) the state of `directory`.
    /// - Parameters:
    ///   - fingerprint: the topology's (`fingerprint(of:backend:)`); a state dir of another one
    ///     is refused.
    ///   - backend: the backend's name; the model's state records model commands too.
    /// - Throws: `StateStoreError` for a dir that is not a directory or is read-only, a file
    ///   that is not a cssd state database (corrupt, or something else), another format, or
    ///   another topology or backend. Nothing is written then.
    package static func open(directory: String, fingerprint: String, backend: String) throws(StateStoreError)
        -> StateStore
    {
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
        let path = directory + "/state.sqlite"
        let existed = manager.fileExists(atPath: path)
        if existed && access(path, R_OK | W_OK) != 0 {
            throw StateStoreError("\(path) is not writable (read-only?): cssd must write its state there")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        func fail(_ message: String) -> StateStoreError {
            try? pool.syncShutdownGracefully()
            try? group.syncShutdownGracefully()
            return StateStoreError(message)
        }
        let recorded = backend == "model" ? modelCommands.union(guestCommands) : guestCommands
        // An existing file is checked through a read-only connection first: a file that is refused
        // is never written (not even the checkpoint SQLite makes when a writer closes).
        var connection: SQLiteConnection
        do {
            let storage: SQLiteConnection.Storage = .file(path: existed ? readOnlyURI(path) : path)
            connection = try SQLiteConnection.open(storage: storage, threadPool: pool, on: group.next()).wait()
        } catch {
            throw fail("cannot open \(path): \(error)")
        }
        do {
            if existed {
                let check: [SQLiteRow]
                do {
                    check = try rows(connection, "PRAGMA quick_check")
                } catch {
                    throw StateStoreError("\(path) is not a cssd state database (corrupt or another file): \(error)")
                }
                guard check.first?.column("quick_check")?.string == "ok" else {
                    throw StateStoreError("\(path) is corrupt (SQLite quick_check: \(check.first?.description ?? "?"))")
                }
                var meta: [String: String] = [:]
                do {
                    for row in try rows(connection, "SELECT key, value FROM meta") {
                        meta[row.column("key")!.string!] = row.column("value")!.string!
                    }
                } catch {
                    throw StateStoreError("\(path) is not a cssd state database (no meta table: \(error))")
                }
                guard meta["format"] == format else {
                    throw StateStoreError("\(path) has format \(meta["format"] ?? "none"), not \(format)")
                }
                guard meta["backend"] == backend else {
                    throw StateStoreError(
                        "\(path) was written by the \(meta["backend"] ?? "?") backend, not \(backend): "
                            + "use another state dir")
                }
                guard meta["fingerprint"] == fingerprint else {
                    throw StateStoreError(
                        "\(path) was written for another topology (fingerprint \(meta["fingerprint"] ?? "?"), "
                            + "this one is \(fingerprint)): use the topology it was written for, or another state dir")
                }
                guard let epoch = meta["epoch"], let last = meta["last_sequence"].flatMap(UInt64.init) else {
                    throw StateStoreError("\(path) lacks its epoch or last sequence (corrupt)")
                }
                try connection.close().wait()
                do {
                    connection = try SQLiteConnection.open(
                        storage: .file(path: path), threadPool: pool, on: group.next()
                    )
                    .wait()
                } catch {
                    throw StateStoreError("cannot open \(path) for writing: \(error)")
                }
                _ = try rows(connection, "PRAGMA journal_mode=WAL")
                _ = try rows(connection, "PRAGMA synchronous=FULL")
                return StateStore(
                    path: path, epoch: epoch, created: false, lastSequence: last, recorded: recorded, group: group,
                    pool: pool, connection: connection)
            }
            let epoch = ServerState.newEpoch()
            _ = try rows(connection, "PRAGMA journal_mode=WAL")
            _ = try rows(connection, "PRAGMA synchronous=FULL")
            _ = try rows(connection, "BEGIN")
            _ = try rows(connection, "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            _ = try rows(
                connection,
                "CREATE TABLE commands (id INTEGER PRIMARY KEY, request TEXT NOT NULL, seconds INTEGER NOT NULL, "
                    + "microseconds INTEGER NOT NULL, first_sequence INTEGER, last_sequence INTEGER)")
            for (key, value) in [
                ("format", format), ("backend", backend), ("fingerprint", fingerprint), ("epoch", epoch),
                ("last_sequence", "0"),
            ] {
                _ = try rows(connection, "INSERT INTO meta (key, value) VALUES (?, ?)", [.text(key), .text(value)])
            }
            _ = try rows(connection, "COMMIT")
            return StateStore(
                path: path, epoch: epoch, created: true, lastSequence: 0, recorded: recorded, group: group, pool: pool,
                connection: connection)
        } catch let error as StateStoreError {
            try? connection.close().wait()
            throw fail(error.description)
        } catch {
            try? connection.close().wait()
            throw fail("cannot use \(path): \(error)")
        }
    }

    /// `file:PATH?mode=ro` with the characters a URI reserves escaped.
    private static func readOnlyURI(_ path: String) -> String {
        var escaped = ""
        for scalar in path.unicodeScalars {
            switch scalar {
            case "%", "?", "#": escaped += "%" + String(scalar.value, radix: 16, uppercase: true)
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return "file:" + escaped + "?mode=ro"
    }

    /// Runs one statement and collects its rows (off the event loop: it waits).
    private static func rows(_ connection: SQLiteConnection, _ sql: String, _ binds: [SQLiteData] = []) throws
        -> [SQLiteRow]
    {
        let collected = NIOLockedValueBox<[SQLiteRow]>([])
        try connection.query(sql, binds, logger: connection.logger) { row in
            collected.withLockedValue { $0.append(row) }
        }.wait()
        return collected.withLockedValue { $0 }
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

    /// What `restore` did.
    package struct Restored: Sendable {
        package var commands = 0
        package var failed: [String] = []
        package var lastSequence: UInt64 = 0
        /// Time spent reading the records, and replaying them.
        package var reading: Duration = .zero
        package var replaying: Duration = .zero
    }

    /// Replays the recorded commands, in order, each under its own clock, through `server`'s
    /// handlers (call before the server runs, with `server.durability` not yet set).
    package func restore(into server: ServerState) throws(StateStoreError) -> Restored {
        precondition(server.durability == nil, "restore before recording")
        var restored = Restored()
        let session = ReplaySession()
        let clock = server.clock
        defer { server.clock = clock }
        var after = 0
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
                guard let text = row.column("request")?.string, let request = JSON.parse(text) else {
                    throw StateStoreError("\(path): record \(after) is not a JSON request (corrupt)")
                }
                let time = EventTime(
                    seconds: row.column("seconds")!.integer!, microseconds: row.column("microseconds")!.integer!)
                server.clock = { time }
                switch QMPRequest.check(request, oobEnabled: true) {
                case .success(let checked):
                    // Only replies and the model's writes (no blocking part) were recorded: a
                    // deferred outcome runs here, inline.
                    let result: Result<JSON, QMPError>
                    switch Dispatcher.dispatch(checked, server: server, session: session) {
                    case .success(.reply(let value)): result = .success(value)
                    case .success(.deferred(let work)): result = work.runInline()
                    case .failure(let error): result = .failure(error)
                    }
                    if case .failure(let error) = result {
                        restored.failed.append("\(text): \(error.desc)")
                    }
                case .failure(let rejection):
                    restored.failed.append("\(text): \(rejection.desc)")
                }
                restored.commands += 1
            }
        }
        restored.lastSequence = server.pathChanges.lastSequence
        return restored
    }

    /// Closes the database (the last commit is already on disk).
    package func close() {
        try? committer.syncShutdownGracefully()
        try? connection.close().wait()
        try? pool.syncShutdownGracefully()
        try? group.syncShutdownGracefully()
    }

    // MARK: DurableLog

    package func records(_ command: String) -> Bool { recorded.contains(command) }

    package func append(request: String, time: EventTime, sequences: ClosedRange<UInt64>?) -> UInt64 {
        append(request: Optional(request), time: time, sequences: sequences)
    }

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
            onDurable?()
            return .success(())
        }
    }

    /// One transaction: the records (in statements of up to 500 rows) and the last sequence.
    private func commit(_ batch: [Record], lastSequence: UInt64?) throws {
        _ = try Self.rows(connection, "BEGIN")
        var index = 0
        while index < batch.count {
            let chunk = batch[index..<min(index + 500, batch.count)]
            var sql = "INSERT INTO commands (request, seconds, microseconds, first_sequence, last_sequence) VALUES "
            var binds: [SQLiteData] = []
            binds.reserveCapacity(chunk.count * 5)
            for record in chunk where record.request != nil {
                sql += binds.isEmpty ? "(?, ?, ?, ?, ?)" : ", (?, ?, ?, ?, ?)"
                binds.append(.text(record.request!))
                binds.append(.integer(record.time.seconds))
                binds.append(.integer(record.time.microseconds))
                binds.append(record.sequences.map { .integer(Int($0.lowerBound)) } ?? .null)
                binds.append(record.sequences.map { .integer(Int($0.upperBound)) } ?? .null)
            }
            if !binds.isEmpty { _ = try Self.rows(connection, sql, binds) }
            index += chunk.count
        }
        if let lastSequence {
            _ = try Self.rows(
                connection, "UPDATE meta SET value = ? WHERE key = 'last_sequence'", [.text(String(lastSequence))])
        }
        _ = try Self.rows(connection, "COMMIT")
    }
}

extension StateStore: PathChangeSink {
    /// A change on a real host (linux-sysfs: observed, or made by a command) is not replayed,
    /// but its sequence number is kept: its events wait until that is durable, so the number is
    /// never given again after a crash. With the model the session records the commands.
    package func pathChangePublished(_ published: PublishedPathChange) {
        // With the model every change comes from a recorded command; with a real host, commands'
        // changes are the host's (not recorded either): keep every number.
        if case .command = published.cause, recorded.contains("vary-path") { return }
        let token = append(request: nil, time: published.time, sequences: published.sequence...published.sequence)
        committer.submit { _ in _ = self.waitUntilDurable(token) }
    }

    private func append(request: String?, time: EventTime, sequences: ClosedRange<UInt64>?) -> UInt64 {
        pending.withLockedValue { state in
            let token = state.nextToken
            state.nextToken += 1
            state.records.append(Record(token: token, request: request, time: time, sequences: sequences))
            return token
        }
    }
}

/// The session the replay runs commands in: negotiated, read-write (deferred outcomes run inline).
final class ReplaySession: SessionControl {
    var isNegotiated: Bool { true }
    var isReadOnly: Bool { false }
    var connectionID: Int { 0 }
    func enterCommandMode(oob: Bool) {}
}
