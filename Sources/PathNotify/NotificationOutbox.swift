// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import NIOConcurrencyHelpers

/// The notifications not yet confirmed by the broker, in publication order, bounded in count
/// and bytes, shared by the event loop (which appends and never waits) and the publishing
/// thread (which reads the front, and removes what the broker confirmed).
///
/// Behaviour: `append` refuses a notification that would pass either bound; the refused
/// change's sequence number joins the missed ranges (adjacent numbers merge), counted in
/// `dropped`. The publisher takes the missed ranges once connected and reports them as a gap
/// notification (`takeGap`; `restoreGap` if that report is not confirmed). Entries stay until
/// confirmed: after a lost connection the unconfirmed ones are published again, unchanged.
///
/// Cost: O(1) amortised per append and per confirmed entry; memory: the bodies (a chpid
/// notification is about 600 bytes) plus about 100 bytes each.
/// Thread safety: every method takes the one lock for O(1) (or O(window) for `peek`); no
/// I/O happens under it.
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
        /// Missed sequence ranges not reported yet.
        package var pendingGap: [ClosedRange<UInt64>] = []
        package var pendingGapDropped = 0
    }

    private struct State {
        var entries: [OsloNotification] = []
        /// Index of the first live entry (entries before it are confirmed; compacted lazily).
        var head = 0
        var counters = Counters()
    }

    package let maxEvents: Int
    package let maxBytes: Int
    private let state = NIOLockedValueBox(State())
    /// Wakes the publishing thread: 1 when something was appended since it last looked.
    let signal = ConditionLock(value: 0)

    package init(maxEvents: Int, maxBytes: Int) {
        self.maxEvents = maxEvents
        self.maxBytes = maxBytes
    }

    /// Queues the notifications of one change, all or none: a change is missed as a whole.
    /// - Returns: false when they did not fit (the change's sequence is now in the gap).
    @discardableResult
    package func append(_ notifications: [OsloNotification], sequence: UInt64) -> Bool {
        guard !notifications.isEmpty else { return true }
        let size = notifications.reduce(0) { $0 + $1.body.count }
        let fitted = state.withLockedValue { state -> Bool in
            let depth = state.entries.count - state.head
            guard depth + notifications.count <= maxEvents, state.counters.bytes + size <= maxBytes else {
                state.counters.dropped += notifications.count
                state.counters.pendingGapDropped += notifications.count
                if let last = state.counters.pendingGap.last, last.upperBound + 1 == sequence {
                    state.counters.pendingGap[state.counters.pendingGap.count - 1] = last.lowerBound...sequence
                } else if state.counters.pendingGap.last?.upperBound != sequence {
                    state.counters.pendingGap.append(sequence...sequence)
                }
                return false
            }
            state.entries.append(contentsOf: notifications)
            state.counters.bytes += size
            state.counters.depth = depth + notifications.count
            return true
        }
        if fitted {
            signal.lock()
            signal.unlock(withValue: 1)
        }
        return fitted
    }

    /// Up to `count` entries from offset `from` past the unconfirmed front.
    func peek(from offset: Int, count: Int) -> [OsloNotification] {
        state.withLockedValue { state in
            let start = state.head + offset
            guard start < state.entries.count else { return [] }
            return Array(state.entries[start..<min(state.entries.count, start + count)])
        }
    }

    /// Removes the `count` oldest entries, which the broker confirmed.
    func confirm(_ count: Int) {
        state.withLockedValue { state in
            let count = min(count, state.entries.count - state.head)
            for index in state.head..<(state.head + count) { state.counters.bytes -= state.entries[index].body.count }
            state.head += count
            state.counters.confirmed += count
            if state.head > 4096 && state.head * 2 > state.entries.count {
                state.entries.removeFirst(state.head)
                state.head = 0
            }
            state.counters.depth = state.entries.count - state.head
        }
    }

    func count(published: Int = 0, failed: Int = 0) {
        state.withLockedValue {
            $0.counters.published += published
            $0.counters.failed += failed
        }
    }

    /// The missed ranges to report, now cleared; nil when there are none.
    func takeGap() -> (ranges: [ClosedRange<UInt64>], dropped: Int)? {
        state.withLockedValue { state in
            guard !state.counters.pendingGap.isEmpty else { return nil }
            defer {
                state.counters.pendingGap = []
                state.counters.pendingGapDropped = 0
            }
            return (state.counters.pendingGap, state.counters.pendingGapDropped)
        }
    }

    /// Puts back a gap whose report the broker did not confirm (before any newer ranges).
    func restoreGap(_ gap: (ranges: [ClosedRange<UInt64>], dropped: Int)) {
        state.withLockedValue { state in
            state.counters.pendingGap = gap.ranges + state.counters.pendingGap
            state.counters.pendingGapDropped += gap.dropped
        }
    }

    func gapReported() { state.withLockedValue { $0.counters.gapsReported += 1 } }

    package var counters: Counters { state.withLockedValue { $0.counters } }
}
