// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import TestSupport
import Testing

@testable import VFIOCCW

/// A small host: a DASD 0.0.0000 on chpid 0.00 (the seed's clash when passed through with
/// identity chpids into css fe), DASDs 0.0.0001-0.0.0002 on 0.40 and 0.41, a subchannel without
/// a device number (0.0.0003), and the host's own virtio css fe.
private func smallTopology(guests: [Topology.Guest]) -> Topology {
    func dasd(_ id: String, devno: Int?, _ chpids: [String]) -> Topology.Subchannel {
        .init(
            id: sch(id), devno: devno, devType: 0x3390, devModel: 0x0c, cuType: 0x3990, cuModel: 0xe9,
            chpids: chpids.map(chp), enabled: true)
    }
    return Topology(
        channelSubsystems: [.init(cssid: 0), .init(cssid: 0xfe)],
        channelPaths: [
            .init(id: chp("0.00"), type: 0x1a), .init(id: chp("0.40"), type: 0x1a), .init(id: chp("0.41"), type: 0x1a),
            .init(id: chp("fe.00"), type: 0x32),
        ],
        subchannels: [
            dasd("0.0.0000", devno: 0x0100, ["0.00"]), dasd("0.0.0001", devno: 0x1001, ["0.40", "0.41"]),
            dasd("0.0.0002", devno: 0x1002, ["0.40", "0.41"]), dasd("0.0.0003", devno: nil, ["0.40"]),
            .init(
                id: sch("fe.0.0000"), devno: 0, devType: 0, devModel: 0, cuType: 0x3832, cuModel: 1,
                chpids: [chp("fe.00")]),
        ],
        guests: guests)
}

private func build(_ topology: Topology) throws(TopologyError) -> Guests {
    try Guests(topology: topology, host: try! Subsystem(topology: topology))
}

/// The error building `guests` on the small host gives.
private func refusal(_ guests: [Topology.Guest]) -> TopologyError? {
    do {
        _ = try build(smallTopology(guests: guests))
        return nil
    } catch {
        return error
    }
}

private let net = Topology.GuestDevice.virtio(subchannel: nil, devno: nil, cuModel: 1)

private func passthrough(
    _ host: String, guestSubchannel: String? = nil, guestChpids: [String]? = nil
) -> Topology.GuestDevice {
    .passthrough(host: sch(host), guestSubchannel: guestSubchannel.map(sch), guestChpids: guestChpids?.map(chp))
}

@Suite("Guests from a topology")
struct TopologyGuestsTests {
    // MARK: The embedded default

