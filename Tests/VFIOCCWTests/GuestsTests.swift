// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import TestSupport
import Testing

@testable import VFIOCCW

/// Host: chpid 0.00 (a DASD on it: the seed's clash), 0.40 and 0.41 shared by 42 DASDs
/// (0.0.0001-0.0.002a, paths [40 41]).
private func host() -> Subsystem {
    var subchannels: [Topology.Subchannel] = [
        .init(
            id: sch("0.0.0000"), devno: 0x0100, devType: 0x3390, devModel: 0x0c, cuType: 0x3990, cuModel: 0xe9,
            chpids: [chp("0.00")], enabled: true)
    ]
    for n in 1...42 {
        subchannels.append(
            .init(
                id: SubchannelID(cssid: 0, ssid: 0, schno: UInt16(n)), devno: 0x1000 + n, devType: 0x3390,
                devModel: 0x0c, cuType: 0x3990, cuModel: 0xe9, chpids: [chp("0.40"), chp("0.41")], enabled: true))
    }
    let topology = Topology(
        channelSubsystems: [.init(cssid: 0)],
        channelPaths: [
            .init(id: chp("0.00"), type: 0x1a), .init(id: chp("0.40"), type: 0x1a), .init(id: chp("0.41"), type: 0x1a),
        ],
        subchannels: subchannels)
    return try! Subsystem(topology: topology)
}

/// A guest with a virtio device and the 42 DASDs passed through (identity chpids, css fe).
private func guests(_ strategy: PathEventStrategy, host: Subsystem, crwCapacity: Int = 64) throws -> Guests {
    var guests = Guests()
    try guests.addGuest("g1", strategy: strategy, crwCapacity: crwCapacity)
    try guests.addVirtio(to: "g1", cuModel: 1)
    for n in 1...42 {
        try guests.attachPassthrough(to: "g1", host: SubchannelID(cssid: 0, ssid: 0, schno: UInt16(n)), in: host)
    }
    return guests
}

@Suite struct StrategyTests {
    /// One configure-off of a path shared by 42 passthrough devices, under each strategy.
    @Test(arguments: PathEventStrategy.allCases)
    func oneChpidEventFor42Devices(_ strategy: PathEventStrategy) throws {
        var host = host()
        var model = try guests(strategy, host: host)
        let change = try host.configurePath(chp("0.40"), to: .standby)
        let reached = model.hostPathChanged(change, as: .standby)
        #expect(reached.count == 1)
        #expect(reached[0].guestChpid == chp("fe.40") && reached[0].hostChpid == chp("0.40"))
        #expect(reached[0].devices == 42 && reached[0].visible == 42)
        let stats = try model.guest("g1").stats
        switch strategy {
        case .perDevice:
            #expect(stats.notifications == 42 && stats.schibRefreshes == 42 && stats.crwsQueued == 0)
            #expect(reached[0].crw == nil)
        case .crw:
            #expect(stats.notifications == 0 && stats.crwsQueued == 1 && stats.schibRefreshes == 0)
            #expect(reached[0].crw?.rsid == 0x40 && reached[0].crw?.erc == .permanentErrorNotInitialized)
        case .lazy:
            #expect(stats.notifications == 0 && stats.crwsQueued == 0 && stats.schibRefreshes == 0)
        }
        // Every device has an unobserved change; only the CRW tells the guest.
        let devices = try model.guest("g1").devices.values.filter { $0.host != nil }
        #expect(devices.allSatisfy { $0.unobserved == 1 && $0.untold == 1 })
        if strategy == .crw {
            let stored = try model.storeCRW(of: "g1")
            #expect(stored.cc == 0 && stored.crw.rsid == 0x40)
            #expect(
                try model.guest("g1").devices.values.filter { $0.host != nil }.allSatisfy {
                    $0.untold == 0 && $0.unobserved == 1
                })
        }
        // The guest's STSCH shows the path gone (pam without slot 0), under its own chpids.
        let schib = try model.storeSubchannel(of: "g1", sch("fe.0.0001"), host: host).schib!
        #expect(schib.pmcw.pam == 0x40 && schib.pmcw.chpids[0] == 0x40 && schib.pmcw.devno == 0x1001)
        let device = try model.guest("g1").devices[sch("fe.0.0001")]!
        #expect(device.unobserved == 0 && device.untold == 0)
    }

    @Test func aVaryIsNotVisibleToTheGuest() throws {
        var host = host()
        var model = try guests(.perDevice, host: host)
        let change = try host.varyPath(chp("0.41"), to: .offline)
        let reached = model.hostPathChanged(change, as: .offline)
        // The RFC notifies on every SCHIB change; QEMU copies pam/pom/pnom, which a vary leaves.
        #expect(reached[0].devices == 42 && reached[0].visible == 0 && reached[0].notifications == 42)
        #expect(try model.guest("g1").devices.values.allSatisfy { $0.unobserved == 0 })
    }

    @Test func guestCRWQueueOverflowsWithTheRBit() throws {
        var host = host()
        var model = try guests(.crw, host: host, crwCapacity: 2)
        for state in [ConfigureState.standby, .configured, .standby, .configured] {
            _ = model.hostPathChanged(try host.configurePath(chp("0.40"), to: state), as: PathEventChange(state)!)
        }
        let stats = try model.guest("g1").stats
        #expect(stats.crwsQueued == 2 && stats.crwsLost == 2)
        let first = try model.storeCRW(of: "g1")
        #expect(first.cc == 0 && first.crw.overflow)
        #expect(try model.storeCRW(of: "g1").crw.overflow == false)
        #expect(try model.storeCRW(of: "g1").cc == 1)
    }
}

