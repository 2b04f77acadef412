// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import PathEvents

/// What runs the commands a `DurableLog` recorded, again, on start (the command layer): the
/// log reads its records, this replays each as it ran, under the time it ran at, so that the
/// model, the guests and the sequence numbers come back as they were.
package protocol CommandReplayer: AnyObject {
    /// Whether a durable log already records (replay must come before: it is not recorded).
    var isRecording: Bool { get }
    /// The sequence number of the last path change published.
    var lastPublishedSequence: UInt64 { get }
    /// Runs one recorded request (its JSON text) with `time` as its changes' timestamp.
    func replay(request: String, at time: EventTime) -> ReplayOutcome
}

/// How one replayed command ended.
package enum ReplayOutcome: Equatable, Sendable {
    case succeeded
    /// It ran and failed (the error reply's `desc`), or its envelope was refused (why).
    case failed(String)
    /// The text is not a JSON value: the record is corrupt.
    case notJSON
}

extension PathEventJournal {
    /// A new epoch: 16 random hex digits (a history nobody can resume into by chance).
    package static func newEpoch() -> String {
        let value = UInt64.random(in: 1...UInt64.max)
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
