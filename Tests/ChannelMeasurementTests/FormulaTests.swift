// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Testing

@testable import ChannelMeasurement

/// chpstat's formulas per CMG (s390-tools v2.43.0 cmg1.c ... cmg5.c) against values computed
/// by hand. The interval is 15625 ticks of 128 µs, 2 s.
@Suite struct FormulaTests {
    static let ticks: UInt32 = 15625
    /// 15625 × 0.000128 in doubles, as chpstat computes it (`tick_to_s`).
    static let seconds = 0.000128 * 15625.0

    @Test func cmg1BusyTime() {
        let a = Samples.make(
            .cmg1, timestamp: 100, ["channel_path_busy_time_cpc": 1000, "channel_path_busy_time": 500])
        let b = Samples.make(
            .cmg1, timestamp: 100 + Self.ticks, ["channel_path_busy_time_cpc": 8812, "channel_path_busy_time": 2062])
        let m = MeasurementFormulas.chpstat(
            .cmg1, characteristics: Samples.characteristics(.cmg1, [0, 0, 0, 0, 0]), from: a, to: b)
        #expect(m.map(\.key) == ["interval", "util_total", "util_part"])
        #expect(close(m.double("interval"), 2.0))
        #expect(close(m.double("util_total"), 49.9968))  // 100 × 7812 / 15625
        #expect(close(m.double("util_part"), 9.9968))  // 100 × 1562 / 15625
        // Same operations in the same order as the C: bit for bit.
        #expect(m.double("util_total") == 100.0 * 7812.0 / 15625.0)
        #expect(m.double("interval") == Self.seconds)
        #expect(m.map(\.unit) == [.number, .percent, .percent])
    }

    static let cmg2Chars: [UInt32] = [5_000_000, 4_000_000, 1_000_000, 2_000_000, 4096]
    static let cmg2A: [String: UInt64] = [
        // 2^32 - 1,000,000: the bus-cycle counter wraps during the interval.
        "bus_cycles_cpc": 0xffff_ffff - 999_999, "channel_work_units_cpc": 10, "channel_work_units": 20,
        "data_units_written_cpc": 30, "data_units_written": 40, "data_units_read_cpc": 50, "data_units_read": 60,
        "total_ficon_ops_cpc": 7, "total_deferred_ficon_ops_cpc": 8, "sum_ficon_ops_cpc": UInt64.max - 1999,
        "total_hpf_ops_cpc": 9, "total_deferred_hpf_ops_cpc": 10, "sum_hpf_ops_cpc": 11,
    ]
    static let cmg2B: [String: UInt64] = [
        "bus_cycles_cpc": 4_000_000, "channel_work_units_cpc": 2_000_010, "channel_work_units": 400_020,
        "data_units_written_cpc": 1_500_030, "data_units_written": 50, "data_units_read_cpc": 1_000_050,
        "data_units_read": 100_060,
        "total_ficon_ops_cpc": 1007, "total_deferred_ficon_ops_cpc": 28, "sum_ficon_ops_cpc": 3000,
        "total_hpf_ops_cpc": 9, "total_deferred_hpf_ops_cpc": 10, "sum_hpf_ops_cpc": 11,
    ]

