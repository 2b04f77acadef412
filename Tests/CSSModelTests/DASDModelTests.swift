// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Testing

@testable import CSSModel

/// The model's DASD drivers (Subsystem+DASD.swift): which devices are DASDs, opm derived from
/// cio's masks less the driver's own, IFCC errors counted against `path_threshold` within
/// `path_interval` on the model clock, miscabling, CUIR quiesce and resume, `path_reset`, and
/// the state's round trip through `runtimeState`.
@Suite struct DASDModelTests {
    static func dev(_ text: String) -> DeviceID { try! DeviceID(parsing: text) }
    static let second: Int64 = 1_000_000

    /// The embedded machine: 0.0.2000 has the eight paths 0.44-0.4b; 0.0.3000 has 0.4c and
    /// 0.4d, which is in standby (one operational path).
    static func model() throws -> Subsystem { try Subsystem(topology: .embeddedDefault) }

    @Test func dasdsAreTheECKDAndFBADevicesAndOpmFollowsCio() throws {
        var model = try Self.model()
        let health = model.dasdPathHealth
        // 42 + 8 + 2 3390s on 3990s; neither the OSA triple nor the virtio devices.
        #expect(health.count == 52)
        #expect(health.values.allSatisfy { $0.driver == "dasd-eckd" })
        let sch = model.subchannel(device: Self.dev("0.0.3000"))!
        #expect(health[sch.id]?.masks?.opm == 0x80)  // 0.4d is in standby
        try model.varyPath(Fixtures.chp("0.4c"), to: .offline)
        #expect(model.dasdPathHealth(of: model.subchannel(sch.id)!)?.masks?.opm == 0)
        #expect(model.dasdPathHealth(of: model.subchannel(device: Self.dev("0.0.0600"))!) == nil)
    }

