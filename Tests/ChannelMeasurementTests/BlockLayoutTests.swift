// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Testing

@testable import ChannelMeasurement

/// The blocks against bytes written by hand from the architecture's layouts (Linux chsc.h
/// `struct cmg_cmcb`, `struct cmg_entry`, `struct cmg_ext_entry`; chpstat `cmcb5_t`, `cue2_t`,
/// `ext_cue5_t`), big-endian, bit 0 the most significant.
@Suite struct BlockLayoutTests {
    /// A CMG 5 CMCB: shared and extended path 0x41; CMCV 0x1f; CMGP 9, CMGQ 0xab, CMG 5;
    /// DPU id 7, CMGS 32 (32 Gbit/s); words 3-7 per `cmcb5_t`.
    static let cmcb5: [UInt8] = [
        0x60, 0x00, 0x00, 0x41,  // not-valid 0, shared 1, extended 1, chpid 0x41
        0xf8, 0x09, 0xab, 0x05,  // CMCV 0x1f (bits 0-4), CMGP 9 (bits 12-15), CMGQ 0xab, CMG 5
        0x00, 0x07, 0x00, 0x20,  // byte 9 DPU id 7, CMGS 32
        0x00, 0x4c, 0x4b, 0x40,  // max_bus_cycles 5,000,000
        0x00, 0x3d, 0x09, 0x00,  // max_channel_work_units 4,000,000
        0x00, 0x0e, 0xe6, 0xb2,  // max_write_data_units 976,562
        0x00, 0x0e, 0xe6, 0xb3,  // max_read_data_units 976,563
        0x04, 0x00, 0x10, 0x00,  // dpu_num_cores 4, data_unit_size 4096 (24 bits)
    ]

