// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Foundation
import JSONValues
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SQLiteFiles
import SQLiteNIO

/// A state dir's outbox that cannot be used: cssd refuses to start and names the problem;
/// nothing in the file was changed.
package struct OutboxStoreError: Error, CustomStringConvertible, Sendable {
    package let description: String

    init(_ description: String) { self.description = description }
}

/// The notifier's outbox kept in the state dir (`--state-dir DIR` with `--notify`):
/// `DIR/notify-outbox.sqlite`, SQLite in WAL mode through sqlite-nio, a file of its own beside
/// the state store's `state.sqlite` (same refusal rules).
///
/// Tables: `meta` (`format`, `epoch` — the state dir's —, `through` — the newest sequence number
/// the outbox accounted for —, `gaps` — the gaps not confirmed yet, JSON) and `notifications`
/// (`id` INTEGER PRIMARY KEY, `sequence`, `routing_key`, `message_id`, `body` BLOB: the exact
/// bytes published, so a republish after a restart is byte for byte the same).
///
/// `synchronous=NORMAL`: a commit reaches the OS (it survives a SIGKILL of cssd) without an
/// fsync; after a power loss the newest commits may be missing, which the start-up check sees
/// as a `through` behind the state store's last sequence (rebuilt or reported as a gap, see
/// `PathNotifier`), and a deletion lost only means a redelivery.
///
/// Thread safety: `open` and `write` block (call them off the event loop: at start, and on the
/// writer thread); one writer at a time.
package final class OutboxStore: @unchecked Sendable {
    /// The format written in `meta`; another one is refused.
    static let format = "cssd-notify-outbox-1"
    static let fileName = "notify-outbox.sqlite"

    package let path: String
    /// The file was new.
    package let created: Bool
    /// What it held at open, already trimmed to the durable changes (see `open`).
    package let saved: Saved
    private let file: SQLiteFile
    private var connection: SQLiteConnection { file.connection }

    /// What the file held.
    package struct Saved: Sendable {
        package var rows: [OutboxEntry] = []
        package var gaps: [NotificationGap] = []
        /// The newest sequence number accounted for (queued, dropped or filtered), at most the
        /// state store's last.
        package var through: UInt64 = 0
        /// Rows removed because their change was not durable in the state store.
        package var discarded = 0
        /// How long reading took.
        package var reading: Duration = .zero
    }

    private init(path: String, created: Bool, saved: Saved, file: SQLiteFile) {
        self.path = path
        self.created = created
        self.saved = saved
        self.file = file
    }

    /// Opens (or creates) `directory/notify-outbox.sqlite` and reads it.
    /// - Parameters:
    ///   - directory: the state dir (the state store has checked it: a writable directory).
    ///   - epoch: the state dir's epoch; an outbox of another one is refused.
    ///   - lastSequence: the newest durable change (the state store's, after its restore). Rows
    ///     and gap numbers above it belong to changes that never became durable (their number
    ///     will be given again): they are deleted. A new file accounts for every change up to it
    ///     (the history before `--notify` is not published).
    /// - Throws: `OutboxStoreError` for a file that is not writable, not a cssd outbox
    ///   (corrupt, or something else), of another format or of another epoch. Nothing is
    ///   written then.
    package static func open(directory: String, epoch: String, lastSequence: UInt64) throws(OutboxStoreError)
        -> OutboxStore
    {
        let path = directory + "/" + fileName
        let manager = FileManager.default
        var existed = manager.fileExists(atPath: path)
        if existed && access(path, R_OK | W_OK) != 0 {
            throw OutboxStoreError("\(path) is not writable (read-only?): cssd must keep its notification outbox there")
        }
        if !existed && access(directory, W_OK) != 0 {
            throw OutboxStoreError(
                "state dir \(directory) is not writable (read-only?): cssd must write its outbox there")
        }
        // A new file appears whole or not at all (SQLiteFile.create), so that a crash or a full
        // disk at the first start with --notify leaves nothing to refuse; a file with no table
        // at all (what an interrupted first start of an older cssd left) is taken as never
        // created, as the state store does.
        var file: SQLiteFile?
        var created = false
        do {
            if existed {
                do {
                    file = try SQLiteFile.open(path, existed: true, synchronous: .normal) { connection in
                        // Not a database at all: `check` says so.
                        let tables = try? rows(connection, "SELECT count(*) AS n FROM sqlite_master").first?
                            .column("n")?.integer
                        if tables == 0 { throw NeverCreated() }
                        try check(connection, path: path, epoch: epoch)
                    }
                } catch is NeverCreated {
                    existed = false
                }
            }
            if !existed {
                try SQLiteFile.create(path) { connection in
                    _ = try rows(connection, "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                    _ = try rows(
                        connection,
                        "CREATE TABLE notifications (id INTEGER PRIMARY KEY, sequence INTEGER NOT NULL, "
                            + "routing_key TEXT NOT NULL, message_id TEXT NOT NULL, body BLOB NOT NULL)")
                    for (key, value) in [
                        ("format", format), ("epoch", epoch), ("through", String(lastSequence)), ("gaps", "[]"),
                    ] {
                        _ = try rows(
                            connection, "INSERT INTO meta (key, value) VALUES (?, ?)", [.text(key), .text(value)])
                    }
                }
                created = true
                file = try SQLiteFile.open(path, existed: true, synchronous: .normal) { connection in
                    try check(connection, path: path, epoch: epoch)
                }
            }
        } catch let error as OutboxStoreError {
            throw error
        } catch let error as SQLiteFileError {
            throw OutboxStoreError(error.description)
        } catch {
            throw OutboxStoreError("cannot use \(path): \(error)")
        }
        guard let file else { throw OutboxStoreError("cannot use \(path): it vanished while it was opened") }
        let connection = file.connection
        do {
            if created {
                return OutboxStore(path: path, created: true, saved: Saved(through: lastSequence), file: file)
            }
            let saved = try load(connection, path: path, lastSequence: lastSequence)
            return OutboxStore(path: path, created: false, saved: saved, file: file)
        } catch let error as OutboxStoreError {
            file.close()
            throw error
        } catch {
            file.close()
            throw OutboxStoreError("cannot use \(path): \(error)")
        }
    }

    /// A database with no table at all: an interrupted first start's (see `open`).
    private struct NeverCreated: Error {}

    /// Refuses a file that is not this format's outbox of `epoch` (read-only connection).
    private static func check(_ connection: SQLiteConnection, path: String, epoch: String) throws(OutboxStoreError) {
        let check: [SQLiteRow]
        do {
            check = try rows(connection, "PRAGMA quick_check")
        } catch {
            throw OutboxStoreError("\(path) is not a cssd notification outbox (corrupt or another file): \(error)")
        }
        guard check.first?.column("quick_check")?.string == "ok" else {
            throw OutboxStoreError("\(path) is corrupt (SQLite quick_check: \(check.first?.description ?? "?"))")
        }
        var meta: [String: String] = [:]
        do {
            for row in try rows(connection, "SELECT key, value FROM meta") {
                if let key = row.column("key")?.string, let value = row.column("value")?.string { meta[key] = value }
            }
            _ = try rows(connection, "SELECT id, sequence, routing_key, message_id, body FROM notifications LIMIT 1")
        } catch {
            throw OutboxStoreError(
                "\(path) is not a cssd notification outbox (no meta or notifications table: \(error))")
        }
        guard meta["format"] == format else {
            throw OutboxStoreError("\(path) has format \(meta["format"] ?? "none"), not \(format)")
        }
        guard meta["epoch"] == epoch else {
            throw OutboxStoreError(
                "\(path) belongs to another history (epoch \(meta["epoch"] ?? "?"), the state dir's is \(epoch)): "
                    + "its notifications cannot be numbered in this one; move it away to start an empty outbox")
        }
        guard meta["through"].flatMap(UInt64.init) != nil, meta["gaps"].flatMap({ JSON.parse($0) }) != nil else {
            throw OutboxStoreError("\(path) lacks its sequence position or gaps (corrupt)")
        }
    }

    /// Reads the rows and gaps; deletes what belongs to changes that are not durable.
    private static func load(_ connection: SQLiteConnection, path: String, lastSequence: UInt64) throws -> Saved {
        let started = ContinuousClock.now
        var saved = Saved()
        var meta: [String: String] = [:]
        for row in try rows(connection, "SELECT key, value FROM meta") {
            if let key = row.column("key")?.string, let value = row.column("value")?.string { meta[key] = value }
        }
        saved.through = min(UInt64(meta["through"] ?? "") ?? 0, lastSequence)
        saved.gaps = decodeGaps(JSON.parse(meta["gaps"] ?? "[]") ?? .array([])).compactMap { gap in
            var gap = gap
            gap.ranges = gap.ranges.compactMap {
                $0.lowerBound > lastSequence ? nil : $0.lowerBound...min($0.upperBound, lastSequence)
            }
            return gap.ranges.isEmpty ? nil : gap
        }
        var after: Int64 = 0
        while true {
            let collected = NIOLockedValueBox<[OutboxEntry]>([])
            let problem = NIOLockedValueBox<String?>(nil)
            try connection.query(
                "SELECT id, sequence, routing_key, message_id, body FROM notifications WHERE id > ? ORDER BY id "
                    + "LIMIT 50000", [.integer(Int(after))], logger: connection.logger
            ) { row in
                guard let id = row.column("id")?.integer, let sequence = row.column("sequence")?.integer,
                    let key = row.column("routing_key")?.string, let messageID = row.column("message_id")?.string,
                    let body = row.column("body")?.blob
                else {
                    problem.withLockedValue { $0 = $0 ?? row.description }
                    return
                }
                let entry = OutboxEntry(
                    id: Int64(id),
                    notification: OsloNotification(
                        sequence: UInt64(sequence), routingKey: key, messageID: messageID,
                        body: Array(body.readableBytesView)))
                collected.withLockedValue { $0.append(entry) }
            }.wait()
            if let bad = problem.withLockedValue({ $0 }) {
                throw OutboxStoreError("\(path): a row is not a notification (corrupt): \(bad)")
            }
            let page = collected.withLockedValue { $0 }
            guard let last = page.last else { break }
            after = last.id
            for entry in page {
                if entry.notification.sequence > lastSequence { saved.discarded += 1 } else { saved.rows.append(entry) }
            }
        }
        // Rows are written a change at a time, the position only with every row before it:
        // the newest row's change is accounted for even if the position was not written yet.
        saved.through = max(saved.through, saved.rows.last?.notification.sequence ?? 0)
        if saved.discarded > 0 {
            _ = try rows(connection, "DELETE FROM notifications WHERE sequence > ?", [.integer(Int(lastSequence))])
        }
        saved.reading = ContinuousClock.now - started
        return saved
    }

    /// Deletes rows (at start: those that no longer fit the bounds).
    package func delete(ids: [Int64]) throws {
        guard let first = ids.min() else { return }
        _ = try Self.rows(connection, "DELETE FROM notifications WHERE id >= ?", [.integer(Int(first))])
    }

    /// Writes one batch in one transaction: new rows (in statements of up to 500), deletions of
    /// the confirmed ones, the sequence position and the gaps.
    package func write(_ write: OutboxWrite) throws {
        _ = try Self.rows(connection, "BEGIN")
        do {
            var index = 0
            while index < write.inserts.count {
                let chunk = write.inserts[index..<min(index + 500, write.inserts.count)]
                var sql = "INSERT INTO notifications (id, sequence, routing_key, message_id, body) VALUES "
                var binds: [SQLiteData] = []
                binds.reserveCapacity(chunk.count * 5)
                for entry in chunk {
                    sql += binds.isEmpty ? "(?, ?, ?, ?, ?)" : ", (?, ?, ?, ?, ?)"
                    binds.append(.integer(Int(entry.id)))
                    binds.append(.integer(Int(entry.notification.sequence)))
                    binds.append(.text(entry.notification.routingKey))
                    binds.append(.text(entry.notification.messageID))
                    binds.append(.blob(ByteBuffer(bytes: entry.notification.body)))
                }
                _ = try Self.rows(connection, sql, binds)
                index += chunk.count
            }
            if let through = write.deleteThrough {
                _ = try Self.rows(connection, "DELETE FROM notifications WHERE id <= ?", [.integer(Int(through))])
            }
            if let through = write.through {
                _ = try Self.rows(
                    connection, "UPDATE meta SET value = ? WHERE key = 'through'", [.text(String(through))])
            }
            if let gaps = write.gaps {
                _ = try Self.rows(
                    connection, "UPDATE meta SET value = ? WHERE key = 'gaps'",
                    [.text(Self.encodeGaps(gaps).serialized())])
            }
            _ = try Self.rows(connection, "COMMIT")
        } catch {
            _ = try? Self.rows(connection, "ROLLBACK")
            throw error
        }
    }

    /// Closes the file (the last commit is already written).
    package func close() { file.close() }

    static func encodeGaps(_ gaps: [NotificationGap]) -> JSON {
        .array(
            gaps.map { gap in
                .object([
                    ("reason", .string(gap.reason.rawValue)), ("dropped", .integer(gap.dropped)),
                    (
                        "missed",
                        .array(
                            gap.ranges.map {
                                .object([
                                    ("first", .integer(Int($0.lowerBound))), ("last", .integer(Int($0.upperBound))),
                                ])
                            })
                    ),
                ])
            })
    }

    static func decodeGaps(_ json: JSON) -> [NotificationGap] {
        json.elements.compactMap { item in
            guard let reason = item["reason"]?.stringValue.flatMap(NotificationGap.Reason.init(rawValue:)),
                let missed = item["missed"]?.elements
            else { return nil }
            let ranges: [ClosedRange<UInt64>] = missed.compactMap { range in
                guard let first = range["first"]?.intValue, let last = range["last"]?.intValue, first >= 0,
                    first <= last
                else { return nil }
                return UInt64(first)...UInt64(last)
            }
            return NotificationGap(reason: reason, ranges: ranges, dropped: item["dropped"]?.intValue ?? 0)
        }
    }

    private static func rows(_ connection: SQLiteConnection, _ sql: String, _ binds: [SQLiteData] = []) throws
        -> [SQLiteRow]
    {
        try SQLiteFile.rows(connection, sql, binds)
    }
}
