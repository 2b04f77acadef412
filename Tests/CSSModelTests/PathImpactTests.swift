// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Testing

@testable import CSSModel

/// The what-if of losing paths (`Subsystem+Impact.swift`), on the embedded topology, on
/// generated ones with one, two and eight paths per device, and against a reference: the same
/// operation really applied to a copy of the model.
@Suite struct PathImpactTests {
    static func chp(_ text: String) -> ChannelPathID { Fixtures.chp(text) }
    static func devnos(_ devices: [ImpactedDevice]) -> [UInt16] { devices.map(\.device.devno) }

    @Test func embeddedOSAChpidTakesItsTripleDown() throws {
        let model = try Subsystem(topology: .embeddedDefault)
        let impact = try model.impactOfRemoving(chpids: [Self.chp("0.60")])
        #expect(Self.devnos(impact.lostLastPath) == [0x0600, 0x0601, 0x0602])
        #expect(impact.lostLastPath.allSatisfy { $0.inUse && $0.before == 0x80 && $0.after == 0 })
        #expect(impact.lostLastPath.first?.devType == 0x1732 && impact.lostLastPath.first?.cuType == 0x1731)
        #expect(impact.droppedToOnePath.isEmpty)
        #expect(impact.severity == .high)
    }

    @Test func embeddedFourPathDASDs() throws {
        let model = try Subsystem(topology: .embeddedDefault)
        // One of four paths: nobody loses redundancy, but in-use devices lose a path (high).
        let one = try model.impactOfRemoving(chpids: [Self.chp("0.40")])
        #expect(one.lostLastPath.isEmpty && one.droppedToOnePath.isEmpty)
        #expect(one.devicesLosingAPath == 42 && one.severity == .high)
        // Three of four: all 42 drop to one path.
        let three = try model.impactOfRemoving(chpids: [Self.chp("0.40"), Self.chp("0.41"), Self.chp("0.42")])
        #expect(three.droppedToOnePath.count == 42 && three.lostLastPath.isEmpty)
        #expect(three.droppedToOnePath.allSatisfy { $0.after == 0x10 })
        // All four, a chpid named twice counting once: all 42 lose their last path.
        let four = try model.impactOfRemoving(
            chpids: ["0.40", "0.41", "0.42", "0.43", "0.40"].map(Self.chp))
        #expect(Self.devnos(four.lostLastPath) == Array(0x1000...0x1029))
        #expect(four.droppedToOnePath.isEmpty)
    }

    @Test func standbyPathTakesNothingMore() throws {
        let model = try Subsystem(topology: .embeddedDefault)
        // 0.4d is in standby: 3000-3001 already run on 0.4c alone.
        let standby = try model.impactOfRemoving(chpids: [Self.chp("0.4d")])
        #expect(standby.devicesLosingAPath == 0 && standby.severity == .unaffected)
        let last = try model.impactOfRemoving(chpids: [Self.chp("0.4c")])
        #expect(Self.devnos(last.lostLastPath) == [0x3000, 0x3001])
        // A path used by no device.
        #expect(try model.impactOfRemoving(chpids: [Self.chp("0.4e")]).severity == .unaffected)
    }