    @Test func ifccErrorsDisableAPathAtTheThresholdWithinTheInterval() throws {
        var model = try Self.model()
        let device = Self.dev("0.0.2000")
        let chpid = Fixtures.chp("0.45")  // slot 1
        var result = try model.injectDASDPathFault(device: device, chpid: chpid, fault: .ifcc, count: 255, at: 0)
        #expect(result.errorCount == 255 && result.disabled.isEmpty && result.after.masks?.ifccpm == 0)
        // A gap longer than path_interval (300 s) restarts the count.
        result = try model.injectDASDPathFault(
            device: device, chpid: chpid, fault: .ifcc, at: 300 * Self.second + 1)
        #expect(result.errorCount == 1 && result.disabled.isEmpty)
        result = try model.injectDASDPathFault(
            device: device, chpid: chpid, fault: .ifcc, count: 254, at: 600 * Self.second)
        #expect(result.errorCount == 255 && result.disabled.isEmpty)
        // The 256th error within the interval: disabled, the count restarts.
        result = try model.injectDASDPathFault(device: device, chpid: chpid, fault: .ifcc, at: 601 * Self.second)
        #expect(
            result.disabled == [DASDPathDisabling(chpid: chpid, subchannel: result.subchannel, reason: .ifccThreshold)])
        #expect(result.after.masks == DASDPathMasks(opm: 0xbf, nppm: 0, cablepm: 0, cuirpm: 0, hpfpm: 0, ifccpm: 0x40))
        #expect(result.errorCount == 0 && !result.keptInUse)
        // cio's masks did not move: the path stays operational to the channel subsystem.
        #expect(model.subchannel(device: device)!.operationalPaths.mask == 0xff)
    }

    @Test func theDriverKeepsTheLastPathAndAutodisableOff() throws {
        var model = try Self.model()
        let device = Self.dev("0.0.3000")  // only 0.4c operational
        var result = try model.injectDASDPathFault(
            device: device, chpid: Fixtures.chp("0.4c"), fault: .ifcc, count: 256, at: 0)
        #expect(result.keptInUse && result.disabled.isEmpty && result.after.masks?.opm == 0x80)
        #expect(result.errorCount == 0)
        result = try model.injectDASDPathFault(device: device, chpid: Fixtures.chp("0.4c"), fault: .cuirQuiesce, at: 0)
        #expect(result.keptInUse && result.after.masks?.cuirpm == 0)
        // Miscabling is found whatever the other paths do.
        result = try model.injectDASDPathFault(device: device, chpid: Fixtures.chp("0.4c"), fault: .miscabled, at: 0)
        #expect(result.after.masks?.opm == 0 && result.after.masks?.cablepm == 0x80)
        #expect(result.disabled.map(\.reason) == [.miscabled])
    }

    @Test func cuirQuiesceAndResumeAndPathReset() throws {
        var model = try Self.model()
        let device = Self.dev("0.0.2000")
        var result = try model.injectDASDPathFault(
            device: device, chpid: Fixtures.chp("0.4b"), fault: .cuirQuiesce, at: 0)
        #expect(result.after.masks?.cuirpm == 0x01 && result.after.masks?.opm == 0xfe)
        #expect(result.disabled.map(\.reason) == [.cuirQuiesced])
        result = try model.injectDASDPathFault(device: device, chpid: Fixtures.chp("0.4b"), fault: .cuirResume, at: 0)
        #expect(result.after.masks?.cuirpm == 0 && result.after.masks?.opm == 0xff && result.disabled.isEmpty)
        _ = try model.injectDASDPathFault(device: device, chpid: Fixtures.chp("0.44"), fault: .miscabled, at: 0)
        _ = try model.injectDASDPathFault(device: device, chpid: Fixtures.chp("0.45"), fault: .ifcc, count: 10, at: 0)
        let reset = try model.resetDASDPaths(device: device, chpids: nil)
        #expect(reset.before.masks?.opm == 0x7f && reset.after.masks?.opm == 0xff)
        // Only the disabled paths were reset: 0.45's count stays until its own reset.
        #expect(model.dasdDriverState(of: reset.subchannel).errorCounts[1] == 10)
        _ = try model.resetDASDPaths(device: device, chpids: [Fixtures.chp("0.45")])
        #expect(model.dasdDriverState(of: reset.subchannel) == DASDDriverState())  // sparse again
        #expect(throws: ModelError.noDisabledDASDPath(device)) { try model.resetDASDPaths(device: device, chpids: nil) }
    }

    @Test func badInputIsRefusedAndChangesNothing() throws {
        var model = try Self.model()
        let before = model.runtimeState
        #expect(throws: ModelError.unknownDevice(Self.dev("0.0.9999"))) {
            try model.injectDASDPathFault(
                device: Self.dev("0.0.9999"), chpid: Fixtures.chp("0.40"), fault: .ifcc, at: 0)
        }
        #expect(throws: ModelError.notDASD(Self.dev("0.0.0600"))) {
            try model.injectDASDPathFault(
                device: Self.dev("0.0.0600"), chpid: Fixtures.chp("0.60"), fault: .ifcc, at: 0)
        }
        #expect(throws: ModelError.unknownChannelPath(Fixtures.chp("0.99"))) {
            try model.injectDASDPathFault(
                device: Self.dev("0.0.2000"), chpid: Fixtures.chp("0.99"), fault: .ifcc, at: 0)
        }
        let sch = model.subchannel(device: Self.dev("0.0.2000"))!.id
        #expect(throws: ModelError.pathNotInstalled(Fixtures.chp("0.40"), sch)) {
            try model.resetDASDPaths(device: Self.dev("0.0.2000"), chpids: [Fixtures.chp("0.40")])
        }
        #expect(model.runtimeState == before)
    }

    @Test func theRollUpPerChpidIsTheDevicesRolledUp() throws {
        var model = try Self.model()
        #expect(model.dasdChannelPathSummaries == DASDChannelPathSummary.rollUp(model.dasdPathHealth.values))
        _ = try model.injectDASDPathFault(
            device: Self.dev("0.0.2000"), chpid: Fixtures.chp("0.45"), fault: .ifcc, count: 256, at: 0)
        _ = try model.injectDASDPathFault(
            device: Self.dev("0.0.2001"), chpid: Fixtures.chp("0.46"), fault: .miscabled, at: 0)
        _ = try model.injectDASDPathFault(
            device: Self.dev("0.0.1000"), chpid: Fixtures.chp("0.40"), fault: .cuirQuiesce, at: 0)
        try model.varyPath(Fixtures.chp("0.41"), to: .offline)
        #expect(model.dasdChannelPathSummaries == DASDChannelPathSummary.rollUp(model.dasdPathHealth.values))
        #expect(model.dasdChannelPathSummaries[Fixtures.chp("0.41")]?.inUse == 0)
        #expect(model.dasdChannelPathSummaries[Fixtures.chp("0.45")]?.ifccDisabled == 1)
    }

    @Test func driverStateSurvivesTheRuntimeStateRoundTrip() throws {
        var model = try Self.model()
        let device = Self.dev("0.0.2000")
        _ = try model.injectDASDPathFault(device: device, chpid: Fixtures.chp("0.46"), fault: .ifcc, count: 7, at: 42)
        _ = try model.injectDASDPathFault(device: device, chpid: Fixtures.chp("0.47"), fault: .miscabled, at: 0)
        var restored = try Self.model()
        try restored.restoreRuntimeState(model.runtimeState)
        #expect(restored.dasdPathHealth == model.dasdPathHealth)
        let id = model.subchannel(device: device)!.id
        #expect(restored.dasdDriverState(of: id) == model.dasdDriverState(of: id))
        #expect(restored.dasdDriverState(of: id).errorCounts[2] == 7)
        #expect(restored.dasdDriverState(of: id).lastErrorAt[2] == 42)
    }
}