    @Test func decodesTheFullCMCB() throws {
        let cmcb = try CMCB(bytes: Self.cmcb5)
        #expect(!cmcb.notValid)
        #expect(cmcb.shared)
        #expect(cmcb.extended)
        #expect(cmcb.chpid == 0x41)
        #expect(cmcb.cmcv == 0x1f)
        #expect(cmcb.cmgp == 9)
        #expect(cmcb.cmgq == 0xab)
        #expect(cmcb.cmg == 5)
        #expect(cmcb.dpuID == 7)
        #expect(cmcb.cmgs == 32)
        #expect(cmcb.speedBPS == 32_000_000_000)
        #expect(cmcb.data == [5_000_000, 4_000_000, 976_562, 976_563, 0x0400_1000])
        #expect(cmcb.bytes == Self.cmcb5)

        let chars = CMGCharacteristics(cmg: .cmg5, cmcb: cmcb, full: true)
        #expect(chars.maxBusCycles == 5_000_000)
        #expect(chars.maxChannelWorkUnits == 4_000_000)
        #expect(chars.maxWriteDataUnits == 976_562)
        #expect(chars.maxReadDataUnits == 976_563)
        #expect(chars.dpuNumCores == 4)
        #expect(chars.dataUnitSize == 4096)
        #expect(chars.dpuID == 7)
        #expect(
            chars.values.map(\.key) == [
                "dpu_id", "max_bus_cycles", "max_channel_work_units", "max_write_data_units", "max_read_data_units",
                "dpu_num_cores", "data_unit_size",
            ])
        // Without the full block (the older view) there is no DPU id.
        #expect(CMGCharacteristics(cmg: .cmg5, cmcb: cmcb, full: false).values["dpu_id"] == nil)
    }

    @Test func encodesFieldsIntoTheirBits() {
        var cmcb = CMCB()
        cmcb.notValid = true
        cmcb.chpid = 0xfe
        cmcb.cmcv = 0x15
        cmcb.cmgp = 0xf
        cmcb.cmg = 3
        cmcb.cmgs = 0xbeef
        cmcb.dpuID = 0x99
        cmcb.data = [1, 2, 3, 4, 5]
        #expect(
            cmcb.bytes == [
                0x80, 0x00, 0x00, 0xfe, 0xa8, 0x0f, 0x00, 0x03, 0x00, 0x99, 0xbe, 0xef,
                0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5,
            ])
    }

    @Test func theOlderViewIsWordsThreeToSevenMaskedByCMCV() throws {
        var cmcb = try CMCB(bytes: Self.cmcb5)
        // CMCV 0b10100: words 3 and 5 valid, 4, 6 and 7 zeroed (chsc.c chsc_initialize_cmg_chars).
        cmcb.cmcv = 0x14
        #expect(
            cmcb.measurementCharsBytes == [
                0x00, 0x4c, 0x4b, 0x40, 0, 0, 0, 0, 0x00, 0x0e, 0xe6, 0xb2, 0, 0, 0, 0, 0, 0, 0, 0,
            ])
        // chpstat places the 20 bytes at offset 12 of a zeroed block.
        let older = try CMCB(measurementChars: Array(Self.cmcb5[12...]))
        #expect(older.bytes == [UInt8](repeating: 0, count: 12) + Self.cmcb5[12...])
        #expect(older.cmg == 0 && older.chpid == 0)
    }

    @Test func speedFollowsScmcGetSpeed() {
        var cmcb = CMCB()
        cmcb.cmgs = 32
        #expect(cmcb.speedBPS == 3_200_000_000)  // cmgp 0 means 10^8
        cmcb.cmgp = 1
        #expect(cmcb.speedBPS == 320)
        cmcb.cmgs = 0
        #expect(cmcb.speedBPS == 0)
    }

    /// A CMG 2 CUE: CUIV 0xfe (words 0-6 valid, word 7 not), timestamp 0x123456.
    static let cue2: [UInt8] = [
        0xfe, 0x12, 0x34, 0x56,
        0x00, 0x00, 0x00, 0x01,  // bus_cycles_cpc
        0x00, 0x00, 0x01, 0x00,  // channel_work_units_cpc
        0x00, 0x00, 0x00, 0x80,  // channel_work_units
        0xff, 0xff, 0xff, 0xff,  // data_units_written_cpc
        0x80, 0x00, 0x00, 0x00,  // data_units_written
        0x12, 0x34, 0x56, 0x78,  // data_units_read_cpc
        0xde, 0xad, 0xbe, 0xef,  // data_units_read (invalid: CUIV bit 7 clear)
    ]

    @Test func decodesTheCUE() throws {
        let cue = try CUE(bytes: Self.cue2)
        #expect(cue.cuiv == 0xfe)
        #expect(cue.timestamp == 0x12_3456)
        #expect(cue.bytes == Self.cue2)
        let sample = MeasurementSample(cue: cue)
        let values = CMG.cmg2.entryCounters.map { $0.value(in: sample) }
        #expect(values == [1, 0x100, 0x80, 0xffff_ffff, 0x8000_0000, 0x1234_5678, nil])
        #expect(
            CMG.cmg2.utilization(of: sample).map(\.key) == [
                "timestamp", "bus_cycles_cpc", "channel_work_units_cpc", "channel_work_units", "data_units_written_cpc",
                "data_units_written", "data_units_read_cpc", "data_units_read", "total_ficon_ops_cpc",
                "total_deferred_ficon_ops_cpc", "sum_ficon_ops_cpc", "total_hpf_ops_cpc", "total_deferred_hpf_ops_cpc",
                "sum_hpf_ops_cpc",
            ])
    }

    @Test func cmg3FirmwareCUIVIsCorrectedAndNoOtherCMG() throws {
        let cue = try CUE(bytes: Self.cue2)
        #expect(cue.correctingFirmwareCUIV(for: .cmg3).cuiv == 0xff)
        #expect(cue.correctingFirmwareCUIV(for: .cmg3).timestamp == 0x12_3456)
        #expect(cue.correctingFirmwareCUIV(for: .cmg2).cuiv == 0xfe)
        var other = cue
        other.cuiv = 0xfc
        #expect(other.correctingFirmwareCUIV(for: .cmg3).cuiv == 0xfc)
    }

    /// A CMG 5 extended CUE (`ext_cue5_t`): DPU pair, then CMG 2's FICON/zHPF block with its
    /// 64-bit sums at bytes 16 and 32.
    static let extCUE5: [UInt8] =
        [
            0x00, 0x00, 0x00, 0x11,  // dpu_channel_exec_time_cpc
            0x00, 0x00, 0x00, 0x22,  // dpu_exec_time_cpc
            0x00, 0x00, 0x00, 0x33,  // total_ficon_ops_cpc
            0x00, 0x00, 0x00, 0x44,  // total_deferred_ficon_ops_cpc
            0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,  // sum_ficon_ops_cpc
            0x00, 0x00, 0x00, 0x55,  // total_hpf_ops_cpc
            0x00, 0x00, 0x00, 0x66,  // total_deferred_hpf_ops_cpc
            0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88,  // sum_hpf_ops_cpc
        ] + [UInt8](repeating: 0, count: 24)

    @Test func decodesTheExtendedCUEPerCMG() throws {
        let ext = try ExtendedCUE(bytes: Self.extCUE5)
        #expect(ext.bytes == Self.extCUE5)
        let sample = MeasurementSample(cue: CUE(), extendedCUE: ext)
        #expect(
            CMG.cmg5.extendedEntryCounters.map(\.key) == [
                "dpu_channel_exec_time_cpc", "dpu_exec_time_cpc", "total_ficon_ops_cpc", "total_deferred_ficon_ops_cpc",
                "sum_ficon_ops_cpc", "total_hpf_ops_cpc", "total_deferred_hpf_ops_cpc", "sum_hpf_ops_cpc",
            ])
        #expect(
            CMG.cmg5.extendedEntryCounters.map { $0.value(in: sample) } == [
                0x11, 0x22, 0x33, 0x44, 0x0102_0304_0506_0708, 0x55, 0x66, 0xffee_ddcc_bbaa_9988,
            ])
        // The same bytes read as CMG 2 (`ext_cue2_t`): the block starts at offset 0.
        #expect(
            CMG.cmg2.extendedEntryCounters.map { $0.value(in: sample) } == [
                0x11, 0x22, 0x0000_0033_0000_0044, 0x0102_0304, 0x0506_0708, 0x0000_0055_0000_0066,
            ])
        #expect(CMG.cmg4.extendedEntryCounters.map { $0.value(in: sample) } == [0x11, 0x22])
        #expect(CMG.cmg1.extendedEntryCounters.isEmpty && CMG.cmg3.extendedEntryCounters.isEmpty)
        // Without the extended CUE its counters are not available.
        #expect(CMG.cmg5.extendedEntryCounters.allSatisfy { $0.value(in: MeasurementSample(cue: CUE())) == nil })
    }

    @Test func wrongSizesAreRefusedNamingTheBlock() {
        #expect(throws: MeasurementBlockError.wrongSize(block: "measurement_chars_full", expected: 32, actual: 31)) {
            try CMCB(bytes: [UInt8](repeating: 0, count: 31))
        }
        #expect(throws: MeasurementBlockError.wrongSize(block: "measurement_chars", expected: 20, actual: 32)) {
            try CMCB(measurementChars: [UInt8](repeating: 0, count: 32))
        }
        #expect(throws: MeasurementBlockError.wrongSize(block: "measurement", expected: 32, actual: 0)) {
            try CUE(bytes: [UInt8]())
        }
        #expect(throws: MeasurementBlockError.wrongSize(block: "ext_measurement", expected: 64, actual: 65)) {
            try ExtendedCUE(bytes: [UInt8](repeating: 0, count: 65))
        }
        #expect(
            MeasurementBlockError.wrongSize(block: "measurement", expected: 32, actual: 0).description
                == "measurement must be 32 bytes, got 0")
    }

    @Test func unknownCMGsAreRefused() throws {
        for value in [0, 6, 255, -1, 256] {
            #expect(throws: MeasurementBlockError.unknownCMG(value)) { try CMG(checking: value) }
        }
        #expect(try CMG(checking: 4) == .cmg4)
    }

    @Test func storingACounterSetsItsValidityBit() {
        var sample = MeasurementSample(cue: CUE())
        CMG.cmg2.counter("data_units_read")!.store(0x1_0000_0005, in: &sample)
        #expect(sample.cue.cuiv == 0x01)
        #expect(sample.cue[word: 7] == 5)  // truncated to the hardware's 32 bits
        CMG.cmg5.counter("sum_hpf_ops_cpc")!.store(0xffff_ffff_0000_0001, in: &sample)
        #expect(sample.extendedCUE![doubleword: 8] == 0xffff_ffff_0000_0001)
    }
}
