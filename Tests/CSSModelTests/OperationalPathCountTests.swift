// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Testing

@testable import CSSModel

/// The maintained count of subchannels without an operational path (read by every metrics
/// scrape in O(1)) against a full recount, after every step of random sequences of every
/// operation that changes a mask.
@Suite struct OperationalPathCountTests {
    @Test(arguments: 0..<40)
    func maintainedCountMatchesRecount(seed: Int) throws {
        var rng = SplitMix64(seed: UInt64(seed) &* 0x9e37_79b9 &+ 7)
        var model = PropertyTests.randomModel(seed: UInt64(seed), mcss: seed % 2 == 1)
        let chpids = model.channelPaths.map(\.id)
        let subchannels = model.subchannels.map(\.id)
        #expect(
            model.subchannelsWithoutOperationalPath(cssid: 0)
                == model.recountSubchannelsWithoutOperationalPath(cssid: 0))
        var sawDown = false
        for step in 0..<200 {
            let chpid = chpids.randomElement(using: &rng)!
            let subchannel = subchannels.randomElement(using: &rng)!
            let operation = Int.random(in: 0..<7, using: &rng)
            switch operation {
            case 0: try model.varyPath(chpid, to: Bool.random(using: &rng) ? .online : .offline)
            case 1:
                // Per-device vary: only for a path the subchannel has.
                if model.subchannel(subchannel)!.slot(of: chpid) != nil {
                    try model.varyPath(chpid, to: Bool.random(using: &rng) ? .online : .offline, subchannel: subchannel)
                }
            case 2: try model.configurePath(chpid, to: Bool.random(using: &rng) ? .configured : .standby)
            case 3: try model.injectPathFault(chpid, PathFault.allCases.randomElement(using: &rng)!)
            case 4:
                var schib = model.storeSubchannel(subchannel).schib!
                schib.pmcw.lpm = UInt8.random(in: 0...255, using: &rng)
                schib.pmcw.pom = UInt8.random(in: 0...255, using: &rng)
                _ = try model.modifySubchannel(subchannel, schib: schib)
            case 5:
                try model.setObservedMasks(
                    subchannel, pam: UInt8.random(in: 0...255, using: &rng),
                    pom: UInt8.random(in: 0...255, using: &rng),
                    lpm: UInt8.random(in: 0...255, using: &rng))
            default: _ = model.resetChannelPath(chpid)
            }
            for cssid in model.cssids {
                let maintained = model.subchannelsWithoutOperationalPath(cssid: cssid)
                #expect(
                    maintained == model.recountSubchannelsWithoutOperationalPath(cssid: cssid),
                    "seed \(seed) step \(step) operation \(operation) css \(cssid)")
                if maintained > 0 { sawDown = true }
            }
        }
        // The sequences do reach the condition (else the test would prove little).
        #expect(sawDown)
    }

    @Test func embeddedDefaultStartsWithTheRecountedValue() throws {
        let model = try Subsystem(topology: .embeddedDefault)
        for cssid in model.cssids {
            #expect(
                model.subchannelsWithoutOperationalPath(cssid: cssid)
                    == model.recountSubchannelsWithoutOperationalPath(cssid: cssid))
        }
    }

    @Test func standbyOfTheOnlyPathTakesItsSubchannelsDown() throws {
        var model = Fixtures.small()
        #expect(model.subchannelsWithoutOperationalPath(cssid: 0) == 0)
        try model.configurePath(Fixtures.chp("0.42"), to: .standby)  // 0.0.0002 has only 0.42
        #expect(model.subchannelsWithoutOperationalPath(cssid: 0) == 1)
        try model.varyPath(Fixtures.chp("0.41"), to: .offline)  // 0.1.0000 has only 0.41; 0.0.0000 keeps 0.40
        #expect(model.subchannelsWithoutOperationalPath(cssid: 0) == 2)
        try model.configurePath(Fixtures.chp("0.42"), to: .configured)
        try model.varyPath(Fixtures.chp("0.41"), to: .online)
        #expect(model.subchannelsWithoutOperationalPath(cssid: 0) == 0)
    }
}
