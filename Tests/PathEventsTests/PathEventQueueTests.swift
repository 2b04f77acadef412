// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import Testing

@testable import PathEvents

/// A chpid event for chpid `chpid` of css 0; `n` tells versions apart.
func chpidEvent(_ chpid: UInt8, _ sequence: UInt64, subchannels n: Int = 0) -> QueuedPathEvent {
    QueuedPathEvent(
        sequence: sequence, time: EventTime(seconds: 0, microseconds: 0),
        event: .channelPath(
            ChannelPathEvent(
                chpid: ChannelPathID(cssid: 0, chpid: chpid), change: .offline, vary: .offline, configure: .configured,
                subchannels: n, crw: nil)))
}

func chpidOf(_ delivery: PathEventDelivery?) -> UInt8? {
    guard case .event(let queued)? = delivery, case .channelPath(let event) = queued.event else { return nil }
    return event.chpid.chpid
}

@Suite struct PathEventQueueTests {
    @Test func deliversInOrder() {
        var queue = PathEventQueue(limit: 10)
        for i in 0..<5 { queue.push(chpidEvent(UInt8(i), UInt64(i + 1))) }
        #expect((0..<5).map { _ in chpidOf(queue.pop()) } == [0, 1, 2, 3, 4])
        #expect(queue.pop() == nil)
        #expect(queue.delivered == 5 && queue.coalesced == 0 && queue.dropped == 0)
    }

    @Test func newerEventForSameKeyReplacesAndMovesToEnd() {
        var queue = PathEventQueue(limit: 10)
        queue.push(chpidEvent(1, 1, subchannels: 1))
        queue.push(chpidEvent(2, 2))
        queue.push(chpidEvent(1, 3, subchannels: 2))
        #expect(queue.count == 2 && queue.coalesced == 1)
        #expect(chpidOf(queue.pop()) == 2)
        guard case .event(let latest)? = queue.pop(), case .channelPath(let event) = latest.event else {
            Issue.record("expected the coalesced event")
            return
        }
        #expect(event.subchannels == 2 && latest.sequence == 3)
    }

    @Test func fullQueueDropsOldestAndReportsExactCountFirst() {
        var queue = PathEventQueue(limit: 3)
        for i in 0..<8 { queue.push(chpidEvent(UInt8(i), UInt64(i + 1))) }
        #expect(queue.count == 3 && queue.dropped == 5)
        #expect(queue.pop() == .dropped(5))
        #expect([chpidOf(queue.pop()), chpidOf(queue.pop()), chpidOf(queue.pop())] == [5, 6, 7])
        #expect(queue.pop() == nil)
        // Later drops are counted afresh.
        for i in 0..<4 { queue.push(chpidEvent(UInt8(i), UInt64(i + 10))) }
        #expect(queue.pop() == .dropped(1))
        #expect(queue.dropped == 6)
    }

    @Test func coalescingComesBeforeDropping() {
        var queue = PathEventQueue(limit: 2)
        queue.push(chpidEvent(1, 1))
        queue.push(chpidEvent(2, 2))
        queue.push(chpidEvent(1, 3))  // replaces, no drop
        #expect(queue.dropped == 0 && queue.coalesced == 1)
        queue.push(chpidEvent(3, 4))  // full: drops the oldest pending (chpid 2)
        #expect(queue.pop() == .dropped(1))
        #expect([chpidOf(queue.pop()), chpidOf(queue.pop())] == [1, 3])
    }

    /// Random pushes and pops against a plain reference model: same deliveries, and the
    /// accounting identity published == delivered + coalesced + dropped + queued throughout.
    @Test func matchesReferenceModel() {
        var rng = SplitMix(seed: 42)
        for limit in [1, 2, 7, 64] {
            var queue = PathEventQueue(limit: limit)
            var reference: [QueuedPathEvent] = []
            var referenceDrops = 0
            var published = 0
            for step in 0..<20_000 {
                if rng.next() % 3 != 0 {
                    let event = chpidEvent(UInt8(rng.next() % 12), UInt64(step + 1), subchannels: step)
                    published += 1
                    queue.push(event)
                    if let index = reference.firstIndex(where: { $0.event.coalescingKey == event.event.coalescingKey })
                    {
                        reference.remove(at: index)
                    } else if reference.count == limit {
                        reference.removeFirst()
                        referenceDrops += 1
                    }
                    reference.append(event)
                } else {
                    let got = queue.pop()
                    if referenceDrops > 0 {
                        #expect(got == .dropped(referenceDrops))
                        referenceDrops = 0
                    } else {
                        #expect(got == reference.first.map { .event($0) })
                        if !reference.isEmpty { reference.removeFirst() }
                    }
                }
                #expect(published == queue.delivered + queue.coalesced + queue.dropped + queue.count)
                #expect(queue.count == reference.count)
            }
        }
    }

    /// One key rewritten a million times behind an old pending event: memory stays bounded.
    @Test func holesAreCompacted() {
        var queue = PathEventQueue(limit: 4)
        queue.push(chpidEvent(0, 1))
        for i in 0..<1_000_000 { queue.push(chpidEvent(1, UInt64(i + 2))) }
        #expect(queue.count == 2 && queue.coalesced == 999_999)
        #expect(queue.storageSlots <= 2 * 1024 + 4)
        #expect(chpidOf(queue.pop()) == 0)
        #expect(chpidOf(queue.pop()) == 1)
    }
}

/// A small deterministic generator (SplitMix64), so failures reproduce.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct PathEventMemoryTests {
    /// A queued event's footprint is what bounds a stalled subscriber's memory (docs/path-events.md states
    /// queue-limit x this, plus the coalescing index); keep it small.
    @Test func queuedEventIsCompact() {
        print("QueuedPathEvent? stride:", MemoryLayout<QueuedPathEvent?>.stride)
        // 48 before events carried their change's sequence number (8 bytes more).
        #expect(MemoryLayout<QueuedPathEvent?>.stride <= 56)
    }
}
