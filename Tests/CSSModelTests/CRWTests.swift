// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Testing

@testable import CSSModel

@Suite struct CRWTests {
    @Test func fieldsDecode() {
        let crw = CRW(rawValue: 0x7482_0041)
        #expect(crw.solicited)
        #expect(crw.overflow)
        #expect(crw.chained)
        #expect(crw.source == .channelPath)
        #expect(crw.ancillary)
        #expect(crw.erc == .initialized)
        #expect(crw.rsid == 0x41)
        #expect(crw.description == "0x74820041")
        let built = CRW(
            solicited: true, overflow: true, chained: true, source: .channelPath, ancillary: true, erc: .initialized,
            rsid: 0x41)
        #expect(built == crw)
    }

    @Test(arguments: [
        (false, true, [0x4402_0040] as [UInt32]),
        (true, true, [0x5402_0040, 0x4402_0000]),
        (false, false, [0x0406_0040]),
        (true, false, [0x1406_0040, 0x0406_0000]),
    ])
    func channelPathReports(mcss: Bool, solicited: Bool, words: [UInt32]) {
        let erc: ErrorRecoveryCode = solicited ? .initialized : .permanentErrorNotInitialized
        let report = CRW.channelPathReport(Fixtures.chp("0.40"), erc: erc, solicited: solicited, multipleCSS: mcss)
        #expect(report.map(\.rawValue) == words)
    }

    @Test func storeOnEmptyQueueIsCC1AndZero() {
        var queue = CRWQueue(capacity: 4)
        #expect(queue.store() == StoreCRWResult(cc: 1, crw: .zero))
        #expect(queue.isEmpty)
    }

    @Test func storePopsOldestFirst() {
        var queue = CRWQueue(capacity: 4)
        queue.enqueue([CRW(rawValue: 1)], cssid: 0)
        queue.enqueue([CRW(rawValue: 2), CRW(rawValue: 3)], cssid: 0)
        #expect(queue.count == 3)
        #expect(queue.store() == StoreCRWResult(cc: 0, crw: CRW(rawValue: 1)))
        #expect(queue.store() == StoreCRWResult(cc: 0, crw: CRW(rawValue: 2)))
        #expect(queue.store() == StoreCRWResult(cc: 0, crw: CRW(rawValue: 3)))
        #expect(queue.store().cc == 1)
    }

    @Test func overflowLosesWholeReportsAndSetsROnTheNextStore() {
        var queue = CRWQueue(capacity: 3)
        do {
            let queued = queue.enqueue([CRW(rawValue: 0x0402_0040)], cssid: 0)
            #expect(queued)
        }
        do {
            let queued = queue.enqueue([CRW(rawValue: 0x1402_0041), CRW(rawValue: 0x0402_0000)], cssid: 0)
            #expect(queued)
        }
        // The queue is full: a chained pair is lost whole, and so is a single CRW.
        do {
            let queued = queue.enqueue([CRW(rawValue: 0x1406_0042), CRW(rawValue: 0x0406_0000)], cssid: 0)
            #expect(!queued)
        }
        do {
            let queued = queue.enqueue([CRW(rawValue: 0x0406_0043)], cssid: 0)
            #expect(!queued)
        }
        #expect(queue.lostCount == 3)
        #expect(queue.count == 3)
        #expect(queue.store().crw.rawValue == 0x2402_0040)  // R on the first stored after the loss
        #expect(queue.store().crw.rawValue == 0x1402_0041)  // and only on that one
        do {
            let queued = queue.enqueue([CRW(rawValue: 0x0403_0044)], cssid: 0)
            #expect(queued)
        }
        #expect(queue.store().crw.rawValue == 0x0402_0000)
        #expect(queue.store().crw.rawValue == 0x0403_0044)
        #expect(queue.store().cc == 1)
    }

    @Test func longRunsStayBounded() {
        var queue = CRWQueue(capacity: 100)
        for round in 0..<10_000 {
            queue.enqueue([CRW(rawValue: UInt32(round))], cssid: 0)
            if round % 3 != 0 { #expect(queue.store().cc == 0) }
        }
        #expect(queue.count == 100)
        #expect(queue.entries.count - queue.head == 100)
        #expect(queue.entries.count < 400)
    }

    @Test func modelCountsLostReportsPerCSS() throws {
        var model = Fixtures.small(multipleCSS: true, crwCapacity: 4)
        #expect(model.resetChannelPath(Fixtures.chp("0.40")).crws.count == 2)
        #expect(model.resetChannelPath(Fixtures.chp("0.41")).crws.count == 2)
        let lost = model.resetChannelPath(Fixtures.chp("0.42"))
        #expect(lost.cc == 0)
        #expect(lost.crws.isEmpty)
        let change = try model.configurePath(Fixtures.chp("0.40"), to: .standby)
        #expect(change.crws.isEmpty)
        #expect(change.crwsLost == 2)
        #expect(model.summary(cssid: 0).crwsQueued == 4)
        #expect(model.summary(cssid: 0).crwsLost == 4)
        #expect(model.summary(cssid: 1).crwsLost == 0)
        #expect(Fixtures.drain(&model) == [0x7402_0040, 0x4402_0000, 0x5402_0041, 0x4402_0000])
    }
}
