// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Testing

@testable import CSSModel

/// The QDIO facility (PMCW QF, flags 0x8000): set by the machine for QDIO devices (control unit
/// 1731: OSA-Express, HiperSockets, FCP), shown in the SCHIB, never changed by MSCH.
@Suite struct QDIOFacilityTests {
    static let osa = Fixtures.sch("0.0.0000")
    static let dasd = Fixtures.sch("0.0.0001")

    /// 0.0.0000 an OSA (1732/01 on 1731/01), 0.0.0001 a DASD, 0.0.0002 a DASD stated to have
    /// QDIO, 0.0.0003 an OSA stated to have none, 0.0.0004 a CHSC subchannel.
    static func host() throws -> Subsystem {
        func device(_ id: String, _ devno: Int, cu: Int, dev: Int, qdio: Bool? = nil) -> Topology.Subchannel {
            .init(
                id: Fixtures.sch(id), devno: devno, devType: dev, devModel: 1, cuType: cu, cuModel: 1,
                chpids: [Fixtures.chp("0.60")], enabled: true, isc: 3, qdio: qdio)
        }
        let topology = Topology(
            channelSubsystems: [.init(cssid: 0)],
            channelPaths: [.init(id: Fixtures.chp("0.60"), type: 0x11)],
            subchannels: [
                device("0.0.0000", 0x600, cu: 0x1731, dev: 0x1732),
                device("0.0.0001", 0x700, cu: 0x3990, dev: 0x3390),
                device("0.0.0002", 0x701, cu: 0x3990, dev: 0x3390, qdio: true),
                device("0.0.0003", 0x603, cu: 0x1731, dev: 0x1732, qdio: false),
                .init(
                    id: Fixtures.sch("0.0.0004"), devno: nil, devType: 0, devModel: 0, cuType: 0, cuModel: 0,
                    chpids: [],
                    type: .chsc),
            ])
        return try Subsystem(topology: topology)
    }

    @Test func theFacilityIsDerivedFromTheControlUnitUnlessStated() throws {
        let model = try Self.host()
        let qf = (0...4).map { model.subchannel(SubchannelID(cssid: 0, ssid: 0, schno: UInt16($0)))!.schib.pmcw.flags }
            .map { $0 & PMCW.Flags.qdio != 0 }
        #expect(qf == [true, false, true, false, false])
        // What STSCH stores: bit 0 of PMCW word 1, the first byte after the intparm.
        let schib = try #require(model.storeSubchannel(Self.osa).schib)
        #expect(schib.pmcw.hasQDIOFacility)
        #expect(schib.bytes[4] & 0x80 == 0x80)
        #expect(model.storeSubchannel(Self.dasd).schib!.bytes[4] & 0x80 == 0)
    }

    @Test func theEmbeddedOSADevicesHaveQDIO() throws {
        let model = try Subsystem(topology: .embeddedDefault)
        let withQDIO = model.subchannels.filter(\.schib.pmcw.hasQDIOFacility).map(\.deviceID?.description)
        #expect(withQDIO == ["0.0.0600", "0.0.0601", "0.0.0602"])
    }

    @Test func onlyIOSubchannelsCanHaveIt() {
        let topology = Topology(
            channelSubsystems: [.init(cssid: 0)], channelPaths: [],
            subchannels: [
                .init(
                    id: Fixtures.sch("0.0.0000"), devno: nil, devType: 0, devModel: 0, cuType: 0, cuModel: 0,
                    chpids: [], type: .chsc, qdio: true)
            ])
        #expect(
            throws: TopologyError(
                field: "subchannels[0]",
                reason:
                    "subchannel 0.0.0000 of type chsc can have no devno, no chpids and no QDIO facility (only I/O subchannels do)"
            )
        ) { try topology.validate() }
    }

    /// Linux enables a QDIO subchannel with the PMCW it stored, QF included
    /// (`cio_commit_config`): accepted, and QF stays.
    @Test func mschTakesBackTheStoredPMCWOfAQDIOSubchannel() throws {
        var model = try Self.host()
        var operand = model.storeSubchannel(Self.osa).schib!
        operand.pmcw.isEnabled = false
        operand.pmcw.isc = 5
        #expect(try model.modifySubchannel(Self.osa, schib: operand) == ModifySubchannelResult(cc: 0, changed: true))
        let after = model.subchannel(Self.osa)!.schib.pmcw
        #expect(after.hasQDIOFacility && !after.isEnabled && after.isc == 5)
    }

    /// The program cannot take the facility away: QF clear in the operand changes nothing.
    @Test func mschCannotClearIt() throws {
        var model = try Self.host()
        var operand = model.storeSubchannel(Self.osa).schib!
        operand.pmcw.hasQDIOFacility = false
        #expect(try model.modifySubchannel(Self.osa, schib: operand) == ModifySubchannelResult(cc: 0, changed: false))
        #expect(model.subchannel(Self.osa)!.schib.pmcw.hasQDIOFacility)
    }

    /// ... nor give it: on a subchannel without QDIO, QF is a reserved bit (PoP: bit 0 of
    /// word 1 must be zero), an operand exception before anything changes.
    @Test func mschCannotSetIt() throws {
        var model = try Self.host()
        let before = model.subchannel(Self.dasd)
        var operand = before!.schib
        operand.pmcw.hasQDIOFacility = true
        #expect(throws: ProgramInterruption.operand(reason: "reserved PMCW flag bits 0x8000 are set")) {
            try model.modifySubchannel(Self.dasd, schib: operand)
        }
        #expect(model.subchannel(Self.dasd) == before)
        // W (0x4000) stays reserved on a QDIO subchannel too.
        var withW = model.storeSubchannel(Self.osa).schib!
        withW.pmcw.flags |= PMCW.Flags.w
        #expect(throws: ProgramInterruption.operand(reason: "reserved PMCW flag bits 0x4000 are set")) {
            try model.modifySubchannel(Self.osa, schib: withW)
        }
    }
}
