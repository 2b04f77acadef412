// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import NIOConcurrencyHelpers

/// Sequence numbers whose notifications will not come, to be reported as one
/// `cssd.notify.gap` notification (API/notify.md).
package struct NotificationGap: Sendable, Hashable {
    package enum Reason: String, Sendable {
        /// The outbox was full (`--notify-outbox-events`/`-bytes`).
        case outboxOverflow = "outbox-overflow"
        /// Durable changes whose notifications were neither in the state dir's outbox nor
        /// in the restored journal after a crash (see `PathNotifier`).
        case restart
    }

    package var reason: Reason
    /// Inclusive ranges, ascending, adjacent numbers merged.
    package var ranges: [ClosedRange<UInt64>]
    /// Notifications they stand for (0 when unknown: never made, for `restart`).
    package var dropped: Int

    package init(reason: Reason, ranges: [ClosedRange<UInt64>], dropped: Int) {
        self.reason = reason
        self.ranges = ranges
        self.dropped = dropped
    }

    /// Adds `sequence` (not below the last range), merging adjacent numbers.
    mutating func add(_ sequence: UInt64) {
        if let last = ranges.last, last.upperBound + 1 == sequence {
            ranges[ranges.count - 1] = last.lowerBound...sequence
        } else if ranges.last.map({ $0.contains(sequence) }) != true {
            ranges.append(sequence...sequence)
        }
    }
}

/// One outbox entry: a notification and its row id in the state dir's outbox (or just a
/// running number without `--state-dir`).
package struct OutboxEntry: Sendable, Hashable {
    package let id: Int64
    package let notification: OsloNotification

    package init(id: Int64, notification: OsloNotification) {
        self.id = id
        self.notification = notification
    }
}

/// What the writer has to put in the state dir's outbox in one transaction.
package struct OutboxWrite: Sendable {
    /// New entries, in order.
    package var inserts: [OutboxEntry] = []
    /// Rows up to this id were confirmed by the broker: delete them.
    package var deleteThrough: Int64?
    /// The newest sequence number the outbox has accounted for (queued, dropped or filtered).
    package var through: UInt64?
    /// The gaps not confirmed yet (pending and in flight), when they changed.
    package var gaps: [NotificationGap]?

    var isEmpty: Bool { inserts.isEmpty && deleteThrough == nil && through == nil && gaps == nil }
}

