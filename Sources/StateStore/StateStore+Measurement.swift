// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import NIOCore
import PathChangePipeline
import PathEvents
import SQLiteNIO

/// The model's channel-measurement facility (issue 21) in the `measurement` table: one row,
/// the facility's whole state after the last `set-channel-measurement` or `set-chpid-load`
/// (`MeasurementModel.savedState(at:)`, with its model time), the wall clock it was taken at
/// and a checksum. It is written in the commit of the command's record (its reply waits for
/// it, as any recorded command's), is independent of the snapshot and the command log (those
/// never touch it), and is read at start after the replay. A state dir from before it has no
/// such table: it is added on open and stays empty (the facility starts as the topology
/// gives it, as before). Only the model's store keeps it: on linux-sysfs `cm_enable` is the
/// host's, the truth, like a vary there.
extension StateStore: MeasurementStateLog {
    package var keepsMeasurement: Bool { backend == .model }

    package func appendMeasurement(state: [UInt8], time: EventTime) -> UInt64 {
        append(Record(token: 0, request: nil, time: time, sequences: nil, measurement: state))
    }

    /// Adds the table to a state dir that lacks it (created before it, or new).
    static func createMeasurementTable(_ connection: SQLiteConnection) throws {
        _ = try rows(
            connection,
            "CREATE TABLE IF NOT EXISTS measurement (id INTEGER PRIMARY KEY CHECK (id = 1), state BLOB NOT NULL, "
                + "seconds INTEGER NOT NULL, microseconds INTEGER NOT NULL, checksum TEXT NOT NULL)")
    }

    /// Writes the newest measurement record of `batch`, if any (inside the commit's transaction).
    func writeMeasurement(of batch: [Record]) throws {
        guard let record = batch.last(where: { $0.measurement != nil }), let state = record.measurement else { return }
        _ = try Self.rows(
            connection,
            "INSERT OR REPLACE INTO measurement (id, state, seconds, microseconds, checksum) VALUES (1, ?, ?, ?, ?)",
            [
                .blob(ByteBuffer(bytes: state)), .integer(record.time.seconds), .integer(record.time.microseconds),
                .text(Self.measurementChecksum(state, time: record.time)),
            ])
    }

    /// What the `measurement` table holds: the facility's state and the wall clock it was
    /// taken at; nil when nothing was recorded.
    /// - Throws: `StateStoreError` for a row that does not match its checksum.
    package func loadMeasurement() throws(StateStoreError) -> (state: [UInt8], time: EventTime)? {
        let found: [SQLiteRow]
        do {
            found = try Self.rows(connection, "SELECT * FROM measurement WHERE id = 1")
        } catch {
            throw StateStoreError("cannot read \(path): \(error)")
        }
        guard let row = found.first else { return nil }
        guard let blob = row.column("state")?.blob, let seconds = row.column("seconds")?.integer,
            let microseconds = row.column("microseconds")?.integer, let checksum = row.column("checksum")?.string
        else { throw StateStoreError("\(path): the channel-measurement state is corrupt (a field is missing)") }
        let state = Array(blob.readableBytesView)
        let time = EventTime(seconds: seconds, microseconds: microseconds)
        let expected = Self.measurementChecksum(state, time: time)
        guard checksum == expected else {
            throw StateStoreError(
                "\(path): the channel-measurement state is corrupt (checksum \(checksum), its contents give "
                    + "\(expected)); remove the state dir to start a new history")
        }
        return (state, time)
    }

    /// Takes the facility kept here onto `model` (after the replay, which does not touch it).
    /// - Returns: the model time it was saved at and the wall clock it was recorded at; nil
    ///   when nothing was recorded (the facility stays as the topology gives it).
    /// - Throws: `StateStoreError` for a state that is corrupt or of another topology.
    package func restoreMeasurement(into model: ModelBackend) throws(StateStoreError)
        -> (time: MeasurementTime, recordedAt: EventTime)?
    {
        guard let (saved, recordedAt) = try loadMeasurement() else { return nil }
        do throws(StateCodingError) {
            return (try model.restoreMeasurement(saved), recordedAt)
        } catch {
            throw StateStoreError(
                "\(path): the channel-measurement state cannot be used (\(error)); remove the state dir to start a "
                    + "new history")
        }
    }

    static func measurementChecksum(_ state: [UInt8], time: EventTime) -> String {
        var writer = StateWriter(capacity: state.count + 16)
        writer.put(Int64(time.seconds))
        writer.put(Int64(time.microseconds))
        writer.put(state)
        let digits = String(stateChecksum(writer.bytes), radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