    @Test func unknownIdsAreTheModelsErrors() throws {
        let model = try Subsystem(topology: .embeddedDefault)
        #expect(throws: ModelError.unknownChannelPath(Self.chp("0.99"))) {
            try model.impactOfRemoving(chpids: [Self.chp("0.40"), Self.chp("0.99")])
        }
        #expect(throws: ModelError.unknownSubchannel(Fixtures.sch("0.0.ffff"))) {
            try model.impactOfRemoving(chpids: [Self.chp("0.40")], from: [Fixtures.sch("0.0.ffff")])
        }
        #expect(throws: ModelError.unknownChannelPath(Self.chp("0.99"))) {
            try model.impactOfRemoving(chpids: [Self.chp("0.99")], from: [Fixtures.sch("0.0.ffff")])
        }
        #expect(throws: ModelError.unknownSubchannel(Fixtures.sch("0.0.ffff"))) {
            try model.impactOfSettingLPM(Fixtures.sch("0.0.ffff"), to: 0)
        }
    }

    @Test func perSubchannelVaryAndLPM() throws {
        let model = try Subsystem(topology: .embeddedDefault)
        let dasd = model.subchannel(device: DeviceID(cssid: 0, ssid: 0, devno: 0x3000))!.id
        let impact = try model.impactOfRemoving(chpids: [Self.chp("0.4c")], from: [dasd])
        #expect(Self.devnos(impact.lostLastPath) == [0x3000])
        // A chpid the subchannel does not have takes nothing from it.
        #expect(try model.impactOfRemoving(chpids: [Self.chp("0.40")], from: [dasd]).devicesLosingAPath == 0)
        // LPM: clearing the only operational bit loses the device; clearing the standby one does not.
        #expect(Self.devnos(try model.impactOfSettingLPM(dasd, to: 0x40).lostLastPath) == [0x3000])
        #expect(try model.impactOfSettingLPM(dasd, to: 0x80).devicesLosingAPath == 0)
        #expect(try model.impactOfSettingLPM(dasd, to: 0xff).devicesLosingAPath == 0)
    }

    /// An MSCH that moves a device from one available path to another takes no last path
    /// (the interlock refused it: only the cleared bits were counted).
    @Test func lpmSwapToAnotherAvailablePathLosesNothing() throws {
        var model = try Subsystem(topology: .embeddedDefault)
        let dasd = model.subchannel(device: DeviceID(cssid: 0, ssid: 0, devno: 0x3000))!.id
        _ = try model.configurePath(Self.chp("0.4d"), to: .configured)  // slot 1 (0x40) available too
        var schib = model.subchannel(dasd)!.schib
        schib.pmcw.lpm = 0x40  // running on 0.4d alone
        try model.modifySubchannel(dasd, schib: schib)
        #expect(model.subchannel(dasd)!.operationalPaths.mask == 0x40)
        let swap = try model.impactOfSettingLPM(dasd, to: 0x80)
        #expect(swap.lostLastPath.isEmpty && swap.droppedToOnePath.isEmpty)
        #expect(swap.devicesLosingAPath == 1)  // 0.4d goes, 0.4c comes
        // Swapping to a path in standby still loses the device.
        _ = try model.configurePath(Self.chp("0.4c"), to: .standby)
        #expect(Self.devnos(try model.impactOfSettingLPM(dasd, to: 0x80).lostLastPath) == [0x3000])
        // Widening keeps both; narrowing from two to one drops to one path.
        _ = try model.configurePath(Self.chp("0.4c"), to: .configured)
        #expect(try model.impactOfSettingLPM(dasd, to: 0xc0).devicesLosingAPath == 0)
        schib = model.subchannel(dasd)!.schib
        schib.pmcw.lpm = 0xc0
        try model.modifySubchannel(dasd, schib: schib)
        #expect(Self.devnos(try model.impactOfSettingLPM(dasd, to: 0x80).droppedToOnePath) == [0x3000])
    }

    @Test func devicesNotInUseRateLow() throws {
        var topology = Topology.embeddedDefault
        for index in topology.subchannels.indices where topology.subchannels[index].devno == 0x0601 {
            topology.subchannels[index].online = false
        }
        let model = try Subsystem(topology: topology)
        let impact = try model.impactOfRemoving(chpids: [Self.chp("0.60")])
        #expect(impact.inUseLostLastPathCount == 2 && impact.lostLastPath.count == 3)
        #expect(impact.lostLastPath[1].inUse == false)
        topology.subchannels = topology.subchannels.map {
            var s = $0
            s.online = false
            return s
        }
        #expect(try Subsystem(topology: topology).impactOfRemoving(chpids: [Self.chp("0.60")]).severity == .low)
    }

    /// A limited listing builds only the first devices of each list but counts every one, and
    /// collects every marked subchannel by id (the query's guests) whatever the limit.
    @Test func limitedListingCountsAllAndCollectsMarked() throws {
        let model = try Subsystem(topology: .embeddedDefault)
        let all = try model.impactOfRemoving(chpids: [Self.chp("0.40"), Self.chp("0.41"), Self.chp("0.42")])
        let marked = all.droppedToOnePath.last!.subchannel
        let two = try model.impactOfRemoving(
            chpids: [Self.chp("0.40"), Self.chp("0.41"), Self.chp("0.42")],
            listing: ImpactListing(limit: 2) { $0 == marked })
        #expect(two.droppedToOnePath == Array(all.droppedToOnePath.prefix(2)))
        #expect(two.droppedToOnePathCount == 42 && two.truncated && !all.truncated)
        #expect(two.markedDroppedToOnePath == [marked] && two.markedLostLastPath.isEmpty)
        #expect(two.devicesLosingAPath == all.devicesLosingAPath && two.severity == all.severity)
        let none = try model.impactOfRemoving(chpids: [Self.chp("0.60")], listing: ImpactListing(limit: 0))
        #expect(none.lostLastPath.isEmpty && none.lostLastPathCount == 3 && none.inUseLostLastPathCount == 3)
    }

    @Test func embeddedCurrentRedundancy() throws {
        var model = try Subsystem(topology: .embeddedDefault)
        let report = model.currentRedundancy()
        // OSA triple on 0.60, 3000-3001 on 0.4c (0.4d standby), four virtio devices on fe.00.
        #expect(Self.devnos(report.singlePath) == [0x0600, 0x0601, 0x0602, 0x3000, 0x3001, 0, 1, 2, 3])
        #expect(report.criticalPaths.map(\.chpid) == ["0.4c", "0.60", "fe.00"].map(Self.chp))
        #expect(report.criticalPaths.map(\.devices.count) == [2, 3, 4])
        #expect(report.withoutPath.isEmpty)
        try model.varyPath(Self.chp("0.4c"), to: .offline)
        let after = model.currentRedundancy()
        #expect(Self.devnos(after.withoutPath) == [0x3000, 0x3001])
        #expect(after.criticalPaths.map(\.chpid) == ["0.60", "fe.00"].map(Self.chp))
    }

    /// Generated machines: every device on 1, 2 or 8 of 8 chpids.
    @Test(arguments: [1, 2, 8])
    func generated(paths: Int) throws {
        let model = try Subsystem(topology: .synthetic(subchannels: 4096, chpids: 8, paths: paths))
        let one = try model.impactOfRemoving(chpids: [Self.chp("0.00")])
        let members = 4096 * paths / 8
        #expect(one.devicesLosingAPath == members)
        #expect(one.lostLastPath.count == (paths == 1 ? members : 0))
        #expect(one.droppedToOnePath.count == (paths == 2 ? members : 0))
        let all = try model.impactOfRemoving(chpids: (0..<8).map { ChannelPathID(cssid: 0, chpid: UInt8($0)) })
        #expect(all.lostLastPath.count == 4096)
        let seven = try model.impactOfRemoving(chpids: (0..<7).map { ChannelPathID(cssid: 0, chpid: UInt8($0)) })
        // Device i has chpids (i*paths + j) mod 8: with 0-6 gone, only those with 7 keep a path.
        let expected = [1: (lost: 3584, dropped: 0), 2: (lost: 3072, dropped: 1024), 8: (lost: 0, dropped: 4096)]
        #expect(seven.lostLastPath.count == expected[paths]!.lost)
        #expect(seven.droppedToOnePath.count == expected[paths]!.dropped)
        let report = model.currentRedundancy()
        #expect(report.singlePath.count == (paths == 1 ? 4096 : 0))
        #expect(report.criticalPaths.count == (paths == 1 ? 8 : 0))
    }

    /// Against the reference: vary the chpids off (or configure them to standby) in a copy and
    /// compare every device's operational mask before and after.
    @Test(arguments: 0..<30)
    func matchesTheOperationReallyApplied(seed: Int) throws {
        var rng = SplitMix64(seed: UInt64(seed) &* 0x2545_f491 &+ 11)
        var model = PropertyTests.randomModel(seed: UInt64(seed), mcss: false)
        let chpids = model.channelPaths.map(\.id)
        // Some history first, so that masks differ.
        for _ in 0..<5 {
            try model.injectPathFault(chpids.randomElement(using: &rng)!, .temporaryError)
            try model.configurePath(chpids.randomElement(using: &rng)!, to: .standby)
        }
        for _ in 0..<10 {
            let chosen = (0..<Int.random(in: 1...6, using: &rng)).map { _ in chpids.randomElement(using: &rng)! }
            let impact = try model.impactOfRemoving(chpids: chosen)
            for action in 0..<2 {
                var copy = model
                for chpid in chosen {
                    if action == 0 {
                        try copy.varyPath(chpid, to: .offline)
                    } else if copy.channelPath(chpid)!.configure == .configured {
                        try copy.configurePath(chpid, to: .standby)
                    } else {
                        try copy.varyPath(chpid, to: .offline)  // already out of PAM: the LPM bit it is
                    }
                }
                expect(impact, reference: model, after: copy, seed: seed)
            }
            // The per-subchannel form against the per-subchannel vary.
            let some = model.subchannels.map(\.id).filter { _ in Bool.random(using: &rng) }
            let perSubchannel = try model.impactOfRemoving(chpids: chosen, from: some)
            var copy = model
            for id in some {
                for chpid in chosen where copy.subchannel(id)!.slot(of: chpid) != nil {
                    try copy.varyPath(chpid, to: .offline, subchannel: id)
                }
            }
            expect(perSubchannel, reference: model, after: copy, seed: seed)
        }
    }

    private func expect(_ impact: PathImpact, reference before: Subsystem, after: Subsystem, seed: Int) {
        var lost: [SubchannelID] = []
        var dropped: [SubchannelID] = []
        var losing = 0
        for (old, new) in zip(before.subchannels, after.subchannels) where old.operationalPaths.isDevice {
            let a = old.operationalPaths.mask
            let b = new.operationalPaths.mask
            guard a != b else { continue }
            losing += 1
            if b == 0 { lost.append(old.id) } else if b.nonzeroBitCount == 1 { dropped.append(old.id) }
        }
        #expect(impact.lostLastPath.map(\.subchannel) == lost, "seed \(seed)")
        #expect(impact.droppedToOnePath.map(\.subchannel) == dropped, "seed \(seed)")
        #expect(impact.devicesLosingAPath == losing, "seed \(seed)")
        for device in impact.lostLastPath + impact.droppedToOnePath {
            #expect(after.subchannel(device.subchannel)!.operationalPaths.mask == device.after)
        }
    }
}
