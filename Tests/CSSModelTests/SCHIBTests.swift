// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Testing

@testable import CSSModel

@Suite struct SCHIBTests {
    static let sample = SCHIB(
        pmcw: PMCW(
            intparm: 0x1122_3344, flags: 0x1881, devno: 0x1000, lpm: 0xf0, pnom: 0x08, lpum: 0x80, pim: 0xf0,
            mbi: 0x1234, pom: 0xff, pam: 0xe0, chpids: ChannelPathSlots([0x40, 0x41, 0x42, 0x43]), chars: 0x0020_0004),
        scsw: SCSW(flags: 0x0001, ctrl: 0x4007, cpa: 0xdead_beef, dstat: 0x0c, cstat: 0x00, count: 0x0010),
        mba: 0x0102_0304_0506_0708, mda: 0xaabb_ccdd)

    static let sampleBytes: [UInt8] = [
        0x11, 0x22, 0x33, 0x44, 0x18, 0x81, 0x10, 0x00, 0xf0, 0x08, 0x80, 0xf0, 0x12, 0x34, 0xff, 0xe0,
        0x40, 0x41, 0x42, 0x43, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x04,  // PMCW: 28 bytes
        0x00, 0x01, 0x40, 0x07, 0xde, 0xad, 0xbe, 0xef, 0x0c, 0x00, 0x00, 0x10,  // SCSW: 12 bytes
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,  // MBA
        0xaa, 0xbb, 0xcc, 0xdd,  // model-dependent area
    ]

    @Test func encodesTheArchitectedLayout() {
        #expect(Self.sampleBytes.count == 52)
        #expect(Self.sample.bytes == Self.sampleBytes)
        #expect(Self.sample.pmcw.bytes == Array(Self.sampleBytes[0..<28]))
        #expect(Self.sample.scsw.bytes == Array(Self.sampleBytes[28..<40]))
        #expect(Self.sample.hexString.hasPrefix("1122334418811000f00880f01234ffe04041424300000000"))
        #expect(Self.sample.hexString.count == 104)
    }

    @Test func decodesTheArchitectedLayout() throws {
        let schib = try SCHIB(bytes: Self.sampleBytes)
        #expect(schib == Self.sample)
        #expect(schib.pmcw.isc == 3)
        #expect(schib.pmcw.isEnabled)
        #expect(schib.pmcw.deviceNumberValid)
        #expect(schib.pmcw.chpids[3] == 0x43)
        #expect(schib.scsw.pathNotOperational)
        #expect(schib.scsw.isBusy)
        #expect(schib.scsw.isStatusPending)
        #expect(try PMCW(bytes: Self.sampleBytes[0..<28]) == Self.sample.pmcw)
        #expect(try SCSW(bytes: Self.sampleBytes[28..<40]) == Self.sample.scsw)
    }

    @Test func roundTripsRandomBlocks() throws {
        var rng = SplitMix64(seed: 52)
        for _ in 0..<500 {
            let bytes = (0..<52).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(try SCHIB(bytes: bytes).bytes == bytes)
        }
    }

    @Test(arguments: [0, 51, 53])
    func refusesOtherSizes(count: Int) {
        #expect(throws: ControlBlockSizeError(block: "SCHIB", expected: 52, actual: count)) {
            try SCHIB(bytes: [UInt8](repeating: 0, count: count))
        }
    }

    @Test func flagAccessorsTouchOnlyTheirBits() {
        var pmcw = PMCW(flags: 0xffff)
        pmcw.isc = 0
        #expect(pmcw.flags == 0xc7ff)
        pmcw.isc = 5
        #expect(pmcw.flags == 0xefff)
        pmcw.isEnabled = false
        pmcw.deviceNumberValid = false
        #expect(pmcw.flags == 0xef7e)
        var slots = ChannelPathSlots()
        slots[7] = 0xfe
        slots[0] = 0x40
        #expect(slots.rawValue == 0x4000_0000_0000_00fe)
        #expect(slots.description == "40000000 000000fe")
        #expect(Array(slots) == [0x40, 0, 0, 0, 0, 0, 0, 0xfe])
    }

    @Test func storeSubchannelGivesAFreshVirtualSCHIB() throws {
        let model = try Subsystem(topology: .embeddedDefault)
        let result = model.storeSubchannel(Fixtures.sch("fe.0.0000"))
        #expect(result.cc == 0)
        let pmcw = try #require(result.schib).pmcw
        // css.md: a fresh virtual subchannel has DNV, pim 80, pam 80, pom ff, lpm = pim, chpid[0] = 0.
        #expect(pmcw.deviceNumberValid)
        #expect((pmcw.pim, pmcw.pam, pmcw.pom, pmcw.lpm, pmcw.pnom) == (0x80, 0x80, 0xff, 0x80, 0))
        #expect(pmcw.chpids[0] == 0)
        #expect(pmcw.devno == 0)
        #expect(model.storeSubchannel(Fixtures.sch("fe.0.0042")) == StoreSubchannelResult(cc: 3, schib: nil))
    }
}