/// What reaches a guest under the crw strategy for each kind of host report, against what a
/// Linux host with vfio-ccw and QEMU deliver (chp_process_crw, chsc_chp_online/offline,
/// vfio_ccw_chp_event; the table in API/vfio-ccw.md).
@Suite struct LinuxHostReportTests {
    /// The host machine's own queue overflowed: Linux only re-evaluates its subchannels
    /// (css_schedule_eval_all), so the guest gets no CRW and no R; its STSCH shows the masks.
    @Test func aReportTheHostLostReachesNoGuest() throws {
        var host = host()
        var model = try guests(.crw, host: host)
        // Fill the host's queue (256) without draining it.
        var state = ConfigureState.standby
        var lastChange: PathChange?
        for _ in 0..<300 {
            let change = try host.configurePath(chp("0.41"), to: state)
            if change.crws.isEmpty && change.crwsLost > 0 { lastChange = change }
            state = state == .standby ? .configured : .standby
        }
        let lost = try #require(lastChange)
        let reached = model.hostPathChanged(lost, as: PathEventChange(lost.after.configure)!)
        #expect(reached.count == 1 && reached[0].crw == nil && !reached[0].crwLost)
        #expect(try model.guest("g1").stats.crwsLost == 0 && model.guest("g1").stats.crwsQueued == 0)
        #expect(try model.storeCRW(of: "g1").cc == 1)
        // The next report the guest gets carries no R.
        while host.storeChannelReportWord().cc == 0 {}
        _ = model.hostPathChanged(try host.configurePath(chp("0.40"), to: .standby), as: .standby)
        let stored = try model.storeCRW(of: "g1")
        #expect(stored.cc == 0 && !stored.crw.overflow && stored.crw.rsid == 0x40)
    }

    /// A temporary error (ERC 3) is only logged by chp_process_crw: no CRW for the guest,
    /// though its devices' masks changed (the guest sees them on STSCH); the recovery is ERC 2
    /// (chsc_chp_online), which the guest does get.
    @Test func aTemporaryErrorIsNotForwardedItsRecoveryIs() throws {
        var host = host()
        var model = try guests(.crw, host: host)
        let fault = try host.injectPathFault(chp("0.41"), .temporaryError)
        #expect(fault.crws.first?.erc == .temporaryError)
        let reached = model.hostPathChanged(fault, as: .temporaryError)
        #expect(reached.count == 1 && reached[0].crw == nil && reached[0].visible == 42)
        #expect(try model.guest("g1").stats.crwsQueued == 0 && model.storeCRW(of: "g1").cc == 1)
        let recovery = try host.injectPathFault(chp("0.41"), .recovered)
        let back = model.hostPathChanged(recovery, as: .recovered)
        #expect(back[0].crw?.erc == .initialized && back[0].crw?.rsid == 0x41)
    }

    /// While the host has the chpid varied offline, chsc_chp_offline and chsc_chp_online return
    /// early: the machine's report reaches no vfio-ccw device, so no guest.
    @Test func aReportOnAChpidTheHostVariedOfflineReachesNoGuest() throws {
        var host = host()
        var model = try guests(.crw, host: host)
        _ = model.hostPathChanged(try host.varyPath(chp("0.40"), to: .offline), as: .offline)
        let off = try host.configurePath(chp("0.40"), to: .standby)
        #expect(off.crws.first?.erc == .permanentErrorNotInitialized)
        #expect(model.hostPathChanged(off, as: .standby).allSatisfy { $0.crw == nil })
        let on = try host.configurePath(chp("0.40"), to: .configured)
        #expect(model.hostPathChanged(on, as: .configured).allSatisfy { $0.crw == nil })
        #expect(try model.storeCRW(of: "g1").cc == 1)
        // Varied online again, the next report is forwarded.
        _ = model.hostPathChanged(try host.varyPath(chp("0.40"), to: .online), as: .online)
        let again = try host.configurePath(chp("0.40"), to: .standby)
        #expect(model.hostPathChanged(again, as: .standby)[0].crw?.erc == .permanentErrorNotInitialized)
    }

    /// The ERC vfio-ccw queues for each ERC chp_process_crw acts on; every other one is dropped.
    @Test func theForwardedERCsAreVFIOCCWs() {
        let map: [(UInt8, UInt8?)] = [
            (0, nil), (1, nil), (2, 2), (3, nil), (4, 2), (5, nil), (6, 6), (7, 6), (8, nil), (0xa, nil),
        ]
        for (erc, forwarded) in map {
            #expect(Guest.forwardedERC(for: ErrorRecoveryCode(rawValue: erc))?.rawValue == forwarded)
        }
    }
}