/// The notifications not yet confirmed by the broker, in publication order, bounded in count
/// and bytes, shared by the event loop (which appends and never waits), the publishing thread
/// (which reads the front, and removes what the broker confirmed) and, with `--state-dir`, the
/// writer thread (which keeps a copy in the state dir's outbox, `OutboxStore`).
///
/// Behaviour: `append` refuses a change whose notifications would pass either bound; its
/// sequence number joins the missed ranges (adjacent numbers merge), counted in `dropped`.
/// The publisher takes the missed ranges once connected and reports them as a gap
/// notification (`takeGap`; `restoreGap` if that report is not confirmed). Entries stay until
/// confirmed: after a lost connection the unconfirmed ones are published again, unchanged.
///
/// Persistent (`persistent: true`): the publisher sees only entries the writer has written
/// (`unwritten` is the tail it has not), so that whatever reached the broker is in the state
/// dir until confirmed; and only entries whose change is durable in the state store (`peek`'s
/// `through`), so that a published sequence number is never given to another change after a
/// crash.
///
/// Cost: O(1) amortised per append and per confirmed entry; memory: the bodies (a chpid
/// notification is about 600 bytes) plus about 110 bytes each.
/// Thread safety: every method takes the one lock for O(1) (or O(window) for `peek`, O(batch)
/// for `takeWrite`); no I/O happens under it.
package final class NotificationOutbox: Sendable {
    package struct Counters: Sendable, Hashable {
        package var depth = 0
        package var bytes = 0
        /// Notifications refused for lack of room.
        package var dropped = 0
        package var published = 0
        package var confirmed = 0
        /// Publishes the broker did not confirm: nacked, or lost with the connection.
        package var failed = 0
        /// Gap notifications the broker confirmed.
        package var gapsReported = 0
        /// Missed sequence ranges not reported yet (every pending gap's, in order).
        package var pendingGap: [ClosedRange<UInt64>] = []
        package var pendingGapDropped = 0
        /// Notifications reloaded from the state dir's outbox at start.
        package var restored = 0
        /// Notifications made again at start from the restored journal (durable changes whose
        /// notifications had not reached the state dir's outbox before a crash).
        package var rebuilt = 0
        /// Failed writes to the state dir's outbox (retried).
        package var writeErrors = 0
    }

    private struct State {
        var entries: [OutboxEntry] = []
        /// Index of the first live entry (entries before it are confirmed; compacted lazily).
        var head = 0
        /// Entries at the tail not yet written to the state dir (persistent only).
        var unwritten = 0
        var counters = Counters()
        var nextID: Int64 = 1
        /// Gaps not reported yet, oldest first; an overflow extends the last one.
        var gaps: [NotificationGap] = []
        /// Gaps the publisher took and the broker has not confirmed yet, oldest first.
        var inFlight: [NotificationGap] = []
        var gapsChanged = false
        /// The newest sequence number handed to `append`.
        var through: UInt64 = 0
        var throughChanged = false
        /// Id of the newest confirmed entry, and of the newest deleted from the state dir.
        var confirmedThrough: Int64 = 0
        var deletedThrough: Int64 = 0
        /// The newest sequence number the state store made durable (`durabilityAdvanced`).
        var durableThrough: UInt64 = 0
    }

    /// Unwritten notifications that wake the writer before their change is durable (persistent).
    static let writeBatch = 512
    /// Confirmed rows not deleted yet that wake the writer (persistent); fewer ride along with
    /// the next write, or wait for `deferredWriteDelay`.
    static let deleteBatch: Int64 = 4096
    /// How long the writer leaves a deferred write (deletions, the position) unwritten at most.
    static let deferredWriteDelay = 0.1

    package let maxEvents: Int
    package let maxBytes: Int
    /// Whether a writer keeps the entries in the state dir (`OutboxStore`).
    package let persistent: Bool
    private let state = NIOLockedValueBox(State())
    /// Wakes the publishing thread: 1 when something may be published since it last looked.
    let signal = ConditionLock(value: 0)
    /// Wakes the writer thread: 1 when something is to be written.
    let writerSignal = ConditionLock(value: 0)

    package init(maxEvents: Int, maxBytes: Int, persistent: Bool = false) {
        self.maxEvents = maxEvents
        self.maxBytes = maxBytes
        self.persistent = persistent
    }

    /// Loads what the state dir's outbox held (at start, before anything else), as written:
    /// the rows count as written. Rows that no longer fit the bounds become a gap, as an
    /// overflow would, and are returned so that the caller deletes them.
    /// - Returns: the ids of the rows dropped.
    package func restore(_ rows: [OutboxEntry], gaps: [NotificationGap], through: UInt64) -> [Int64] {
        state.withLockedValue { state in
            state.through = through
            var dropped: [Int64] = []
            // Older than the saved gaps' numbers: reported before them.
            var refused = NotificationGap(reason: .outboxOverflow, ranges: [], dropped: 0)
            for row in rows {
                let size = row.notification.body.count
                let depth = state.entries.count - state.head
                // Once one does not fit, neither do the later ones: order is kept.
                if !dropped.isEmpty || depth + 1 > maxEvents || state.counters.bytes + size > maxBytes {
                    refused.add(row.notification.sequence)
                    refused.dropped += 1
                    state.counters.dropped += 1
                    dropped.append(row.id)
                    continue
                }
                state.entries.append(row)
                state.counters.bytes += size
                state.counters.depth = depth + 1
            }
            state.counters.restored = state.entries.count
            state.nextID = max(state.nextID, (rows.last?.id ?? 0) + 1)
            state.deletedThrough = (rows.first?.id ?? state.nextID) - 1
            state.confirmedThrough = state.deletedThrough
            state.gaps = (refused.ranges.isEmpty ? [] : [refused]) + gaps
            state.gapsChanged = !dropped.isEmpty
            return dropped
        }
    }

    /// Adds a gap found at start (durable changes that could not be rebuilt).
    package func addGap(_ gap: NotificationGap) {
        guard !gap.ranges.isEmpty else { return }
        state.withLockedValue { state in
            state.gaps.insert(gap, at: 0)
            state.gapsChanged = true
        }
    }

    private static func miss(_ sequence: UInt64, count: Int, in state: inout State) {
        state.counters.dropped += count
        if state.gaps.last?.reason != .outboxOverflow {
            state.gaps.append(NotificationGap(reason: .outboxOverflow, ranges: [], dropped: 0))
        }
        state.gaps[state.gaps.count - 1].add(sequence)
        state.gaps[state.gaps.count - 1].dropped += count
        state.gapsChanged = true
    }

    /// Queues the notifications of one change, all or none: a change is missed as a whole.
    /// A change the filter left without notifications is passed too (empty), so that the
    /// state dir's outbox knows it accounted for it.
    /// - Returns: false when they did not fit (the change's sequence is now in the gap).
    @discardableResult
    package func append(_ notifications: [OsloNotification], sequence: UInt64, rebuilt: Bool = false) -> Bool {
        let size = notifications.reduce(0) { $0 + $1.body.count }
        let fitted = state.withLockedValue { state -> Bool in
            state.through = max(state.through, sequence)
            state.throughChanged = true
            guard !notifications.isEmpty else { return true }
            let depth = state.entries.count - state.head
            guard depth + notifications.count <= maxEvents, state.counters.bytes + size <= maxBytes else {
                Self.miss(sequence, count: notifications.count, in: &state)
                return false
            }
            for notification in notifications {
                state.entries.append(OutboxEntry(id: state.nextID, notification: notification))
                state.nextID += 1
            }
            if persistent { state.unwritten += notifications.count }
            if rebuilt { state.counters.rebuilt += notifications.count }
            state.counters.bytes += size
            state.counters.depth = depth + notifications.count
            return true
        }
        if persistent {
            // The rows are needed once their change is durable: the state store's commit
            // wakes the writer then (`durabilityAdvanced`), for every change its fsync took at
            // once. Woken per change instead, the writer made a transaction per notification
            // (and one per confirm), which cost a pipelining client a third of its rate.
            let due = state.withLockedValue { $0.durableThrough >= sequence || $0.unwritten >= Self.writeBatch }
            if due || rebuilt { wake(writerSignal) }
        } else if fitted && !notifications.isEmpty {
            wake(signal)
        }
        return fitted
    }

    private func wake(_ lock: ConditionLock<Int>) {
        lock.lock()
        lock.unlock(withValue: 1)
    }

    /// Wakes the publisher: changes became durable (entries held by `peek`'s bound may go);
    /// persistent, with `through` (the store's newest durable sequence number), the writer
    /// too, for the rows of those changes.
    package func durabilityAdvanced(through: UInt64? = nil) {
        if persistent, let through {
            let due = state.withLockedValue { state in
                state.durableThrough = max(state.durableThrough, through)
                return state.unwritten > 0
            }
            if due { wake(writerSignal) }
        }
        wake(signal)
    }

    /// Something is, or may soon be, left for the writer without waking it: deletions (of
    /// what is confirmed, or of what waits for the broker's confirm), the position: it
    /// writes it within `deferredWriteDelay`.
    var hasDeferredWrite: Bool {
        state.withLockedValue {
            $0.unwritten > 0 || $0.entries.count > $0.head || $0.confirmedThrough > $0.deletedThrough
                || $0.throughChanged || $0.gapsChanged
        }
    }

    /// Up to `count` entries from offset `from` past the unconfirmed front, written to the
    /// state dir (when persistent) and of changes numbered up to `through`.
    func peek(from offset: Int, count: Int, through: UInt64 = .max) -> [OsloNotification] {
        state.withLockedValue { state in
            let start = state.head + offset
            let end = min(state.entries.count - state.unwritten, start + count)
            guard start < end else { return [] }
            var out: [OsloNotification] = []
            out.reserveCapacity(end - start)
            for index in start..<end {
                let notification = state.entries[index].notification
                // Gap reports carry 0; a change's number is durable or not yet.
                guard notification.sequence <= through else { break }
                out.append(notification)
            }
            return out
        }
    }

    /// Removes the `count` oldest entries, which the broker confirmed.
    func confirm(_ count: Int) {
        state.withLockedValue { state in
            let count = min(count, state.entries.count - state.head)
            guard count > 0 else { return }
            for index in state.head..<(state.head + count) {
                state.counters.bytes -= state.entries[index].notification.body.count
            }
            state.head += count
            state.confirmedThrough = state.entries[state.head - 1].id
            state.counters.confirmed += count
            if state.head > 4096 && state.head * 2 > state.entries.count {
                state.entries.removeFirst(state.head)
                state.head = 0
            }
            state.counters.depth = state.entries.count - state.head
        }
        // A lost deletion means a redelivery, not a loss: deletions wait for the next write
        // unless many are held.
        if persistent && state.withLockedValue({ $0.confirmedThrough - $0.deletedThrough >= Self.deleteBatch }) {
            wake(writerSignal)
        }
    }

    func count(published: Int = 0, failed: Int = 0) {
        state.withLockedValue {
            $0.counters.published += published
            $0.counters.failed += failed
        }
    }

    /// The oldest gap to report, now in flight; nil when there is none.
    func takeGap() -> NotificationGap? {
        state.withLockedValue { state in
            guard !state.gaps.isEmpty else { return nil }
            let gap = state.gaps.removeFirst()
            state.inFlight.append(gap)
            return gap
        }
    }

    /// Puts back a gap whose report the broker did not confirm (before any newer ones).
    func restoreGap(_ gap: NotificationGap) {
        state.withLockedValue { state in
            if let index = state.inFlight.firstIndex(of: gap) { state.inFlight.remove(at: index) }
            state.gaps.insert(gap, at: 0)
        }
    }

    /// The broker confirmed the report of the oldest gap in flight.
    func gapReported() {
        state.withLockedValue { state in
            if !state.inFlight.isEmpty { state.inFlight.removeFirst() }
            state.counters.gapsReported += 1
            state.gapsChanged = true
        }
        if persistent { wake(writerSignal) }
    }

    /// What the writer has to write now (nil: nothing); `written` tells that it is done.
    package func takeWrite(limit: Int = 10_000) -> OutboxWrite? {
        state.withLockedValue { state in
            var write = OutboxWrite()
            let first = state.entries.count - state.unwritten
            var end = min(state.entries.count, first + limit)
            // Whole changes only: a file holds every notification of a change or none.
            while end < state.entries.count && end > first
                && state.entries[end].notification.sequence == state.entries[end - 1].notification.sequence
            {
                end += 1
            }
            write.inserts = Array(state.entries[first..<end])
            if state.confirmedThrough > state.deletedThrough { write.deleteThrough = state.confirmedThrough }
            // The position only with every row up to it: a crash must never find a position
            // past rows that were not written.
            if state.throughChanged && end == state.entries.count {
                write.through = state.through
                state.throughChanged = false
            }
            if state.gapsChanged {
                write.gaps = state.inFlight + state.gaps
                state.gapsChanged = false
            }
            return write.isEmpty ? nil : write
        }
    }

    /// The writer wrote `write` (publishable now), or failed to (`ok` false: taken again).
    package func written(_ write: OutboxWrite, ok: Bool) {
        state.withLockedValue { state in
            guard ok else {
                if write.through != nil { state.throughChanged = true }
                if write.gaps != nil { state.gapsChanged = true }
                state.counters.writeErrors += 1
                return
            }
            state.unwritten -= write.inserts.count
            if let deleted = write.deleteThrough { state.deletedThrough = max(state.deletedThrough, deleted) }
        }
        if ok && !write.inserts.isEmpty { wake(signal) }
    }

    /// Whether everything appended and confirmed is written (for a graceful stop).
    var fullyWritten: Bool {
        state.withLockedValue {
            $0.unwritten == 0 && $0.confirmedThrough <= $0.deletedThrough && !$0.throughChanged && !$0.gapsChanged
        }
    }

    package var counters: Counters {
        state.withLockedValue { state in
            var counters = state.counters
            counters.pendingGap = state.gaps.flatMap(\.ranges)
            counters.pendingGapDropped = state.gaps.reduce(0) { $0 + $1.dropped }
            return counters
        }
    }

    /// The newest sequence number handed to `append` (or restored).
    package var through: UInt64 { state.withLockedValue { $0.through } }
}
