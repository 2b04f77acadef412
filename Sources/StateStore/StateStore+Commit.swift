// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import NIOCore
import PathChangePipeline
import PathEvents
import SQLiteNIO

#if canImport(Glibc)
import Glibc
#endif

extension StateStore {
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
        let due = pending.withLockedValue { state in
            state.commandsSinceSnapshot += 1
            state.lastCommand = (token, time)
            return state.snapshotsHeld == 0 && snapshotDue(&state)
        }
        if due { appendPeriodicSnapshot(through: token, time: time) }
        return token
    }

    package func appendingTogether<T>(_ body: () -> T) -> T {
        pending.withLockedValue { state in
            if state.snapshotsHeld == 0 { state.openFrom = state.nextToken }
            state.snapshotsHeld += 1
        }
        let result = body()
        let last = pending.withLockedValue { state -> (token: UInt64, time: EventTime)? in
            state.snapshotsHeld -= 1
            guard state.snapshotsHeld == 0 else { return nil }
            state.openFrom = nil
            guard let last = state.lastCommand, snapshotDue(&state) else { return nil }
            return last
        }
        if let last { appendPeriodicSnapshot(through: last.token, time: last.time) }
        return result
    }

    /// Every `snapshotEvery` commands a snapshot is due (and the count starts again).
    private func snapshotDue(_ state: inout Pending) -> Bool {
        guard snapshotEvery > 0, state.commandsSinceSnapshot >= snapshotEvery, capture != nil else { return false }
        state.commandsSinceSnapshot = 0
        return true
    }

    /// The state now (on the loop, after command `through`) is the snapshot of every command
    /// up to it; it is committed with them or after them, and the log up to it goes in the
    /// same transaction.
    private func appendPeriodicSnapshot(through token: UInt64, time: EventTime) {
        guard let capture else { return }
        let snapshot = append(Record(token: 0, request: nil, time: time, sequences: nil, snapshot: (token, capture())))
        // Logged after the snapshot, so that it outlives the log the snapshot deletes.
        let last = afterSnapshot?().map { append(Record(token: 0, request: $0, time: time, sequences: nil)) }
        committer.submit { _ in _ = self.waitUntilDurable(last ?? snapshot) }
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

    package var refusal: String? {
        pending.withLockedValue { state in
            guard let failure = state.failure, ContinuousClock.now - failure.at < Self.retryAfterFailure else {
                return nil
            }
            return """
                the state dir cannot record changes now (its last commit failed: \(failure.message)); \
                nothing was changed: try again (a commit is retried each second; \(state.records.count) changes \
                made before wait to be recorded)
                """
        }
    }

    package func isDurable(_ token: UInt64) -> Bool { pending.withLockedValue { $0.committed >= token } }

    package func waitUntilDurable(_ token: UInt64) -> Result<Void, BackendError> {
        // A commit takes every record appended so far, but none of a group still being
        // appended on the event loop (`appendingTogether`): a crash must find a scenario step
        // recorded whole or not at all. A wait for a record inside such a group (not made by
        // cssd's own callers, which wait after the loop's turn) commits what precedes it and
        // waits for the group to close, which takes the rest of that turn.
        while true {
            if let result = commitOnce(token) { return result }
            usleep(200)
        }
    }

    /// One commit for `waitUntilDurable`; nil when `token` is in a group still open.
    private func commitOnce(_ token: UInt64) -> Result<Void, BackendError>? {
        commitLock.withLock { () -> Result<Void, BackendError>? in
            let (batch, open): ([Record], Bool) = pending.withLockedValue { state in
                guard state.committed < token else { return ([], false) }
                guard let openFrom = state.openFrom else { return (state.records, false) }
                return (Array(state.records.prefix { $0.token < openFrom }), token >= openFrom)
            }
            guard !batch.isEmpty else { return open ? nil : .success(()) }
            guard !closed else {
                pending.withLockedValue { $0.failure = ("the state store is closed", .now) }
                return .failure(.io(path: path, operation: "commit", errno: 0, message: "the state store is closed"))
            }
            let last = batch.compactMap(\.sequences?.upperBound).max()
            do {
                try commit(batch, lastSequence: last)
            } catch {
                _ = try? Self.rows(connection, "ROLLBACK")
                pending.withLockedValue { $0.failure = ("\(error)", .now) }
                return .failure(.io(path: path, operation: "commit", errno: 0, message: "\(error)"))
            }
            pending.withLockedValue { state in
                state.failure = nil
                state.committed = batch.last!.token
                state.records.removeFirst(batch.count)
                if let last { state.lastSequence = max(state.lastSequence, last) }
            }
            for listener in durableListeners.withLockedValue({ $0 }) { listener() }
            return open ? nil : .success(())
        }
    }

    /// One transaction: the commands (in statements of up to 500 rows), the journal rows, the
    /// host's new state (linux-sysfs), the newest channel-measurement state, the newest snapshot with the log up to it deleted, the
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
        try writeMeasurement(of: batch)
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

    func append(_ record: Record) -> UInt64 {
        pending.withLockedValue { state in
            let token = state.nextToken
            state.nextToken += 1
            let numbered = Record(
                token: token, request: record.request, time: record.time, sequences: record.sequences,
                journal: record.journal, snapshot: record.snapshot, measurement: record.measurement)
            state.records.append(numbered)
            return token
        }
    }
}
