// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import PathChangePipeline
import PathEvents
import SQLiteNIO

extension StateStore {
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
}
