// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import TestSupport
import Testing

@testable import VFIOCCW

/// Host: 0.40 and 0.41, shared by 4 DASDs 0.0.0000-0.0.0003 (paths [40 41]), all passed through.
private func setUp(_ strategy: PathEventStrategy) throws -> (Subsystem, Guests) {
    let subchannels: [Topology.Subchannel] = (0..<4).map { n in
        .init(
            id: SubchannelID(cssid: 0, ssid: 0, schno: UInt16(n)), devno: 0x1000 + n, devType: 0x3390, devModel: 0x0c,
            cuType: 0x3990, cuModel: 0xe9, chpids: [chp("0.40"), chp("0.41")], enabled: true)
    }
    let host = try Subsystem(
        topology: Topology(
            channelSubsystems: [.init(cssid: 0)],
            channelPaths: [.init(id: chp("0.40"), type: 0x1a), .init(id: chp("0.41"), type: 0x1a)],
            subchannels: subchannels))
    var guests = Guests()
    try guests.addGuest("g", strategy: strategy)
    for n in 0..<4 {
        try guests.attachPassthrough(to: "g", host: SubchannelID(cssid: 0, ssid: 0, schno: UInt16(n)), in: host)
    }
    return (host, guests)
}

@Suite struct HostChangeMasksTests {
    /// The guest takes the masks the change carries, not the host's current SCHIB: a change
    /// delivered after the host moved on still brings in its own masks (so the guests never
    /// read a SCHIB back from the host).
    @Test func perDeviceCopiesTheMasksOfTheChangeItWasGiven() throws {
        var (host, guests) = try setUp(.perDevice)
        let first = try host.configurePath(chp("0.40"), to: .standby)  // pam c0 -> 40
        _ = try host.injectPathFault(chp("0.41"), .permanentError)  // pam 40 -> 00, pnom 40
        let reached = guests.hostPathChanged(first, as: .standby)
        #expect(reached.count == 1 && reached[0].devices == 4 && reached[0].notifications == 4)
        for device in try guests.guest("g").devices.values {
            #expect(device.pam == 0x40 && device.pnom == 0, "\(device.id) shows the first change's masks")
        }
        #expect(host.subchannel(sch("0.0.0000"))!.schib.pmcw.pam == 0)
    }

    /// Which changes are "visible" is measured between the masks of successive changes.
    @Test func visibilityFollowsTheChangesDelivered() throws {
        var (host, guests) = try setUp(.lazy)
        let vary = try host.varyPath(chp("0.40"), to: .offline)
        let fault = try host.injectPathFault(chp("0.41"), .temporaryError)
        #expect(guests.hostPathChanged(vary, as: .offline).first?.visible == 0)
        #expect(guests.hostPathChanged(fault, as: .temporaryError).first?.visible == 4)
        #expect(try guests.guest("g").devices.values.allSatisfy { $0.unobserved == 1 })
    }

    /// A reset reaches no guest, whatever its strategy or its paths.
    @Test(arguments: PathEventStrategy.allCases)
    func aResetReachesNoGuest(_ strategy: PathEventStrategy) throws {
        var (host, guests) = try setUp(strategy)
        let result = host.resetChannelPath(chp("0.40"))
        #expect(result.cc == 0 && !result.crws.isEmpty)
        let reset = PathChange(resetOf: host.channelPath(chp("0.40"))!, crws: result.crws)
        #expect(guests.hostPathChanged(reset, as: .reset).isEmpty)
        #expect(try guests.guest("g").stats == PathEventStats() && guests.guest("g").crwQueue.isEmpty)
    }

    /// Every guest change carries the kind it was delivered as.
    @Test func guestChangesCarryTheirKind() throws {
        var (host, guests) = try setUp(.crw)
        let change = try host.injectPathFault(chp("0.41"), .recovered)  // nothing to recover: no change
        #expect(guests.hostPathChanged(change, as: .recovered).isEmpty)
        let fault = try host.injectPathFault(chp("0.41"), .permanentError)
        let reached = guests.hostPathChanged(fault, as: .permanentError)
        #expect(reached.map(\.change) == [.permanentError] && reached[0].hostChpid == chp("0.41"))
    }
}
