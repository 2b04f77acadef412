// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import TestSupport
import Testing

@testable import PathEvents

private let t0 = EventTime(seconds: 1, microseconds: 2)

/// Two subchannels on 0.40, one of them on 0.41 too.
private func model() -> Subsystem {
    let subchannels: [Topology.Subchannel] = (0..<2).map { n in
        .init(
            id: SubchannelID(cssid: 0, ssid: 0, schno: UInt16(n)), devno: 0x1000 + n, devType: 0x3390, devModel: 0x0c,
            cuType: 0x3990, cuModel: 0xe9, chpids: n == 0 ? [chp("0.40"), chp("0.41")] : [chp("0.40")], enabled: true,
            isc: 3)
    }
    let topology = Topology(
        channelSubsystems: [.init(cssid: 0)],
        channelPaths: [.init(id: chp("0.40"), type: 0x1a), .init(id: chp("0.41"), type: 0x1a)],
        subchannels: subchannels)
    return try! Subsystem(topology: topology)
}

/// A journal of `count` alternating varies of 0.40 (and the model after them).
private func journal(capacity: Int, count: Int) throws -> (PathEventJournal, Subsystem) {
    var css = model()
    let journal = PathEventJournal(capacity: capacity, epoch: "e1")
    for n in 1...count {
        let state: VaryState = n % 2 == 1 ? .offline : .online
        let change = try css.varyPath(chp("0.40"), to: state)
        journal.append(
            JournaledPathChange(
                sequence: UInt64(n), change: change, kind: state == .offline ? .offline : .online,
                time: EventTime(seconds: n, microseconds: 0), guests: []))
    }
    return (journal, css)
}

/// (change sequence, event kind) of everything queued for `owner`, up to `limit`.
private func drained(_ hub: inout PathEventHub, _ owner: ConnectionID, through limit: UInt64 = .max) -> [String] {
    var out: [String] = []
    hub.drain(for: owner, through: limit) { _, delivery in
        switch delivery {
        case .dropped(let n): out.append("dropped \(n)")
        case .event(let queued):
            switch queued.event {
            case .channelPath: out.append("\(queued.change) chp")
            case .subchannel(let e), .scenarioSubchannel(let e, _):
                out.append("\(queued.change) sch \(e.subchannel.schno)")
            case .guest: out.append("\(queued.change) guest")
            case .hostGuest: out.append("\(queued.change) host-guest")
            case .gap(let gap):
                out.append("gap \(gap.reason.rawValue) \(gap.first)...\(gap.last) after \(queued.change)")
            case .utilization(let e): out.append("util \(e.chpid)")
            }
        }
        return true
    }
    return out
}

