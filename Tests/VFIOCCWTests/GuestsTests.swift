// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import Testing

@testable import VFIOCCW

private func chp(_ text: String) -> ChannelPathID { try! ChannelPathID(parsing: text) }
private func sch(_ text: String) -> SubchannelID { try! SubchannelID(parsing: text) }

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

@Suite struct HostReportLossTests {
    /// The host machine's own queue overflowed: the guest cannot get the report, but its next
    /// CRW carries R, so it knows to re-evaluate.
    @Test func aReportTheHostLostReachesTheGuestAsR() throws {
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
        #expect(reached.count == 1 && reached[0].crw == nil && reached[0].crwLost)
        #expect(try model.guest("g1").stats.crwsLost == lost.crwsLost)
        // The R bit rides on the next report the guest gets.
        while host.storeChannelReportWord().cc == 0 {}
        _ = model.hostPathChanged(try host.configurePath(chp("0.40"), to: .standby), as: .standby)
        let stored = try model.storeCRW(of: "g1")
        #expect(stored.cc == 0 && stored.crw.overflow && stored.crw.rsid == 0x40)
    }
}

@Suite struct ChpidVirtualisationTests {
    @Test func virtioChpidClashIsRefusedWithBothWaysOut() throws {
        let host = host()
        var model = Guests()
        try model.addGuest("g1")
        try model.addVirtio(to: "g1", cuModel: 1)
        let before = try model.guest("g1").devices
        #expect(
            throws: VFIOError.clashWithVirtualChpid(
                guestChpid: chp("fe.00"), host: chp("0.00"), freeChpid: chp("fe.01"), freeCSS: 0)
        ) {
            try model.attachPassthrough(to: "g1", host: sch("0.0.0000"), in: host)
        }
        #expect(try model.guest("g1").devices == before && model.binding(of: sch("0.0.0000")) == nil)
        // Way 1: a free guest chpid.
        var remapped = model
        let device = try remapped.attachPassthrough(
            to: "g1", host: sch("0.0.0000"), guestChpids: [chp("fe.01")], in: host)
        #expect(device.chpids == [chp("fe.01")])
        #expect(try remapped.guest("g1").chpidMap[chp("fe.01")] == chp("0.00"))
        // Way 2: a separate guest css for vfio devices (MCSSE).
        let separate = try model.attachPassthrough(
            to: "g1", host: sch("0.0.0000"), guestSubchannel: sch("0.0.0000"), in: host)
        #expect(separate.chpids == [chp("0.00")])
        #expect(try model.guest("g1").cssids == [0, 0xfe])
    }

    @Test func hostEventsReachTheGuestUnderItsChpid() throws {
        var host = host()
        var model = Guests()
        try model.addGuest("g1", strategy: .crw)
        try model.attachPassthrough(
            to: "g1", host: sch("0.0.0001"), guestSubchannel: sch("0.0.0005"), guestChpids: [chp("0.10"), chp("0.11")],
            in: host)
        // The same host chpid cannot show as two guest chpids in one css, nor one guest chpid as two hosts.
        #expect(throws: VFIOError.self) {
            try model.attachPassthrough(
                to: "g1", host: sch("0.0.0002"), guestSubchannel: sch("0.0.0006"),
                guestChpids: [chp("0.12"), chp("0.11")], in: host)
        }
        #expect(throws: VFIOError.self) {
            try model.attachPassthrough(
                to: "g1", host: sch("0.0.0002"), guestSubchannel: sch("0.0.0006"),
                guestChpids: [chp("0.11"), chp("0.10")], in: host)
        }
        let reached = model.hostPathChanged(try host.injectPathFault(chp("0.41"), .permanentError), as: .permanentError)
        #expect(reached.map(\.guestChpid) == [chp("0.11")] && reached[0].crw?.rsid == 0x11)
        let schib = try model.storeSubchannel(of: "g1", sch("0.0.0005"), host: host).schib!
        #expect(schib.pmcw.chpids[0] == 0x10 && schib.pmcw.chpids[1] == 0x11 && schib.pmcw.pam == 0x80)
        #expect(schib.scsw.pathNotOperational && schib.pmcw.pnom == 0x40)
    }

    @Test func detachWhileEventsAreInFlight() throws {
        var host = host()
        var model = try guests(.crw, host: host)
        _ = model.hostPathChanged(try host.configurePath(chp("0.40"), to: .standby), as: .standby)
        try model.detachPassthrough(from: "g1", guestSubchannel: sch("fe.0.0001"))
        #expect(model.binding(of: sch("0.0.0001")) == nil)
        #expect(try model.storeSubchannel(of: "g1", sch("fe.0.0001"), host: host).cc == 3)
        #expect(try model.storeCRW(of: "g1").crw.rsid == 0x40)  // the report already queued stays
        // The next event no longer counts the detached device; it can be passed through again.
        let reached = model.hostPathChanged(try host.configurePath(chp("0.40"), to: .configured), as: .configured)
        #expect(reached[0].devices == 41)
        try model.attachPassthrough(to: "g1", host: sch("0.0.0001"), in: host)
    }

    @Test func badInputChangesNothing() throws {
        let host = host()
        var model = try guests(.lazy, host: host)
        let before = try model.guest("g1").devices
        #expect(throws: VFIOError.unknownGuest("nope")) {
            try model.attachPassthrough(to: "nope", host: sch("0.0.0001"), in: host)
        }
        #expect(throws: VFIOError.alreadyPassedThrough(sch("0.0.0001"), guest: "g1", as: sch("fe.0.0001"))) {
            try model.attachPassthrough(to: "g1", host: sch("0.0.0001"), in: host)
        }
        #expect(throws: VFIOError.unknownHostSubchannel(sch("0.0.0999"))) {
            try model.attachPassthrough(to: "g1", host: sch("0.0.0999"), in: host)
        }
        #expect(throws: VFIOError.guestSubchannelInUse(guest: "g1", sch("fe.0.0001"))) {
            try model.attachPassthrough(
                to: "g1", host: sch("0.0.0000"), guestSubchannel: sch("fe.0.0001"),
                guestChpids: [chp("fe.05")], in: host)
        }
        #expect(throws: VFIOError.wrongChpidCount(given: 1, installed: 2, host: sch("0.0.0001"))) {
            var other = Guests()
            try other.addGuest("g2")
            try other.attachPassthrough(to: "g2", host: sch("0.0.0001"), guestChpids: [chp("fe.05")], in: host)
        }
        #expect(throws: VFIOError.unknownGuestSubchannel(guest: "g1", sch("fe.0.0000"))) {
            try model.detachPassthrough(from: "g1", guestSubchannel: sch("fe.0.0000"))  // the virtio device
        }
        #expect(throws: VFIOError.invalidName("a b")) { try model.addGuest("a b") }
        #expect(try model.guest("g1").devices == before)
    }
}
