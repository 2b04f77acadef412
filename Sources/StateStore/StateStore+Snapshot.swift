// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import PathEvents
import SQLiteNIO
import VFIOCCW

extension StateStore {
    /// The checksum a snapshot row is stored with: FNV-1a over its blobs and numbers.
    static func snapshotChecksum(through: UInt64, lastSequence: UInt64, model: [UInt8]?, guests: [UInt8])
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
    static func checkSnapshot(_ connection: SQLiteConnection, path: String, lastSequence: UInt64) throws {
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
}