    @Test func cmg2WorkDataAndFICON() {
        // The timestamp wraps too: 0xffff00 + 15625 = 15369 (mod 2^24).
        let a = Samples.make(.cmg2, timestamp: 0xff_ff00, Self.cmg2A)
        let b = Samples.make(.cmg2, timestamp: 15369, Self.cmg2B)
        let m = MeasurementFormulas.chpstat(
            .cmg2, characteristics: Samples.characteristics(.cmg2, Self.cmg2Chars), from: a, to: b)
        #expect(
            m.map(\.key) == [
                "interval", "util_total", "util_part", "util_bus", "util_data", "read_total", "read_part",
                "write_total",
                "write_part", "ficon_rate", "ficon_active", "ficon_defer", "hpf_rate", "hpf_active", "hpf_defer",
            ])
        #expect(close(m.double("interval"), 2))
        #expect(close(m.double("util_bus"), 50))  // 100 × 5,000,000 / (5,000,000 × 2)
        #expect(close(m.double("util_total"), 25))  // 100 × 2,000,000 / (4,000,000 × 2)
        #expect(close(m.double("util_part"), 5))  // 100 × 400,000 / (4,000,000 × 2)
        #expect(close(m.double("read_total"), 2_048_000_000))  // 1,000,000 × 4096 / 2
        #expect(close(m.double("read_part"), 204_800_000))
        #expect(close(m.double("write_total"), 3_072_000_000))
        #expect(close(m.double("write_part"), 20480))  // 10 × 4096 / 2
        #expect(close(m.double("util_data"), 75))  // max(100 × 1e6 / 2e6 / 2, 100 × 1.5e6 / 1e6 / 2)
        #expect(close(m.double("ficon_rate"), 500))  // 1000 / 2
        #expect(close(m.double("ficon_active"), 5))  // 5000 / 1000, the 64-bit sum wrapped
        #expect(close(m.double("ficon_defer"), 10))
        #expect(m.double("hpf_rate") == 0 && m.double("hpf_active") == 0 && m.double("hpf_defer") == 0)
        // The C's order: 100.0 * delta / (max * seconds); delta * size / seconds.
        #expect(m.double("util_total") == 100.0 * 2_000_000.0 / (4_000_000.0 * Self.seconds))
        #expect(m.double("read_total") == 1_000_000.0 * 4096.0 / Self.seconds)
        #expect(m.double("util_data") == 100.0 * 1_500_000.0 / 1_000_000.0 / Self.seconds)
    }

    @Test func cmg2InvalidCountersAndMissingExtendedEntriesGiveNoMetric() {
        var a = Samples.make(.cmg2, timestamp: 0, Self.cmg2A)
        let b = Samples.make(.cmg2, timestamp: Self.ticks, Self.cmg2B, extended: false)
        a.cue.cuiv = 0xff & ~(0x80 >> 3)  // channel_work_units (word 3) invalid in a only
        let m = MeasurementFormulas.chpstat(
            .cmg2, characteristics: Samples.characteristics(.cmg2, Self.cmg2Chars), from: a, to: b)
        #expect(m["util_part"] == nil)
        #expect(m["util_total"] != nil)
        for key in ["ficon_rate", "ficon_active", "ficon_defer", "hpf_rate", "hpf_active", "hpf_defer"] {
            #expect(m[key] == nil, "\(key)")
        }
        // A zero maximum: chpstat checks max != 0.0 for the utilizations.
        let zero = MeasurementFormulas.chpstat(
            .cmg2, characteristics: Samples.characteristics(.cmg2, [0, 0, 1_000_000, 2_000_000, 4096]), from: a, to: b)
        #expect(zero["util_total"] == nil && zero["util_bus"] == nil)
        // ... but not for util_data: 100 × Δ / 0 is inf in chpstat, and max(inf, x) is inf.
        let inf = MeasurementFormulas.chpstat(
            .cmg2, characteristics: Samples.characteristics(.cmg2, [5_000_000, 4_000_000, 1_000_000, 0, 4096]), from: a,
            to: b)
        #expect(inf.double("util_data") == .infinity)
    }

    @Test func noMetricWhenTheTimestampDidNotMove() {
        let a = Samples.make(.cmg2, timestamp: 77, Self.cmg2A)
        let m = MeasurementFormulas.chpstat(
            .cmg2, characteristics: Samples.characteristics(.cmg2, Self.cmg2Chars), from: a, to: a)
        #expect(m.allSatisfy { $0.value == nil })
        #expect(m.count == 15)
    }

    @Test func cmg3MessagesWithDefaultedUnitSizes() {
        // data_unit_size 256, data_unit_size_cpc 0 (defaults to 256), msg_unit_size 64,
        // msg_unit_size_cpc 128.
        let chars = Samples.characteristics(.cmg3, [256, 0, 64, 128, 0])
        let a = Samples.make(
            .cmg3, timestamp: 5,
            [
                "msg_units_sent": 1, "msg_units_sent_cpc": 2, "unsuccessful_attempts_to_send": 3,
                "unavailable_receive_buffers": 4, "unavailable_receive_buffers_cpc": 5, "data_units_sent": 6,
                "data_units_sent_cpc": 7,
            ])
        let b = Samples.make(
            .cmg3, timestamp: 5 + Self.ticks,
            [
                "msg_units_sent": 11, "msg_units_sent_cpc": 52, "unsuccessful_attempts_to_send": 7,
                "unavailable_receive_buffers": 6, "unavailable_receive_buffers_cpc": 11, "data_units_sent": 106,
                "data_units_sent_cpc": 1007,
            ])
        let m = MeasurementFormulas.chpstat(.cmg3, characteristics: chars, from: a, to: b)
        #expect(
            m.map(\.key) == [
                "write_part", "write_total", "msg_rate_part", "msg_rate_total", "msg_size_part", "msg_size_total",
                "send_fail_part", "rcv_fail_part", "rcv_fail_total",
            ])
        #expect(close(m.double("write_total"), 128_000))  // 1000 × 256 / 2
        #expect(close(m.double("write_part"), 12_800))  // 100 × 256 / 2
        #expect(close(m.double("msg_rate_total"), 3_200))  // 50 × 128 / 2
        #expect(close(m.double("msg_rate_part"), 320))  // 10 × 64 / 2
        #expect(close(m.double("msg_size_total"), 40))  // 1000 × 256 / (50 × 128)
        #expect(close(m.double("msg_size_part"), 40))  // 100 × 256 / (10 × 64)
        #expect(close(m.double("send_fail_part"), 2))
        #expect(close(m.double("rcv_fail_part"), 1))
        #expect(close(m.double("rcv_fail_total"), 3))
        // Every characteristic 0: sizes default to 1.
        let ones = MeasurementFormulas.chpstat(
            .cmg3, characteristics: Samples.characteristics(.cmg3, [0, 0, 0, 0, 0]), from: a, to: b)
        #expect(close(ones.double("write_total"), 500))
    }

    static let dpuChars: [UInt32] = [5_000_000, 4_000_000, 1_000_000, 2_000_000, 4 << 24 | 4096]

    @Test func cmg4DPU() {
        let a = Samples.make(.cmg4, timestamp: 0, Self.cmg2A.filter { CMG.cmg4.counter($0.key) != nil })
        var bValues = Self.cmg2B.filter { CMG.cmg4.counter($0.key) != nil }
        bValues["dpu_exec_time_cpc"] = 31250  // ticks, over 15625 ticks and 4 cores: 50 %
        bValues["dpu_channel_exec_time_cpc"] = 15625  // 25 %
        let b = Samples.make(.cmg4, timestamp: Self.ticks, bValues)
        let m = MeasurementFormulas.chpstat(
            .cmg4, characteristics: Samples.characteristics(.cmg4, Self.dpuChars), from: a, to: b)
        #expect(
            m.map(\.key) == [
                "interval", "util_total", "util_part", "util_bus", "util_data", "read_total", "read_part",
                "write_total",
                "write_part", "dpu_util", "dpu_util_total", "dpu_util_part",
            ])
        #expect(m.double("dpu_util") == 50)  // 100 × 31250 / (15625 × 4)
        #expect(m.double("dpu_util_total") == 25)
        #expect(close(m.double("dpu_util_part"), 5))  // 25 × 400,000 / 2,000,000
        #expect(close(m.double("read_total"), 2_048_000_000))  // data_unit_size is the low 24 bits
        // No cores: no DPU metrics.
        let none = MeasurementFormulas.chpstat(
            .cmg4, characteristics: Samples.characteristics(.cmg4, Self.cmg2Chars.dropLast() + [4096]), from: a, to: b)
        #expect(none["dpu_util"] == nil && none["dpu_util_part"] == nil)
    }

    @Test func cmg5FICONAndDPU() {
        let a = Samples.make(.cmg5, timestamp: 0, Self.cmg2A)
        var bValues = Self.cmg2B
        bValues["dpu_exec_time_cpc"] = 31250
        bValues["dpu_channel_exec_time_cpc"] = 0
        let b = Samples.make(.cmg5, timestamp: Self.ticks, bValues)
        let m = MeasurementFormulas.chpstat(
            .cmg5, characteristics: Samples.characteristics(.cmg5, Self.dpuChars), from: a, to: b)
        #expect(m.count == 18)
        #expect(close(m.double("ficon_rate"), 500))
        #expect(close(m.double("ficon_active"), 5))
        #expect(m.double("dpu_util") == 50)
        #expect(m.double("dpu_util_total") == 0)
        #expect(m.double("dpu_util_part") == 0)
        // Without cores the FICON metrics stay (cmg5.c returns after them).
        let noCores = MeasurementFormulas.chpstat(
            .cmg5, characteristics: Samples.characteristics(.cmg5, Self.cmg2Chars), from: a, to: b)
        #expect(close(noCores.double("ficon_rate"), 500) && noCores["dpu_util"] == nil)
    }

    @Test func deltasWrapAtTheirWidth() {
        #expect(MeasurementFormulas.delta(0xffff_fff0, 0x10, width: 32) == 0x20)
        #expect(MeasurementFormulas.delta(0xff_fff0, 0x10, width: 24) == 0x20)
        #expect(MeasurementFormulas.delta(5, 5, width: 24) == 0)
        #expect(MeasurementFormulas.delta64(UInt64.max, 0) == 1)
    }
}
