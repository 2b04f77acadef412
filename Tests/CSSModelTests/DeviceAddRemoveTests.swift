// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Testing

@testable import CSSModel

/// Issue 26: a device added to or removed from the running model. The reference for every
/// index and count is the model built from scratch from the topology with that device in (or
/// out): after any sequence of additions and removals the two must agree.
@Suite struct DeviceAddRemoveTests {
    typealias F = Fixtures

    /// `Fixtures.small`'s topology (css 0, chpids 0.40-0.43 and 0.60 in standby, 0.43 varied
    /// offline), so that a model can be built again with devices added or removed.
    static func topology(_ subchannels: [Topology.Subchannel], multipleCSS: Bool = false) -> Topology {
        var css: [Topology.ChannelSubsystem] = [.init(cssid: 0)]
        if multipleCSS { css.append(.init(cssid: 1)) }
        return Topology(
            channelSubsystems: css,
            channelPaths: [
                .init(id: F.chp("0.40"), type: 0x1a, shared: true, pchid: 0x100),
                .init(id: F.chp("0.41"), type: 0x1a, shared: true, pchid: 0x101),
                .init(id: F.chp("0.42"), type: 0x1a, shared: true),
                .init(id: F.chp("0.43"), type: 0x1a, vary: .offline),
                .init(id: F.chp("0.60"), type: 0x11, configure: .standby),
            ],
            subchannels: subchannels, multipleCSSEnabled: multipleCSS)
    }

    static func dasd(_ id: String, _ devno: Int, _ chpids: [String], online: Bool = true) -> Topology.Subchannel {
        .init(
            id: F.sch(id), devno: devno, devType: 0x3390, devModel: 0x0c, cuType: 0x3990, cuModel: 0xe9,
            chpids: chpids.map(F.chp), enabled: true, isc: 3, online: online)
    }

    static let initial = [
        dasd("0.0.0000", 0x1000, ["0.40", "0.41"]),
        dasd("0.0.0001", 0x1001, ["0.41", "0.42", "0.40"]),
        dasd("0.0.0002", 0x1002, ["0.42"]),
        dasd("0.0.0003", 0x1003, ["0.40", "0.60", "0.43"]),
        dasd("0.1.0000", 0x1000, ["0.41"]),
    ]

