// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Testing

@testable import CSSModel

@Suite struct TopologyTests {
    static func base() -> Topology {
        Topology(
            channelSubsystems: [.init(cssid: 0)],
            channelPaths: [.init(id: Fixtures.chp("0.40"), type: 0x1a), .init(id: Fixtures.chp("0.41"), type: 0x1a)],
            subchannels: [
                .init(
                    id: Fixtures.sch("0.0.0000"), devno: 0x1000, devType: 0x3390, devModel: 0x0c, cuType: 0x3990,
                    cuModel: 0xe9, chpids: [Fixtures.chp("0.40")]),
                .init(
                    id: Fixtures.sch("0.0.0001"), devno: 0x1001, devType: 0x3390, devModel: 0x0c, cuType: 0x3990,
                    cuModel: 0xe9, chpids: [Fixtures.chp("0.40"), Fixtures.chp("0.41")]),
            ])
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let edit: @Sendable (inout Topology) -> Void
        let error: String
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "unknown chpid", edit: { $0.subchannels[1].chpids[1] = Fixtures.chp("0.99") },
            error: "subchannels[1].chpids[1]: unknown chpid 0.99: it is not in channelPaths"),
        Case(
            name: "chpid of another css", edit: { $0.subchannels[0].chpids = [Fixtures.chp("1.40")] },
            error: "subchannels[0].chpids[0]: chpid 1.40 is not in channel subsystem 0 of subchannel 0.0.0000"),
        Case(
            name: "duplicate devno", edit: { $0.subchannels[1].devno = 0x1000 },
            error: "subchannels[1]: duplicate device number 0.0.1000"),
        Case(
            name: "duplicate subchannel", edit: { $0.subchannels[1].id = Fixtures.sch("0.0.0000") },
            error: "subchannels[1]: duplicate subchannel 0.0.0000"),
        Case(
            name: "more than 8 paths",
            edit: { topo in
                topo.channelPaths = (0x40..<0x49).map {
                    .init(id: ChannelPathID(cssid: 0, chpid: UInt8($0)), type: 0x1a)
                }
                topo.subchannels[0].chpids = topo.channelPaths.map(\.id)
            },
            error: "subchannels[0].chpids: subchannel 0.0.0000 has 9 channel paths; at most 8 are allowed"),
        Case(
            name: "no paths", edit: { $0.subchannels[0].chpids = [] },
            error: "subchannels[0].chpids: subchannel 0.0.0000 needs at least one channel path"),
        Case(
            name: "path listed twice", edit: { $0.subchannels[1].chpids[1] = Fixtures.chp("0.40") },
            error: "subchannels[1].chpids[1]: chpid 0.40 is listed twice for subchannel 0.0.0001"),
        Case(
            name: "devno out of range", edit: { $0.subchannels[0].devno = 0x10000 },
            error: "subchannels[0].devno: devno 65536 is out of range (0..0xffff)"),
        Case(
            name: "device model out of range", edit: { $0.subchannels[0].devModel = 256 },
            error: "subchannels[0].devModel: devModel 256 is out of range (0..0xff)"),
        Case(
            name: "isc out of range", edit: { $0.subchannels[0].isc = 8 },
            error: "subchannels[0].isc: isc 8 is out of range (0..0x7)"),
        Case(
            name: "chpid type out of range", edit: { $0.channelPaths[1].type = -1 },
            error: "channelPaths[1].type: type -1 is out of range (0..0xff)"),
        Case(
            name: "pchid out of range", edit: { $0.channelPaths[0].pchid = 0x1_0000 },
            error: "channelPaths[0].pchid: pchid 65536 is out of range (0..0xffff)"),
        Case(
            name: "cssid out of range", edit: { $0.channelSubsystems.append(.init(cssid: 0x100)) },
            error: "channelSubsystems[1].cssid: cssid 256 is out of range (0..0xff)"),
        Case(
            name: "duplicate css", edit: { $0.channelSubsystems.append(.init(cssid: 0)) },
            error: "channelSubsystems[1]: duplicate channel subsystem 0"),
        Case(
            name: "duplicate chpid", edit: { $0.channelPaths[1] = .init(id: Fixtures.chp("0.40"), type: 0x11) },
            error: "channelPaths[1]: duplicate chpid 0.40"),
        Case(
            name: "chpid in undefined css",
            edit: { $0.channelPaths.append(.init(id: Fixtures.chp("fe.00"), type: 0x32)) },
            error: "channelPaths[2]: chpid fe.00 is in channel subsystem fe, which is not defined"),
        Case(
            name: "subchannel in undefined css",
            edit: { $0.subchannels[0].id = Fixtures.sch("1.0.0000") },
            error: "subchannels[0]: subchannel 1.0.0000 is in channel subsystem 1, which is not defined"),
    ]

    @Test(arguments: cases)
    func validationErrors(testCase: Case) {
        var topology = Self.base()
        testCase.edit(&topology)
        do {
            try topology.validate()
            Issue.record("accepted")
        } catch {
            #expect(error.description == testCase.error)
        }
        #expect(throws: TopologyError.self) { try Subsystem(topology: topology) }
    }

    @Test func sameDevnoInAnotherSetIsFine() throws {
        var topology = Self.base()
        topology.subchannels[1].id = Fixtures.sch("0.1.0000")
        topology.subchannels[1].devno = 0x1000
        topology.subchannels[0].devno = nil
        try topology.validate()
        let model = try Subsystem(topology: topology)
        #expect(model.subchannel(Fixtures.sch("0.0.0000"))?.deviceID == nil)
        #expect(model.subchannel(device: try DeviceID(parsing: "0.1.1000"))?.id == Fixtures.sch("0.1.0000"))
    }

    @Test func unsortedDescriptionsAreStoredInIDOrder() throws {
        var topology = Self.base()
        topology.subchannels.reverse()
        let model = try Subsystem(topology: topology)
        #expect(model.subchannels.map(\.id.description) == ["0.0.0000", "0.0.0001"])
        #expect(model.subchannels(using: Fixtures.chp("0.40")).map(\.id.description) == ["0.0.0000", "0.0.0001"])
        #expect(model.subchannel(device: try DeviceID(parsing: "0.0.1001"))?.id.description == "0.0.0001")
    }

    @Test func embeddedDefaultLooksReal() throws {
        let topology = Topology.embeddedDefault
        try topology.validate()
        let model = try Subsystem(topology: topology)
        #expect(model.cssids == [0, 0xfe])
        #expect(model.channelPath(Fixtures.chp("0.40"))?.subchannelCount == 42)
        #expect(model.channelPath(Fixtures.chp("0.40"))?.type == 0x1a)
        #expect(model.channelPath(Fixtures.chp("0.60"))?.type == 0x11)
        #expect(model.channelPath(Fixtures.chp("fe.00"))?.type == 0x32)
        #expect(model.channelPath(Fixtures.chp("0.4d"))?.configure == .standby)
        let osa = model.subchannels(using: Fixtures.chp("0.60")).map { $0.deviceID!.description }
        #expect(osa == ["0.0.0600", "0.0.0601", "0.0.0602"])
        let eightPaths = try #require(model.subchannel(device: try DeviceID(parsing: "0.0.2000")))
        #expect(eightPaths.schib.pmcw.pim == 0xff)
        #expect(eightPaths.schib.pmcw.chpids.description == "44454647 48494a4b")
        let standbyUser = try #require(model.subchannel(device: try DeviceID(parsing: "0.0.3000")))
        #expect((standbyUser.schib.pmcw.pim, standbyUser.schib.pmcw.pam) == (0xc0, 0x80))
        let virtio = model.subchannels(using: Fixtures.chp("fe.00"))
        #expect(virtio.count == 4)
        #expect(virtio.allSatisfy { $0.cuType == 0x3832 })
        #expect(
            model.summary(cssid: 0)
                == CSSSummary(cssid: 0, subchannels: 55, channelPaths: 16, crwsQueued: 0, crwsLost: 0))
        #expect(model.summary(cssid: 0xfe).subchannels == 4)
    }

    @Test(arguments: [(64, 8, 2), (100, 7, 3), (1000, 32, 8), (65_537, 32, 8), (10, 1, 1)])
    func syntheticSpreadsEvenly(subchannels: Int, chpids: Int, paths: Int) throws {
        let topology = try Topology.synthetic(subchannels: subchannels, chpids: chpids, paths: paths, cssid: 3)
        let model = try Subsystem(topology: topology)
        #expect(model.subchannels.count == subchannels)
        let counts = model.channelPaths.map(\.subchannelCount)
        #expect(counts.count == chpids)
        #expect(counts.reduce(0, +) == subchannels * paths)
        #expect(counts.max()! - counts.min()! <= 1)
        if subchannels * paths % chpids == 0 { #expect(Set(counts) == [subchannels * paths / chpids]) }
        #expect(model.subchannels.allSatisfy { $0.id.cssid == 3 && $0.schib.pmcw.pim.nonzeroBitCount == paths })
        if subchannels > 0x10000 { #expect(model.subchannels.last!.id.description == "3.1.0000") }
    }

    @Test(arguments: [
        (1, 4, 5, 0, "paths: paths 5 is more than chpids 4: a subchannel's paths must differ"),
        (1, 4, 9, 0, "paths: paths 9 is out of range (1..8)"),
        (1, 0, 1, 0, "chpids: chpids 0 is out of range (1..256)"),
        (262_145, 32, 8, 0, "subchannels: subchannels 262145 is out of range (0..262144)"),
        (1, 1, 1, 256, "cssid: cssid 256 is out of range (0..0xff)"),
    ])
    func syntheticRefusals(subchannels: Int, chpids: Int, paths: Int, cssid: Int, message: String) {
        do {
            _ = try Topology.synthetic(subchannels: subchannels, chpids: chpids, paths: paths, cssid: cssid)
            Issue.record("accepted")
        } catch {
            #expect(error.description == message)
        }
    }
}
