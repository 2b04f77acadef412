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
/// while cssd was down can be published at start. The model's channel-measurement facility is
/// kept apart, as its whole state after each change (`StateStore+Measurement.swift`). The epoch and a fingerprint of the topology
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
    /// `created` over a `state.sqlite` that held no table (an empty file: what a first start
    /// interrupted before its first commit leaves); the daemon says so.
    package internal(set) var replacedEmpty = false
    /// The last sequence number recorded before this start.
    package let storedLastSequence: UInt64
    /// The commands a successful call of which is recorded (`recordedCommands(backend:)`).
    package let recorded: Set<String>
    /// The backend whose state this is.
    package let backend: BackendKind
    /// Told (on the committing thread, in the order added) after each commit: held events may
    /// go. `addDurableListener`.
    let durableListeners = NIOLockedValueBox<[@Sendable () -> Void]>([])
    /// Most changes kept in the `journal` table (`--event-journal N`; 0 keeps none).
    package let journalCapacity: Int
    /// The host is the truth (linux-sysfs): its last recorded state is kept.
    package let keepsHost: Bool
    /// Commands between snapshots (0: only on a clean stop).
    package let snapshotEvery: Int
    /// Reads, on the event loop, what a snapshot keeps (set before the server serves).
    package var capture: (() -> Captured)?
    /// Read on the event loop right after a periodic snapshot: a request to log after it, or
    /// nil. The scenario player's "interrupted" marker: the snapshot folds a playing run's
    /// step records, whose ids told a restart how far the run got (API/scenarios.md).
    package var afterSnapshot: (() -> String?)?

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

    let file: SQLiteFile
    var connection: SQLiteConnection { file.connection }
    /// Held until `close`: one cssd per state dir.
    let lock: StateDirLock
    /// `close` ran (under `commitLock`): nothing touches the file any more.
    var closed = false

    struct Record {
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
        /// The model's channel-measurement state (`StateStore+Measurement.swift`).
        var measurement: [UInt8]? = nil
    }

    struct Pending {
        var records: [Record] = []
        var nextToken: UInt64 = 1
        var committed: UInt64 = 0
        var lastSequence: UInt64 = 0
        var commandsSinceSnapshot = 0
        /// `appendingTogether` is running: a snapshot due waits for its last record.
        var snapshotsHeld = 0
        /// While `appendingTogether` runs: the first token of its records, which no commit
        /// takes until its last is appended (a step is recorded whole or not at all).
        var openFrom: UInt64?
        /// The newest command's record, which a held snapshot is taken after.
        var lastCommand: (token: UInt64, time: EventTime)?
        /// The last commit's failure and when, until a commit succeeds.
        var failure: (message: String, at: ContinuousClock.Instant)?
    }

    /// How long after a failed commit recorded commands are refused unrun (`refusal`): the
    /// next one after it runs and its commit retries what is held.
    static let retryAfterFailure: Duration = .seconds(1)

    /// The snapshot read at start: commands up to `through` are in it.
    var snapshotThrough: UInt64 = 0
    /// The `journal` table as committed (touched under `commitLock`). A commit works on a
    /// copy and keeps it only once its transaction committed: a commit that fails (a full
    /// disk) and is retried with the same records counts each of them once.
    var journalTable = JournalTable()

    let pending = NIOLockedValueBox(Pending())
    /// Commits that no reply waits for (changes observed on the host).
    let committer = NIOThreadPool(numberOfThreads: 1)
    /// Held by the one committing thread.
    let commitLock = NIOLock()

    /// Whether a store of `backend`'s state records commands that change `state`: guests are
    /// cssd's own on every backend; the channel subsystem only with the model (a real host
    /// keeps its own and is the truth).
    package static func records(_ state: ChangedState, backend: BackendKind) -> Bool {
        switch state {
        case .guests: true
        case .subsystem, .measurement: backend == .model
        }
    }

    /// The commands recorded for `backend`: those of `changedState` (what the schema marks
    /// `"changes"`: the command layer's `CommandRegistry.changedState`, generated from API/*.json
    /// at build time) with a state this backend's store keeps.
    package static func recordedCommands(backend: BackendKind, changedState: [String: ChangedState]) -> Set<String> {
        Set(changedState.filter { records($0.value, backend: backend) }.keys)
    }

    init(
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
}