    /// Every index and count of `model` is what building it from `subchannels` gives.
    static func expectBuiltFrom(_ model: Subsystem, _ subchannels: [Topology.Subchannel]) throws {
        let built = try Subsystem(topology: topology(subchannels, multipleCSS: model.multipleCSSEnabled))
        #expect(model.records == built.records)
        #expect(model.recordIndex == built.recordIndex)
        #expect(model.deviceIndex == built.deviceIndex)
        #expect(model.members == built.members)
        #expect(model.paths == built.paths)
        for cssid in built.cssids {
            #expect(
                model.subchannelsWithoutOperationalPath(cssid: cssid)
                    == built.recountSubchannelsWithoutOperationalPath(cssid: cssid))
            #expect(model.summary(cssid: cssid).subchannels == built.summary(cssid: cssid).subchannels)
        }
        let maintained = model.maintainedRedundancy()
        let recounted = built.recountRedundancy()
        #expect(maintained.paths == recounted.paths)
        #expect(maintained.css == recounted.css)
    }

    @Test func anAddedDeviceAppearsWithItsPathsAndASubchannelReport() throws {
        var model = try Subsystem(topology: Self.topology(Self.initial))
        _ = F.drain(&model)
        // 0.41 usable, 0.60 in standby (not in PAM), 0.43 varied offline (not in LPM).
        let added = Self.dasd("0.0.0005", 0x1005, ["0.41", "0.60", "0.43"])
        let change = try model.addDevice(added)
        #expect(change.kind == .added)
        #expect(change.device == (try DeviceID(parsing: "0.0.1005")))
        let pmcw = try #require(model.storeSubchannel(F.sch("0.0.0005")).schib).pmcw
        #expect(pmcw.pim == 0xe0)
        #expect(pmcw.pam == 0xa0)
        #expect(pmcw.lpm == 0xc0)
        #expect(pmcw.pom == 0xff && pmcw.pnom == 0)
        #expect(pmcw.deviceNumberValid && pmcw.devno == 0x1005)
        #expect(model.subchannel(device: try DeviceID(parsing: "0.0.1005"))?.id == F.sch("0.0.0005"))
        // RSC 3 (subchannel), ERC 2 (installed parameters initialized), rsid = schno.
        #expect(change.crws.map(\.rawValue) == [0x0302_0005])
        #expect(F.drain(&model) == [0x0302_0005])
        // One change per installed chpid, the report on the first, the path's count up by one.
        #expect(change.pathChanges.map(\.chpid) == ["0.41", "0.60", "0.43"].map(F.chp))
        #expect(change.pathChanges.map(\.crws.count) == [1, 0, 0])
        #expect(change.pathChanges[0].after.subchannelCount == change.pathChanges[0].before.subchannelCount + 1)
        #expect(change.pathChanges.allSatisfy { $0.affected.map(\.id) == [F.sch("0.0.0005")] })
        #expect(
            model.subchannels(using: F.chp("0.41")).map(\.id)
                == ["0.0.0000", "0.0.0001", "0.0.0005", "0.1.0000"].map(F.sch))
        try Self.expectBuiltFrom(model, Self.initial + [added])
    }

    @Test func aDeviceAddedBetweenOthersKeepsTheirIdsAndTheOrder() throws {
        var model = try Subsystem(topology: Self.topology(Self.initial))
        let added = Self.dasd("0.0.0010", 0x2000, ["0.40", "0.42"])
        try model.addDevice(added)
        #expect(
            model.subchannels.map(\.id)
                == ["0.0.0000", "0.0.0001", "0.0.0002", "0.0.0003", "0.0.0010", "0.1.0000"].map(F.sch))
        #expect(model.subchannel(device: try DeviceID(parsing: "0.1.1000"))?.id == F.sch("0.1.0000"))
        #expect(model.subchannels(using: F.chp("0.41")).map(\.id) == ["0.0.0000", "0.0.0001", "0.1.0000"].map(F.sch))
        try Self.expectBuiltFrom(model, Self.initial + [added])
        // A fault on a shared chpid reaches the new device like the others.
        let fault = try model.injectPathFault(F.chp("0.40"), .permanentError)
        #expect(fault.affected.map(\.id) == ["0.0.0000", "0.0.0001", "0.0.0003", "0.0.0010"].map(F.sch))
    }

    @Test func aRemovedDeviceGoesWithASubchannelReport() throws {
        var model = try Subsystem(topology: Self.topology(Self.initial))
        _ = F.drain(&model)
        let change = try model.removeDevice(try DeviceID(parsing: "0.0.1001"))
        #expect(change.kind == .removed)
        #expect(change.subchannel.id == F.sch("0.0.0001"))
        // STSCH: cc 3, the subchannel is gone (Linux then unregisters it).
        #expect(model.storeSubchannel(F.sch("0.0.0001")).cc == 3)
        #expect(model.subchannel(device: try DeviceID(parsing: "0.0.1001")) == nil)
        #expect(F.drain(&model) == [0x0302_0001])
        #expect(change.pathChanges.map(\.chpid) == ["0.41", "0.42", "0.40"].map(F.chp))
        #expect(model.subchannels.map(\.id) == ["0.0.0000", "0.0.0002", "0.0.0003", "0.1.0000"].map(F.sch))
        #expect(model.subchannels(using: F.chp("0.40")).map(\.id) == ["0.0.0000", "0.0.0003"].map(F.sch))
        try Self.expectBuiltFrom(model, Self.initial.filter { $0.id != F.sch("0.0.0001") })
        // A device removed and added again, on the same subchannel, is as built.
        try model.addDevice(Self.initial[1])
        try Self.expectBuiltFrom(model, Self.initial)
    }

    @Test func aRemovedDeviceTakesItsDASDDriverStateAndCountsWithIt() throws {
        var model = try Subsystem(topology: Self.topology(Self.initial))
        let device = try DeviceID(parsing: "0.0.1002")
        _ = try model.injectDASDPathFault(device: device, chpid: F.chp("0.42"), fault: .miscabled, at: 0)
        #expect(model.dasdDrivers[F.sch("0.0.0002").rawValue] != nil)
        // 0.0.0002 runs on its one path: it counts as a single-path device on 0.42.
        #expect(model.redundancy(of: F.chp("0.42"))?.singlePath == 1)
        try model.removeDevice(device)
        #expect(model.dasdDrivers.isEmpty)
        #expect(model.redundancy(of: F.chp("0.42"))?.singlePath == 0)
        // Added again, it starts with the driver's defaults.
        try model.addDevice(Self.initial[2])
        #expect(model.dasdDriverState(of: F.sch("0.0.0002")) == DASDDriverState())
    }

    @Test func underMultipleCSSOrInASubchannelSetThe2ndWordCarriesTheIds() throws {
        var model = try Subsystem(topology: Self.topology(Self.initial, multipleCSS: true))
        _ = F.drain(&model)
        try model.addDevice(Self.dasd("0.0.0005", 0x1005, ["0.40"]))
        // Chained (C), then rsid = cssid << 8 | ssid << 4.
        #expect(F.drain(&model) == [0x1302_0005, 0x0302_0000])

        var single = try Subsystem(topology: Self.topology(Self.initial))
        _ = F.drain(&single)
        try single.removeDevice(try DeviceID(parsing: "0.1.1000"))
        #expect(F.drain(&single) == [0x1302_0000, 0x0302_0010])
    }

    @Test func whatCannotBeAddedOrRemovedIsRefusedAndChangesNothing() throws {
        let original = try Subsystem(topology: Self.topology(Self.initial))
        var model = original
        #expect(throws: ModelError.subchannelInUse(F.sch("0.0.0001"))) {
            try model.addDevice(Self.dasd("0.0.0001", 0x2001, ["0.40"]))
        }
        #expect(throws: ModelError.deviceExists(try! DeviceID(parsing: "0.0.1001"))) {
            try model.addDevice(Self.dasd("0.0.0009", 0x1001, ["0.40"]))
        }
        #expect(throws: ModelError.unknownChannelPath(F.chp("0.7f"))) {
            try model.addDevice(Self.dasd("0.0.0009", 0x2009, ["0.40", "0.7f"]))
        }
        #expect(throws: ModelError.unknownDevice(try! DeviceID(parsing: "0.0.4711"))) {
            try model.removeDevice(try! DeviceID(parsing: "0.0.4711"))
        }
        let invalid: [(Topology.Subchannel, String)] = [
            (Self.dasd("0.0.0009", 0x2009, []), "needs at least one channel path"),
            (Self.dasd("0.0.0009", 0x2009, ["0.40", "0.40"]), "listed twice"),
            (Self.dasd("0.0.0009", 0x2009, ["1.40"]), "not in channel subsystem"),
            (Self.dasd("1.0.0009", 0x2009, ["1.40"]), "channel subsystem 1 is not in the model"),
            (Self.dasd("0.0.0009", 0x12345, ["0.40"]), "devno 74565 is out of range"),
            (
                Topology.Subchannel(
                    id: F.sch("0.0.0009"), devno: nil, devType: 0, devModel: 0, cuType: 0, cuModel: 0,
                    chpids: [F.chp("0.40")]), "needs a device number"
            ),
        ]
        for (description, reason) in invalid {
            do {
                try model.addDevice(description)
                Issue.record("\(description) was added")
            } catch {
                guard case .invalidDevice(_, let text) = error else {
                    Issue.record("\(error)")
                    continue
                }
                #expect(text.contains(reason), "\(text)")
            }
        }
        #expect(model.records == original.records)
        #expect(model.members == original.members)
        #expect(model.crwQueue == original.crwQueue)
    }

    /// Random additions and removals (and faults between them), each checked against the
    /// model built from the topology they leave.
    @Test func randomAdditionsAndRemovalsKeepEveryIndex() throws {
        var random = SplitMix64(seed: 26)
        var described = Self.initial
        var model = try Subsystem(topology: Self.topology(described))
        let chpids = ["0.40", "0.41", "0.42", "0.43", "0.60"].map(F.chp)
        for round in 0..<200 {
            if !described.isEmpty && random.next() % 3 == 0 {
                let index = Int(random.next() % UInt64(described.count))
                let removed = described.remove(at: index)
                let id = DeviceID(cssid: 0, ssid: removed.id.ssid, devno: UInt16(removed.devno!))
                try model.removeDevice(id)
            } else if random.next() % 4 == 0 {
                _ = try model.injectPathFault(chpids[Int(random.next() % 3)], .temporaryError)
                _ = try model.injectPathFault(chpids[Int(random.next() % 3)], .recovered)
                // The fresh build has no faults: recover everything before comparing.
                for chpid in chpids.prefix(3) { _ = try model.injectPathFault(chpid, .recovered) }
            } else {
                let ssid = UInt8(random.next() % 2)
                let schno = UInt16(random.next() % 64)
                let id = SubchannelID(cssid: 0, ssid: ssid, schno: schno)
                let devno = 0x3000 + Int(random.next() % 64)
                guard !described.contains(where: { $0.id == id }),
                    !described.contains(where: { $0.id.ssid == ssid && $0.devno == devno })
                else { continue }
                var paths = chpids.shuffled(using: &random)
                paths = Array(paths.prefix(1 + Int(random.next() % 5)))
                let description = Self.dasd(
                    id.description, devno, paths.map(\.description), online: random.next() % 4 != 0)
                try model.addDevice(description)
                described.append(description)
            }
            if round % 10 == 0 { try Self.expectBuiltFrom(model, described) }
        }
        try Self.expectBuiltFrom(model, described)
    }

    /// The runtime state (version 3) carries the devices added and removed: restored on a model
    /// built from the topology file, it has them (a state dir does not refuse to start).
    @Test func theRuntimeStateKeepsAddedAndRemovedDevices() throws {
        var model = try Subsystem(topology: Self.topology(Self.initial))
        let added = Self.dasd("0.0.0010", 0x2000, ["0.40", "0.42"], online: false)
        try model.addDevice(added)
        try model.removeDevice(try DeviceID(parsing: "0.0.1001"))
        // Removed from the topology and added again with other paths: in both lists.
        try model.removeDevice(try DeviceID(parsing: "0.0.1002"))
        let again = Self.dasd("0.0.0002", 0x1002, ["0.41"])
        try model.addDevice(again)
        _ = try model.injectPathFault(F.chp("0.42"), .temporaryError)
        #expect(model.deviceDelta.removed == [F.sch("0.0.0001").rawValue, F.sch("0.0.0002").rawValue])
        #expect(Set(model.deviceDelta.added.keys) == [F.sch("0.0.0010").rawValue, F.sch("0.0.0002").rawValue])

        var restored = try Subsystem(topology: Self.topology(Self.initial))
        try restored.restoreRuntimeState(model.runtimeState)
        #expect(restored.records == model.records)
        #expect(restored.recordIndex == model.recordIndex)
        #expect(restored.deviceIndex == model.deviceIndex)
        #expect(restored.members == model.members)
        #expect(restored.paths == model.paths)
        #expect(restored.crwQueue == model.crwQueue)
        #expect(restored.deviceDelta == model.deviceDelta)
        #expect(restored.maintainedRedundancy().paths == model.maintainedRedundancy().paths)
        #expect(restored.subchannel(F.sch("0.0.0010"))?.isOnline == false)
        // Built from what is left, the indexes agree (faults recovered first: a fresh build has none).
        _ = try restored.injectPathFault(F.chp("0.42"), .recovered)
        try Self.expectBuiltFrom(restored, [Self.initial[0], again, Self.initial[3], Self.initial[4], added])
    }

    /// A version 2 state (no device list) is still read.
    @Test func aVersion2StateIsStillRead() throws {
        var model = try Subsystem(topology: Self.topology(Self.initial))
        _ = try model.injectPathFault(F.chp("0.41"), .permanentError)
        let current = model.runtimeState
        #expect(current[0] == 3)
        // Version 3 with no devices: the version, two zero counts, then version 2's layout.
        #expect(Array(current[1..<9]) == [0, 0, 0, 0, 0, 0, 0, 0])
        let version2 = [2] + Array(current[9...])
        var restored = try Subsystem(topology: Self.topology(Self.initial))
        try restored.restoreRuntimeState(version2)
        #expect(restored.records == model.records)
        #expect(restored.paths == model.paths)
    }

    /// A state whose device list does not fit the topology is refused, and the model kept.
    @Test func aStateOfAnotherLayoutIsRefused() throws {
        var model = try Subsystem(topology: Self.topology(Self.initial))
        try model.addDevice(Self.dasd("0.0.0010", 0x2000, ["0.40"]))
        // A topology that has subchannel 0.0.0010 already: the addition cannot be replayed.
        let other = Self.initial + [Self.dasd("0.0.0010", 0x2001, ["0.41"])]
        var target = try Subsystem(topology: Self.topology(other))
        let before = target.records
        #expect(throws: StateCodingError.self) { try target.restoreRuntimeState(model.runtimeState) }
        #expect(target.records == before)
    }

    /// At the issue's scale (262,144 subchannels, 256 chpids, 8 paths each) a removal and an
    /// addition near the start, which move almost every record, leave the model as built. The
    /// time of each is printed (measured, not asserted: a loaded machine must not fail it).
    @Test func atScaleARemovalAndAnAdditionNearTheStartKeepEveryIndex() throws {
        let topology = try Topology.synthetic(subchannels: 262_144, chpids: 256, paths: 8)
        let built = try Subsystem(topology: topology)
        var model = built
        let device = DeviceID(cssid: 0, ssid: 0, devno: 5)
        let description = topology.subchannels.first { $0.id == SubchannelID(cssid: 0, ssid: 0, schno: 5) }!
        let clock = ContinuousClock()
        var removals: [Duration] = []
        var additions: [Duration] = []
        for _ in 0..<5 {
            let start = clock.now
            try model.removeDevice(device)
            removals.append(clock.now - start)
            let middle = clock.now
            try model.addDevice(description)
            additions.append(clock.now - middle)
        }
        print("262,144 subchannels: remove-device near the start \(removals), add-device \(additions)")
        #expect(model.records == built.records)
        #expect(model.recordIndex == built.recordIndex)
        #expect(model.deviceIndex == built.deviceIndex)
        #expect(model.members == built.members)
        #expect(model.paths == built.paths)
    }
}
