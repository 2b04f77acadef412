// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// One subscriber's bounded queue of events not yet handed to its connection.
///
/// A newer event for the same chpid (or the same subchannel and chpid) replaces the pending
/// one and moves to the end, so what is delivered stays in time order and shows the latest
/// state. When the queue is still full, the oldest event is dropped and counted; the count
/// is delivered as one `.dropped(n)` before any later event. Nothing is lost silently:
/// published == delivered + coalesced + dropped + queued, at every moment.
///
/// Costs: push and pop O(1) amortised (one hash lookup); memory O(limit).
package struct PathEventQueue: Sendable {
    package let limit: Int
    package private(set) var count = 0
    package private(set) var delivered = 0
    package private(set) var coalesced = 0
    package private(set) var dropped = 0
    /// Drops not yet reported by a `.dropped` delivery.
    package private(set) var unreportedDrops = 0

    /// Pending events in arrival order; nil marks one that was coalesced or dropped.
    private var slots: [QueuedPathEvent?] = []
    /// Index in `slots` of the first entry not yet consumed.
    private var head = 0
    /// Absolute position (`base` + index) of each pending event, by coalescing key.
    private var positions: [UInt64: Int] = [:]
    /// Absolute position of `slots[0]`; grows as consumed entries are discarded.
    private var base = 0

    /// - Precondition: `limit >= 1`.
    package init(limit: Int) {
        precondition(limit >= 1)
        self.limit = limit
    }

    /// Entries held, pending or holes (for tests of the memory bound).
    var storageSlots: Int { slots.count - head }

    package var isEmpty: Bool { count == 0 && unreportedDrops == 0 }

    /// The sequence of what `pop` returns next (0 for a drop report, which precedes all).
    package mutating func nextSequence() -> UInt64? {
        if unreportedDrops > 0 { return 0 }
        guard count > 0 else { return nil }
        while slots[head] == nil { head += 1 }
        return slots[head]!.sequence
    }

    /// The change sequence number of what `pop` returns next (0 for a drop report).
    package mutating func nextChange() -> UInt64? {
        if unreportedDrops > 0 { return 0 }
        guard count > 0 else { return nil }
        while slots[head] == nil { head += 1 }
        return slots[head]!.change
    }

    /// Queues an event. With `coalescing` false (a resuming subscriber's replayed past, which
    /// it asked for change by change) it replaces nothing and is never replaced by a later
    /// event; it can still be dropped, and counted, when the queue is full.
    package mutating func push(_ entry: QueuedPathEvent, coalescing: Bool = true) {
        let key = entry.event.coalescingKey
        let position = base + slots.count
        if !coalescing {
            if count == limit { dropOldest() }
        } else if let old = positions.updateValue(position, forKey: key) {
            slots[old - base] = nil
            count -= 1
            coalesced += 1
        } else if count == limit {
            dropOldest()
        }
        slots.append(entry)
        count += 1
        compactIfSparse()
    }

    package mutating func pop() -> PathEventDelivery? {
        if unreportedDrops > 0 {
            defer { unreportedDrops = 0 }
            return .dropped(unreportedDrops)
        }
        guard count > 0 else { return nil }
        while slots[head] == nil { head += 1 }
        let entry = slots[head]!
        forgetPosition(of: entry, at: base + head)
        slots[head] = nil
        head += 1
        count -= 1
        delivered += 1
        if count == 0 { reset() } else if head > 4096 && head > slots.count / 2 { discardConsumed() }
        return .event(entry)
    }

    private mutating func dropOldest() {
        while slots[head] == nil { head += 1 }
        forgetPosition(of: slots[head]!, at: base + head)
        slots[head] = nil
        head += 1
        count -= 1
        dropped += 1
        unreportedDrops += 1
    }

    /// An entry leaves: its key no longer points at it (a replayed entry's key may point at a
    /// later live one, which stays).
    private mutating func forgetPosition(of entry: QueuedPathEvent, at position: Int) {
        let key = entry.event.coalescingKey
        if positions[key] == position { positions[key] = nil }
    }

    /// Nothing pending: let go of a burst's memory.
    private mutating func reset() {
        if slots.capacity > 4096 {
            slots = []
            positions = [:]
        } else {
            slots.removeAll(keepingCapacity: true)
        }
        head = 0
        base = 0
    }

    private mutating func discardConsumed() {
        slots.removeFirst(head)
        base += head
        head = 0
    }

    /// Coalescing leaves holes; rebuild once they outnumber the pending events, so memory
    /// stays O(limit) whatever the pattern of updates.
    private mutating func compactIfSparse() {
        let holes = slots.count - head - count
        guard holes > 1024 && holes > count else { return }
        var live: [QueuedPathEvent?] = []
        live.reserveCapacity(count)
        for index in head..<slots.count {
            if let entry = slots[index] {
                positions[entry.event.coalescingKey] = live.count
                live.append(entry)
            }
        }
        slots = live
        head = 0
        base = 0
    }
}
