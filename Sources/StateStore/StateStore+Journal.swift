// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import PathEvents
import SQLiteNIO

extension StateStore {
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
}