@Suite("path-event journal")
struct PathEventJournalTests {
    @Test func ringKeepsTheNewestAndResumeSaysWhatIsMissing() throws {
        let (journal, _) = try journal(capacity: 5, count: 12)
        #expect(journal.oldest == 8 && journal.newest == 12 && journal.count == 5)
        #expect(journal.changes.map(\.sequence) == [8, 9, 10, 11, 12])
        #expect(journal.count == 5)
        let inside = try journal.resume(epoch: "e1", after: 9)
        #expect(inside.gap == nil && inside.changes.map(\.sequence) == [10, 11, 12])
        let justBefore = try journal.resume(epoch: "e1", after: 7)
        #expect(justBefore.gap == nil && justBefore.changes.map(\.sequence) == [8, 9, 10, 11, 12])
        let old = try journal.resume(epoch: "e1", after: 2)
        #expect(old.gap == PathEventGap(first: 3, last: 7, reason: .journal))
        #expect(old.changes.map(\.sequence) == [8, 9, 10, 11, 12])
        let foreign = try journal.resume(epoch: "e0", after: 2)
        #expect(foreign.gap == PathEventGap(first: 1, last: 12, reason: .epoch) && foreign.changes.isEmpty)
        #expect(try journal.resume(epoch: "e1", after: 12).changes.isEmpty)
        #expect(throws: PathEventJournal.ResumeError.ahead(position: 13, newest: 12)) {
            try journal.resume(epoch: "e1", after: 13)
        }
    }

    /// Changes that altered many subchannels are let go first when the budget is exceeded (each
    /// vary of 0.40 alters 2).
    @Test func subchannelBudgetBoundsTheJournal() throws {
        var css = model()
        let journal = PathEventJournal(capacity: 100, epoch: "e1", subchannelBudget: 5)
        for n in 1...6 {
            let state: VaryState = n % 2 == 1 ? .offline : .online
            journal.append(
                JournaledPathChange(
                    sequence: UInt64(n), change: try css.varyPath(chp("0.40"), to: state),
                    kind: state == .offline ? .offline : .online, time: t0, guests: []))
        }
        #expect(journal.oldest == 5 && journal.newest == 6)
        #expect(try journal.resume(epoch: "e1", after: 2).gap == PathEventGap(first: 3, last: 4, reason: .journal))
    }

    @Test func emptyJournalReportsEveryResumeBehindTheNewest() throws {
        let (journal, _) = try journal(capacity: 0, count: 3)
        #expect(journal.oldest == nil && journal.newest == 3)
        #expect(try journal.resume(epoch: "e1", after: 1).gap == PathEventGap(first: 2, last: 3, reason: .journal))
    }

    /// A replay is queued whole, in order, uncoalesced (the same chpid changes 12 times), with the
    /// subscription's granularity; live events follow it.
    @Test func replayIsNotCoalescedAndLiveEventsFollowIt() throws {
        let (journal, model) = try journal(capacity: 100, count: 12)
        var css = model
        var hub = PathEventHub()
        let resume = try journal.resume(epoch: "e1", after: 9)
        _ = try hub.subscribe(owner: 1, filter: PathEventFilter(granularity: .both), queueLimit: 100, resume: resume)
        let live = try css.varyPath(chp("0.41"), to: .offline)
        hub.publish(live, as: .offline, at: t0, sequence: 13)
        #expect(
            drained(&hub, 1) == [
                "10 chp", "10 sch 0", "10 sch 1", "11 chp", "11 sch 0", "11 sch 1", "12 chp", "12 sch 0", "12 sch 1",
                "13 chp", "13 sch 0",
            ])
    }

    @Test func gapComesFirstAndFiltersApplyToTheReplay() throws {
        let (journal, _) = try journal(capacity: 3, count: 6)
        var hub = PathEventHub()
        let resume = try journal.resume(epoch: "e1", after: 1)
        let filter = PathEventFilter(granularity: .chpid, changes: [.online])
        _ = try hub.subscribe(owner: 1, filter: filter, queueLimit: 100, resume: resume, at: t0)
        #expect(drained(&hub, 1) == ["gap journal 2...3 after 1", "4 chp", "6 chp"])
    }

    /// Events of a change not yet durable stay queued, in order.
    @Test func drainStopsAtTheDeliverableLimit() throws {
        var css = model()
        var hub = PathEventHub()
        _ = try hub.subscribe(owner: 1, filter: PathEventFilter(granularity: .chpid), queueLimit: 100)
        _ = try hub.subscribe(
            owner: 1, filter: PathEventFilter(granularity: .chpid, chpids: [chp("0.41")]), queueLimit: 100)
        hub.publish(try css.varyPath(chp("0.40"), to: .offline), as: .offline, at: t0, sequence: 1)
        hub.publish(try css.varyPath(chp("0.41"), to: .offline), as: .offline, at: t0, sequence: 2)
        #expect(drained(&hub, 1, through: 0) == [])
        #expect(drained(&hub, 1, through: 1) == ["1 chp"])
        #expect(drained(&hub, 1) == ["2 chp", "2 chp"])
    }

    /// A replay larger than the queue drops its oldest events and reports them.
    @Test func replayLargerThanTheQueueIsReported() throws {
        let (journal, _) = try journal(capacity: 100, count: 10)
        var hub = PathEventHub()
        let resume = try journal.resume(epoch: "e1", after: 0)
        _ = try hub.subscribe(owner: 1, filter: PathEventFilter(granularity: .chpid), queueLimit: 4, resume: resume)
        #expect(drained(&hub, 1) == ["dropped 6", "7 chp", "8 chp", "9 chp", "10 chp"])
    }
}