    @Test func embeddedDefaultGuest() throws {
        let host = try Subsystem(topology: .embeddedDefault)
        let guests = try Guests(topology: .embeddedDefault, host: host)
        #expect(guests.names == ["guest1"])
        let guest = try guests.guest("guest1")
        #expect(guest.strategy == .crw && guest.crwQueue.capacity == 64)
        #expect(guest.devices.count == 44)
        let devices = guest.sortedDevices

        // Two virtio devices on fe.00: net and block.
        #expect(devices[0].id == sch("fe.0.0000") && devices[0].devno == 0 && devices[0].kind == .virtio(cuModel: 1))
        #expect(devices[1].id == sch("fe.0.0001") && devices[1].devno == 1 && devices[1].kind == .virtio(cuModel: 2))
        #expect(devices[0].chpids == [chp("fe.00")] && devices[1].chpids == [chp("fe.00")])

        // The 42 DASDs of host chpid 0.40, at fe.0.0002-fe.0.002b with their own devnos and
        // identity chpids fe.40-fe.43.
        let onChpid40 = host.subchannels.filter { $0.channelPaths.contains(chp("0.40")) }.map(\.id)
        #expect(onChpid40.count == 42)
        #expect(onChpid40 == (0x3...0x2c).map { SubchannelID(cssid: 0, ssid: 0, schno: UInt16($0)) })
        let passthrough = Array(devices.dropFirst(2))
        #expect(passthrough.count == 42)
        #expect(passthrough.map(\.host) == onChpid40)
        #expect(passthrough.map(\.id) == (2...0x2b).map { SubchannelID(cssid: 0xfe, ssid: 0, schno: UInt16($0)) })
        #expect(passthrough.map(\.devno) == (0x1000...0x1029).map { UInt16($0) })
        let identity = ["fe.40", "fe.41", "fe.42", "fe.43"].map(chp)
        #expect(passthrough.allSatisfy { $0.chpids == identity && $0.pim == 0xf0 })
        #expect(
            guest.chpidMap
                == Dictionary(uniqueKeysWithValues: zip(identity, ["0.40", "0.41", "0.42", "0.43"].map(chp))))
        #expect(guest.cssids == [0xfe])
        #expect(guests.binding(of: sch("0.0.0003"))! == ("guest1", sch("fe.0.0002")))
        #expect(guests.binding(of: sch("0.0.0000")) == nil)
    }

    /// The embedded guest works as a whole: one chpid event reaches all 42 and queues one CRW.
    @Test func embeddedDefaultGuestSeesHostEvents() throws {
        var host = try Subsystem(topology: .embeddedDefault)
        var guests = try Guests(topology: .embeddedDefault, host: host)
        let change = try host.configurePath(chp("0.40"), to: .standby)
        let reached = guests.hostPathChanged(change, as: .standby)
        #expect(reached.count == 1)
        #expect(reached.first?.guestChpid == chp("fe.40") && reached.first?.devices == 42)
        #expect(try guests.guest("guest1").stats.crwsQueued == 1)
        #expect(try guests.storeCRW(of: "guest1").crw.rsid == 0x40)
    }

    // MARK: Defaults and order

    @Test func defaultsAndOrder() throws {
        let guests = try build(
            smallTopology(guests: [
                .init(
                    name: "a", strategy: "lazy", crwCapacity: 8,
                    devices: [
                        passthrough("0.0.0001"),
                        .virtio(subchannel: nil, devno: 0x0100, cuModel: 2),
                        .virtio(subchannel: sch("fe.1.0007"), devno: nil, cuModel: 3),
                    ]),
                .init(name: "b"),
                .init(
                    name: "c", strategy: "per-device", devices: [passthrough("0.0.0002", guestSubchannel: "0.0.0005")]),
            ]))
        #expect(guests.names == ["a", "b", "c"])
        let a = try guests.guest("a")
        #expect(a.strategy == .lazy && a.crwQueue.capacity == 8)
        // Each device takes the first free guest subchannel after the ones before it.
        #expect(a.sortedDevices.map(\.id) == [sch("fe.0.0000"), sch("fe.0.0001"), sch("fe.1.0007")])
        #expect(a.sortedDevices.map(\.devno) == [0x1001, 0x0100, 0x0007])
        let b = try guests.guest("b")
        #expect(b.strategy == .crw && b.crwQueue.capacity == 64 && b.devices.isEmpty)
        let c = try guests.guest("c")
        #expect(c.strategy == .perDevice && c.devices[sch("0.0.0005")]?.chpids == [chp("0.40"), chp("0.41")])
        #expect(try build(smallTopology(guests: [])).names.isEmpty)
    }

    // MARK: Errors

    @Test func unknownHostSubchannel() {
        let error = refusal([.init(name: "g1", devices: [net, passthrough("0.0.0099")])])
        #expect(
            error == TopologyError(field: "guests[0].devices[1]", reason: "host subchannel 0.0.0099 does not exist"))
    }

    /// The seed's clash, from a topology: refused naming the device, with both ways out
    /// proposed; and each way out builds.
    @Test func clashWithTheVirtualChpid() throws {
        let error = try #require(
            refusal([.init(name: "g1", devices: [net, passthrough("0.0.0001"), passthrough("0.0.0000")])]))
        #expect(error.field == "guests[0].devices[2]")
        #expect(
            error.reason
                == "host chpid 0.00 would show as guest chpid fe.00, the virtual channel path of the guest's virtio "
                + "devices in the same css; map it to a free guest chpid (guest-chpids with fe.01) or attach the "
                + "device in a separate guest css for vfio devices (guest-subchannel 0.0.xxxx, multiple css)")
        #expect(error.description.hasPrefix("guests[0].devices[2]: host chpid 0.00 would show as guest chpid fe.00"))

        // The free chpid proposed...
        let mapped = try build(
            smallTopology(guests: [.init(name: "g1", devices: [net, passthrough("0.0.0000", guestChpids: ["fe.01"])])]))
        #expect(try mapped.guest("g1").chpidMap[chp("fe.01")] == chp("0.00"))
        // ... or a css of its own.
        let separate = try build(
            smallTopology(guests: [
                .init(name: "g1", devices: [net, passthrough("0.0.0000", guestSubchannel: "0.0.0000")])
            ]))
        #expect(try separate.guest("g1").cssids == [0, 0xfe])

        // The other way round: the virtio device comes after the path took fe.00.
        let reversed = refusal([.init(name: "g1", devices: [passthrough("0.0.0000"), net])])
        #expect(reversed?.field == "guests[0].devices[1]")
        #expect(reversed?.reason.hasPrefix("host chpid 0.00 would show as guest chpid fe.00") == true)
    }

    @Test func badStrategy() {
        let error = refusal([.init(name: "g1"), .init(name: "g2", strategy: "fast")])
        #expect(
            error
                == TopologyError(
                    field: "guests[1].strategy", reason: "'fast' is not one of \"per-device\", \"crw\", \"lazy\""))
        #expect(refusal([.init(name: "g1", strategy: "CRW")])?.field == "guests[0].strategy")
    }

    @Test(
        "other refusals name the guest or device",
        arguments: [
            ([Topology.Guest(name: "g 1")], "guests[0].name", "guest name 'g 1' must be 1-64 characters"),
            ([.init(name: "")], "guests[0].name", "guest name '' must be"),
            ([.init(name: "g1"), .init(name: "g1")], "guests[1]", "guest 'g1' already exists"),
            (
                [.init(name: "g1", crwCapacity: 1)], "guests[0].crwCapacity",
                "CRW queue capacity 1 is out of range (2..65536)"
            ),
            (
                [.init(name: "g1", devices: [.virtio(subchannel: nil, devno: nil, cuModel: 0x100)])],
                "guests[0].devices[0].virtio.cuModel", "cuModel 256 is out of range (0..0xff)"
            ),
            (
                [.init(name: "g1", devices: [.virtio(subchannel: nil, devno: 0x10000, cuModel: 1)])],
                "guests[0].devices[0].virtio.devno", "devno 65536 is out of range (0..0xffff)"
            ),
            (
                [.init(name: "g1", devices: [.virtio(subchannel: sch("0.0.0000"), devno: nil, cuModel: 1)])],
                "guests[0].devices[0]", "virtio-ccw device 0.0.0000 must be in the virtual css fe"
            ),
            (
                [.init(name: "g1", devices: [net, .virtio(subchannel: sch("fe.0.0000"), devno: nil, cuModel: 2)])],
                "guests[0].devices[1]", "guest 'g1' already has a subchannel fe.0.0000"
            ),
            (
                [.init(name: "g1", devices: [net, .virtio(subchannel: nil, devno: 0, cuModel: 2)])],
                "guests[0].devices[1]", "guest 'g1' already has a device fe.0.0000"
            ),
            (
                [
                    .init(name: "g1", devices: [passthrough("0.0.0001")]),
                    .init(name: "g2", devices: [passthrough("0.0.0001")]),
                ],
                "guests[1].devices[0]", "host subchannel 0.0.0001 is already passed through to guest 'g1' as fe.0.0000"
            ),
            (
                [.init(name: "g1", devices: [passthrough("0.0.0003")])],
                "guests[0].devices[0]", "host subchannel 0.0.0003 has no valid device number"
            ),
            (
                [.init(name: "g1", devices: [passthrough("0.0.0001", guestChpids: ["fe.40"])])],
                "guests[0].devices[0]",
                "'guest-chpids' names 1 chpids, but host subchannel 0.0.0001 has 2 installed paths"
            ),
            (
                [.init(name: "g1", devices: [passthrough("0.0.0001", guestChpids: ["fe.40", "0.41"])])],
                "guests[0].devices[0]", "guest chpid 0.41 is not in the guest subchannel's css fe"
            ),
            (
                [
                    .init(
                        name: "g1",
                        devices: [passthrough("0.0.0001"), passthrough("0.0.0002", guestChpids: ["fe.41", "fe.40"])])
                ],
                "guests[0].devices[1]", "guest chpid fe.41 already shows host chpid 0.41, not 0.40"
            ),
        ] as [([Topology.Guest], String, String)])
    func refused(_ guests: [Topology.Guest], field: String, reason: String) throws {
        let error = try #require(refusal(guests))
        #expect(error.field == field)
        #expect(error.reason.hasPrefix(reason), "\(error)")
    }

    // MARK: The documented example

    /// The guests of API/topology.md's example (TopologyFileTests checks that the file decodes
    /// to these) build on its host.
    @Test func documentedExampleBuilds() throws {
        let topology = Topology(
            channelSubsystems: [.init(cssid: 0), .init(cssid: 0xfe)],
            channelPaths: [
                .init(id: chp("0.40"), type: 0x1a, shared: true, pchid: 0x100),
                .init(id: chp("0.41"), type: 0x1a, shared: true, pchid: 0x101),
                .init(id: chp("0.42"), type: 0x1a, shared: true, pchid: 0x102, configure: .standby),
                .init(id: chp("0.43"), type: 0x1a, shared: true, pchid: 0x103),
                .init(id: chp("0.60"), type: 0x11, shared: true, pchid: 0x1c0),
                .init(id: chp("fe.00"), type: 0x32),
            ],
            subchannels: [
                .init(
                    id: sch("0.0.0000"), devno: 0x0600, devType: 0x1732, devModel: 1, cuType: 0x1731, cuModel: 1,
                    chpids: [chp("0.60")], enabled: true, isc: 3, qdio: true),
                .init(
                    id: sch("0.0.0001"), devno: 0x4711, devType: 0x3390, devModel: 0x0c, cuType: 0x3990, cuModel: 0xe9,
                    chpids: [chp("0.40"), chp("0.41"), chp("0.42")], enabled: true, isc: 3),
                .init(
                    id: sch("0.0.0002"), devno: 0x4712, devType: 0x3390, devModel: 0x0c, cuType: 0x3990, cuModel: 0xe9,
                    chpids: [chp("0.43")], enabled: true, isc: 3),
                .init(
                    id: sch("fe.0.0000"), devno: 0, devType: 0, devModel: 0, cuType: 0x3832, cuModel: 1,
                    chpids: [chp("fe.00")]),
            ],
            multipleCSSEnabled: true,
            guests: Self.documentedGuests)
        let guests = try Guests(topology: topology, host: try Subsystem(topology: topology))
        let guest1 = try guests.guest("guest1")
        #expect(guest1.devices[sch("fe.0.0001")]?.devno == 0x0101)
        let dasd = try #require(guest1.devices[sch("fe.0.0002")])
        #expect(dasd.devno == 0x4711 && dasd.chpids == ["fe.40", "fe.41", "fe.42"].map(chp))
        let guest2 = try guests.guest("guest2")
        #expect(guest2.strategy == .perDevice && guest2.cssids == [0, 0xfe])
        #expect(guest2.chpidMap == [chp("0.00"): chp("0.43")])
        #expect(guest2.devices[sch("0.0.0000")]?.host == sch("0.0.0002"))
        // The example's OSA device (QDIO) is passed through by neither guest, and cannot be.
        #expect(guests.binding(of: sch("0.0.0000")) == nil)
        var withOSA = topology
        withOSA.guests[1].devices[1] = .passthrough(
            host: sch("0.0.0000"), guestSubchannel: sch("0.0.0000"), guestChpids: [chp("0.00")])
        #expect(throws: TopologyError.self) { try Guests(topology: withOSA, host: try Subsystem(topology: withOSA)) }
    }

    static let documentedGuests: [Topology.Guest] = [
        .init(
            name: "guest1", strategy: "crw", crwCapacity: 64,
            devices: [
                .virtio(subchannel: sch("fe.0.0000"), devno: nil, cuModel: 1),
                .virtio(subchannel: sch("fe.0.0001"), devno: 0x0101, cuModel: 2),
                .passthrough(host: sch("0.0.0001"), guestSubchannel: nil, guestChpids: nil),
            ]),
        .init(
            name: "guest2", strategy: "per-device",
            devices: [
                .virtio(subchannel: nil, devno: nil, cuModel: 1),
                .passthrough(host: sch("0.0.0002"), guestSubchannel: sch("0.0.0000"), guestChpids: [chp("0.00")]),
            ]),
    ]
}
