// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Testing

@testable import CSSModel

@Suite struct ModifySubchannelTests {
    static let target = Fixtures.sch("0.0.0001")

    /// An operand that changes every modifiable field.
    static func operand(from schib: SCHIB) -> SCHIB {
        var new = schib
        new.pmcw.intparm = 0xcafe_f00d
        new.pmcw.isc = 6
        new.pmcw.isEnabled = false
        new.pmcw.flags |= PMCW.Flags.multipath | 0x0008
        new.pmcw.lpm = 0xff
        new.pmcw.mbi = 0x0042
        new.pmcw.pom = 0x7f
        new.pmcw.chars = PMCW.Characteristics.concurrentSense
        new.mba = 0x1000
        return new
    }

    @Test(arguments: [
        (UInt16(0x8000), UInt32(0), "operand exception: reserved PMCW flag bits 0x8000 are set"),
        (0x4000, 0, "operand exception: reserved PMCW flag bits 0x4000 are set"),
        (0x0200, 0, "operand exception: reserved PMCW flag bits 0x0200 are set"),
        (0x0100, 0, "operand exception: reserved PMCW flag bits 0x0100 are set"),
        (0xc381, 0, "operand exception: reserved PMCW flag bits 0xc300 are set"),
        (0, 0x0100_0000, "operand exception: reserved PMCW characteristics bits 0x01000000 are set"),
        (0, 0x0000_0008, "operand exception: reserved PMCW characteristics bits 0x00000008 are set"),
    ])
    func reservedBitsAreAnOperandException(flags: UInt16, chars: UInt32, message: String) {
        var model = Fixtures.small()
        let before = model.subchannel(Self.target)
        var schib = SCHIB()
        schib.pmcw.flags = flags
        schib.pmcw.chars = chars
        #expect(throws: ProgramInterruption.operand(reason: String(message.dropFirst("operand exception: ".count)))) {
            try model.modifySubchannel(Self.target, schib: schib)
        }
        // Before any other check: even an unknown subchannel gets the exception.
        #expect(throws: ProgramInterruption.self) {
            try model.modifySubchannel(Fixtures.sch("0.3.ffff"), schib: schib)
        }
        #expect(model.subchannel(Self.target) == before)
    }

    @Test func bit5IsIgnoredNotAnException() throws {
        var model = Fixtures.small()
        var schib = model.subchannel(Self.target)!.schib
        schib.pmcw.flags |= 0x0400
        #expect(try model.modifySubchannel(Self.target, schib: schib).cc == 0)
        #expect(model.subchannel(Self.target)!.schib.pmcw.flags & 0x0400 == 0)
    }

    /// The architected outcomes, one row each: the subchannel's state -> cc, changed.
    @Test(arguments: [
        ("normal", 0, true),
        ("unknown", 3, false),
        ("dnv0", 0, false),
        ("status pending", 1, false),
        ("busy start", 2, false),
        ("busy halt", 2, false),
        ("busy clear", 2, false),
        ("pending and busy", 1, false),
    ])
    func conditionCodes(state: String, cc: Int, changed: Bool) throws {
        var model = Fixtures.small()
        var id = Self.target
        switch state {
        case "unknown": id = Fixtures.sch("0.0.0099")
        case "dnv0":
            let topo = Topology(
                channelSubsystems: [.init(cssid: 0)], channelPaths: [.init(id: Fixtures.chp("0.40"), type: 0x1a)],
                subchannels: [
                    .init(
                        id: Self.target, devno: nil, devType: 0, devModel: 0, cuType: 0, cuModel: 0,
                        chpids: [Fixtures.chp("0.40")])
                ])
            model = try Subsystem(topology: topo)
            #expect(model.subchannel(Self.target)?.deviceID == nil)
        case "status pending": try model.setStatus(SCSW(ctrl: SCSW.Control.statusPending), of: id)
        case "busy start": try model.setStatus(SCSW(ctrl: SCSW.Control.startFunction), of: id)
        case "busy halt": try model.setStatus(SCSW(ctrl: SCSW.Control.haltFunction), of: id)
        case "busy clear": try model.setStatus(SCSW(ctrl: SCSW.Control.clearFunction), of: id)
        case "pending and busy":
            try model.setStatus(SCSW(ctrl: SCSW.Control.startFunction | SCSW.Control.statusPending), of: id)
        default: break
        }
        let before = model.subchannel(id)
        let operand = Self.operand(from: before?.schib ?? SCHIB())
        let result = try model.modifySubchannel(id, schib: operand)
        #expect(result == ModifySubchannelResult(cc: cc, changed: changed))
        if !changed { #expect(model.subchannel(id) == before) }
    }

    @Test func copiesExactlyTheModifiableFields() throws {
        var model = Fixtures.small()
        let before = model.subchannel(Self.target)!.schib
        var operand = Self.operand(from: before)
        // Fields MSCH must not take from the operand:
        operand.pmcw.devno = 0xbeef
        operand.pmcw.pim = 0xff
        operand.pmcw.pam = 0x01
        operand.pmcw.pnom = 0x01
        operand.pmcw.lpum = 0x01
        operand.pmcw.chpids = ChannelPathSlots([1, 2, 3])
        operand.pmcw.deviceNumberValid = false
        operand.pmcw.flags |= PMCW.Flags.timing
        operand.scsw = SCSW(ctrl: SCSW.Control.statusPending)
        operand.mda = 0xffff_ffff
        #expect(try model.modifySubchannel(Self.target, schib: operand) == ModifySubchannelResult(cc: 0, changed: true))
        let after = model.subchannel(Self.target)!.schib
        var expected = before
        expected.pmcw.intparm = 0xcafe_f00d
        expected.pmcw.isc = 6
        expected.pmcw.isEnabled = false
        expected.pmcw.flags |= PMCW.Flags.multipath | 0x0008
        expected.pmcw.lpm = before.pmcw.pim  // 0xff limited to the installed paths
        expected.pmcw.mbi = 0x0042
        expected.pmcw.pom = 0x7f
        expected.pmcw.chars = PMCW.Characteristics.concurrentSense
        expected.mba = 0x1000
        #expect(after == expected)
        #expect(after.pmcw.lpm == 0xe0)
        // Unchanged operand: cc 0, nothing changed.
        #expect(try model.modifySubchannel(Self.target, schib: after) == ModifySubchannelResult(cc: 0, changed: false))
    }
}
