// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Testing

@testable import CSSModel

/// The redundancy counts (devices in use on one operational path, on none; per chpid and per
/// css) and the losses a change reports, against a full recount and a comparison of the
/// subchannels before and after, over random sequences of every operation that changes a
/// mask or a device's presence.
@Suite struct RedundancyTests {
    /// The devices in use a change cost their redundancy or last path, found by comparing
    /// every subchannel before and after (the reference for `PathChange.losses`).
    static func expectedLosses(before: [Subchannel], after: Subsystem) -> [SubchannelID: RedundancyLoss] {
        var losses: [SubchannelID: RedundancyLoss] = [:]
        for (old, new) in zip(before, after.subchannels) {
            if let loss = RedundancyLoss(from: old.operationalPaths, to: new.operationalPaths) { losses[old.id] = loss }
        }
        return losses
    }

    static func reported(_ change: PathChange) -> [SubchannelID: RedundancyLoss] {
        var losses: [SubchannelID: RedundancyLoss] = [:]
        for position in change.losses.redundancyLost { losses[change.affected[Int(position)].id] = .redundancy }
        for position in change.losses.lastPathLost { losses[change.affected[Int(position)].id] = .lastPath }
        return losses
    }

    @Test(arguments: 0..<40)
    func maintainedCountsAndReportedLossesMatchAFullComparison(seed: Int) throws {
        var rng = SplitMix64(seed: UInt64(seed) &* 0x9e37_79b9 &+ 11)
        var model = PropertyTests.randomModel(seed: UInt64(seed), mcss: seed % 2 == 1)
        let chpids = model.channelPaths.map(\.id)
        let subchannels = model.subchannels.map(\.id)
        #expect(model.maintainedRedundancy() == model.recountRedundancy())
        var saw = (single: false, lost: false, without: false, redundancyEvent: false, lastPathEvent: false)
        for step in 0..<200 {
            let chpid = chpids.randomElement(using: &rng)!
            let subchannel = subchannels.randomElement(using: &rng)!
            let operation = Int.random(in: 0..<8, using: &rng)
            let before = model.subchannels
            var change: PathChange?
            switch operation {
            case 0: change = try model.varyPath(chpid, to: Bool.random(using: &rng) ? .online : .offline)
            case 1:
                if model.subchannel(subchannel)!.slot(of: chpid) != nil {
                    change = try model.varyPath(
                        chpid, to: Bool.random(using: &rng) ? .online : .offline, subchannel: subchannel)
                }
            case 2: change = try model.configurePath(chpid, to: Bool.random(using: &rng) ? .configured : .standby)
            case 3: change = try model.injectPathFault(chpid, PathFault.allCases.randomElement(using: &rng)!)
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
            case 6: try model.setObservedDevice(subchannel, present: Int.random(in: 0..<4, using: &rng) > 0)
            default: _ = model.resetChannelPath(chpid)
            }
            let context = "seed \(seed) step \(step) operation \(operation)"
            #expect(model.maintainedRedundancy() == model.recountRedundancy(), "\(context)")
            if let change {
                let reported = Self.reported(change)
                #expect(reported == Self.expectedLosses(before: before, after: model), "\(context)")
                #expect(
                    change.losses.redundancyLost.count + change.losses.lastPathLost.count == reported.count,
                    "\(context): a device is reported once")
                if !change.losses.redundancyLost.isEmpty { saw.redundancyEvent = true }
                if !change.losses.lastPathLost.isEmpty { saw.lastPathEvent = true }
            }
            for cssid in model.cssids {
                let counts = model.redundancy(cssid: cssid)
                if counts.singlePath > 0 { saw.single = true }
                if counts.redundancyLost > 0 { saw.lost = true }
                if counts.withoutPath > 0 { saw.without = true }
            }
        }
        // The sequences reach every state (else the test would prove little).
        #expect(saw.single && saw.lost && saw.without && saw.redundancyEvent && saw.lastPathEvent, "\(saw)")
    }

    @Test func embeddedDefaultCountsItsSinglePathDevices() throws {
        let model = try Subsystem(topology: .embeddedDefault)
        #expect(model.maintainedRedundancy() == model.recountRedundancy())
        // 0.0.3000-3001 have 0.4c and 0.4d installed, 0.4d in standby: they run on 0.4c alone.
        #expect(model.redundancy(of: Fixtures.chp("0.4c")) == .init(singlePath: 2, redundancyLost: 2, withoutPath: 0))
        // The OSA triple was installed with 0.60 only: single path, but never redundant.
        #expect(model.redundancy(of: Fixtures.chp("0.60")) == .init(singlePath: 3, redundancyLost: 0, withoutPath: 0))
        #expect(model.redundancy(of: Fixtures.chp("0.40")) == .init(singlePath: 0, redundancyLost: 0, withoutPath: 0))
        #expect(model.redundancy(cssid: 0) == .init(singlePath: 5, redundancyLost: 2, withoutPath: 0))
        #expect(model.redundancy(cssid: 0xfe) == .init(singlePath: 4, redundancyLost: 0, withoutPath: 0))
        #expect(model.redundancy(of: ChannelPathID(cssid: 0, chpid: 0x99)) == nil)
    }

    @Test func varyingThePathsOfTheDASDsLosesRedundancyThenTheLastPath() throws {
        var model = try Subsystem(topology: .embeddedDefault)
        // The 42 DASDs 0.0.1000-1029 have 0.40-0.43.
        for chpid in ["0.40", "0.41"] {
            let change = try model.varyPath(Fixtures.chp(chpid), to: .offline)
            #expect(change.affected.count == 42 && change.losses.isEmpty)
        }
        var change = try model.varyPath(Fixtures.chp("0.42"), to: .offline)
        #expect(change.losses.redundancyLost == (0..<42).map { Int32($0) } && change.losses.lastPathLost.isEmpty)
        #expect(model.redundancy(of: Fixtures.chp("0.43")) == .init(singlePath: 42, redundancyLost: 42, withoutPath: 0))
        change = try model.injectPathFault(Fixtures.chp("0.43"), .permanentError)
        #expect(change.losses.lastPathLost.count == 42 && change.losses.redundancyLost.isEmpty)
        #expect(model.redundancy(of: Fixtures.chp("0.43")) == .init(singlePath: 0, redundancyLost: 0, withoutPath: 42))
        #expect(model.redundancy(of: Fixtures.chp("0.40")) == .init(singlePath: 0, redundancyLost: 0, withoutPath: 42))
        #expect(model.redundancy(cssid: 0) == .init(singlePath: 5, redundancyLost: 2, withoutPath: 42))
        // Coming back loses nothing.
        change = try model.injectPathFault(Fixtures.chp("0.43"), .recovered)
        #expect(change.losses.isEmpty)
        #expect(model.redundancy(of: Fixtures.chp("0.43")) == .init(singlePath: 42, redundancyLost: 42, withoutPath: 0))
        #expect(model.maintainedRedundancy() == model.recountRedundancy())
    }

    @Test func aDeviceThatIsGoneIsNotInUse() throws {
        var model = try Subsystem(topology: .embeddedDefault)
        let osa = try SubchannelID(parsing: "0.0.0000")
        try model.setObservedDevice(osa, present: false)
        #expect(model.redundancy(of: Fixtures.chp("0.60"))?.singlePath == 2)
        let change = try model.configurePath(Fixtures.chp("0.60"), to: .standby)
        #expect(
            change.losses.lastPathLost.map { change.affected[Int($0)].id }
                == (1...2).map { try! SubchannelID(parsing: "0.0.000\($0)") })
        #expect(model.redundancy(cssid: 0).withoutPath == 2)
    }

    /// An observation that finds a device lost two of its three paths at once tells it once,
    /// under the lowest slot it lost, and the partial comparison agrees with the full one.
    @Test func anObservationTellsALossOnceUnderTheFirstPathLost() throws {
        let old = Fixtures.small()
        var new = old
        let device = try SubchannelID(parsing: "0.0.0001")  // 0.41, 0.42, 0.40 in slots 0-2
        try new.setObservedMasks(device, pam: 0x20, pom: 0xff, lpm: 0xe0)
        let full = old.pathChanges(to: new)
        let partial = old.pathChanges(to: new, subchannels: [device], paths: [])
        #expect(full == partial)
        #expect(full.map(\.chpid) == [Fixtures.chp("0.41"), Fixtures.chp("0.42")])
        #expect(full[0].losses == .init(redundancyLost: [0]))
        #expect(full[1].losses.isEmpty)
    }
}
