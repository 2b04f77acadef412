// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import Testing

@testable import ChannelMeasurement

/// The interval tracker: running totals across each counter width's wrap, and the per-chpid
/// "not available" reasons.
@Suite struct TrackerTests {
    static let chpid = ChannelPathID(cssid: 0, chpid: 0x40)
    static let other = ChannelPathID(cssid: 0, chpid: 0x41)
    static let cmcb = Samples.cmcb(.cmg2, [5_000_000, 4_000_000, 1_000_000, 2_000_000, 4096])

    static func reading(
        _ timestamp: UInt32, _ counters: [String: UInt64], chpid: ChannelPathID = chpid, cmg: Int? = 2
    ) -> ChannelMeasurementReading {
        ChannelMeasurementReading(
            chpid: chpid, cmg: cmg, characteristics: cmcb, fullCharacteristics: true,
            sample: Samples.make(.cmg2, timestamp: timestamp, counters))
    }

    static func total(_ report: ChannelMeasurementReport?, _ key: String) -> UInt64? {
        report?.totals.first { $0.key == key }?.total
    }

    @Test func totalsSurviveThe32BitWrap() {
        var tracker = MeasurementTracker()
        tracker.record(Self.reading(0, ["channel_work_units": 0xffff_ff00]), at: 0)
        #expect(tracker.report(Self.chpid)?.problem == .firstSample)
        #expect(tracker.report(Self.chpid)?.metrics == nil)
        #expect(Self.total(tracker.report(Self.chpid), "channel_work_units") == 0xffff_ff00)
        tracker.record(Self.reading(15625, ["channel_work_units": 0x100]), at: 2)
        #expect(Self.total(tracker.report(Self.chpid), "channel_work_units") == 0x1_0000_0100)
        tracker.record(Self.reading(31250, ["channel_work_units": 0xffff_0000]), at: 4)
        tracker.record(Self.reading(46875, ["channel_work_units": 5]), at: 6)
        // Two wraps: 2^33 + 5.
        #expect(Self.total(tracker.report(Self.chpid), "channel_work_units") == 0x2_0000_0005)
        let report = tracker.report(Self.chpid)
        #expect(report?.problem == nil)
        #expect(report?.samples == 4)
        // 0x10005 units over 2 s against 4,000,000 per second.
        #expect(close(report?.metrics?.double("util_part"), 100.0 * 65541 / (4_000_000 * 2)))
    }

    @Test func totalsSurviveThe64BitWrap() {
        var tracker = MeasurementTracker()
        tracker.record(Self.reading(0, ["sum_ficon_ops_cpc": UInt64.max - 9]), at: 0)
        tracker.record(Self.reading(15625, ["sum_ficon_ops_cpc": 20]), at: 2)
        // The running total is 64 bits too: it wraps with the counter (an exporter's counter
        // would see a reset there, after 2^64 operations).
        #expect(Self.total(tracker.report(Self.chpid), "sum_ficon_ops_cpc") == 20)
        #expect(tracker.report(Self.chpid)?.problem == nil)
    }

    @Test func theTimestampWrapGivesTheRightInterval() {
        var tracker = MeasurementTracker()
        tracker.record(Self.reading(0xff_ff00, ["bus_cycles_cpc": 0]), at: 100)
        tracker.record(Self.reading(15369, ["bus_cycles_cpc": 5_000_000]), at: 102)
        let metrics = tracker.report(Self.chpid)?.metrics
        #expect(close(metrics?.double("interval"), 2))
        #expect(close(metrics?.double("util_bus"), 50))
    }

    @Test func aCounterGoingBackwardsIsNotAWrap() {
        var tracker = MeasurementTracker()
        tracker.record(Self.reading(0, ["data_units_read": 1000, "channel_work_units": 10]), at: 0)
        tracker.record(Self.reading(100, ["data_units_read": 990, "channel_work_units": 20]), at: 1)
        let report = tracker.report(Self.chpid)
        #expect(report?.problem == .counterWentBackwards(key: "data_units_read", last: 1000, current: 990))
        #expect(report?.metrics == nil)
        // No delta is counted for that interval, the new value is the next baseline.
        #expect(Self.total(report, "data_units_read") == 1000)
        #expect(Self.total(report, "channel_work_units") == 10)
        tracker.record(Self.reading(200, ["data_units_read": 1000, "channel_work_units": 30]), at: 2)
        #expect(Self.total(tracker.report(Self.chpid), "data_units_read") == 1010)
        #expect(Self.total(tracker.report(Self.chpid), "channel_work_units") == 20)
        #expect(tracker.report(Self.chpid)?.problem == nil)
    }

    @Test func theSameTimestampIsNoNewSampleAndChangedCountersUnderItAreAProblem() {
        var tracker = MeasurementTracker()
        tracker.record(Self.reading(0, ["channel_work_units": 1]), at: 0)
        tracker.record(Self.reading(15625, ["channel_work_units": 8_000_001]), at: 2)
        let metrics = tracker.report(Self.chpid)?.metrics
        #expect(metrics != nil)
        // Read again before the machine's next update: nothing new, the last interval stays.
        tracker.record(Self.reading(15625, ["channel_work_units": 8_000_001]), at: 3)
        #expect(tracker.report(Self.chpid)?.metrics == metrics)
        #expect(tracker.report(Self.chpid)?.samples == 2)
        // Counters that moved under the same timestamp: inconsistent.
        tracker.record(Self.reading(15625, ["channel_work_units": 9_000_000]), at: 3.5)
        #expect(tracker.report(Self.chpid)?.problem == .timestampDidNotMove)
        #expect(tracker.report(Self.chpid)?.metrics == nil)
        #expect(Self.total(tracker.report(Self.chpid), "channel_work_units") == 8_000_001)
    }

    @Test func samplesTooFarApartHaveNoMetrics() {
        var tracker = MeasurementTracker()
        tracker.record(Self.reading(0, ["channel_work_units": 1]), at: 0)
        tracker.record(Self.reading(15625, ["channel_work_units": 2]), at: 2200)
        #expect(tracker.report(Self.chpid)?.problem == .intervalTooLong(seconds: 2200))
        #expect(tracker.report(Self.chpid)?.metrics == nil)
    }

    @Test func badChpidsAreReportedAndTheOthersServed() {
        var tracker = MeasurementTracker()
        tracker.record(Self.reading(0, [:], chpid: Self.other, cmg: 7), at: 0)
        tracker.record(Self.reading(0, [:]), at: 0)
        tracker.record(
            ChannelMeasurementReading(chpid: ChannelPathID(cssid: 0, chpid: 0x42), cmg: nil), at: 0)
        tracker.record(
            ChannelMeasurementReading(
                chpid: ChannelPathID(cssid: 0, chpid: 0x43), cmg: 2,
                problem: .malformed(.wrongSize(block: "measurement", expected: 32, actual: 31))), at: 0)
        tracker.record(Self.reading(15625, ["channel_work_units": 800_000]), at: 2)
        #expect(tracker.report(Self.other)?.problem == .unknownGroup(7))
        #expect(tracker.report(ChannelPathID(cssid: 0, chpid: 0x42))?.problem == .noGroup)
        #expect(tracker.report(ChannelPathID(cssid: 0, chpid: 0x43))?.problem?.reason == "malformed")
        #expect(close(tracker.report(Self.chpid)?.metrics?.double("util_part"), 10))
        #expect(tracker.reports.map(\.chpid.chpid) == [0x40, 0x41, 0x42, 0x43])
    }

    @Test func withoutCharacteristicsTheTotalsCountButNoRateIsGiven() {
        var tracker = MeasurementTracker()
        var first = Self.reading(0, ["data_units_read": 10])
        first.characteristics = nil
        var second = Self.reading(15625, ["data_units_read": 30])
        second.characteristics = nil
        tracker.record(first, at: 0)
        tracker.record(second, at: 2)
        let report = tracker.report(Self.chpid)
        #expect(report?.metrics == nil)
        #expect(report?.problem?.reason == "missing")
        #expect(Self.total(report, "data_units_read") == 30)
        // CMG 1 has no characteristics and needs none.
        var busy = ChannelMeasurementReading(
            chpid: Self.other, cmg: 1,
            sample: Samples.make(.cmg1, timestamp: 0, ["channel_path_busy_time": 0]))
        tracker.record(busy, at: 0)
        busy.sample = Samples.make(.cmg1, timestamp: 15625, ["channel_path_busy_time": 7812])
        tracker.record(busy, at: 2)
        #expect(close(tracker.report(Self.other)?.metrics?.double("util_part"), 49.9968))
    }

    @Test func aNewGroupStartsAgain() {
        var tracker = MeasurementTracker()
        tracker.record(Self.reading(0, ["channel_work_units": 100]), at: 0)
        tracker.record(Self.reading(15625, ["channel_work_units": 200]), at: 2)
        // The same path now reports CMG 1: other counters, so no delta across the change.
        tracker.record(
            ChannelMeasurementReading(
                chpid: Self.chpid, cmg: 1,
                sample: Samples.make(.cmg1, timestamp: 31250, ["channel_path_busy_time": 5])), at: 4)
        let report = tracker.report(Self.chpid)
        #expect(report?.cmg == .cmg1)
        #expect(report?.problem == .firstSample)
        #expect(report?.samples == 1)
        #expect(report?.totals.map(\.key) == ["channel_path_busy_time_cpc", "channel_path_busy_time"])
        #expect(Self.total(report, "channel_path_busy_time") == 5)
    }

    @Test func infinityFromAZeroMaximumIsNotAvailable() {
        var tracker = MeasurementTracker()
        var zero = Self.reading(0, ["data_units_read_cpc": 0])
        zero.characteristics = Samples.cmcb(.cmg2, [5_000_000, 4_000_000, 0, 0, 4096])
        tracker.record(zero, at: 0)
        var next = Self.reading(15625, ["data_units_read_cpc": 100])
        next.characteristics = zero.characteristics
        tracker.record(next, at: 2)
        let metrics = tracker.report(Self.chpid)?.metrics
        #expect(metrics != nil)
        #expect(metrics?["util_data"] == nil)
        #expect(close(metrics?.double("read_total"), 100 * 4096 / 2))
    }

    @Test func aDisabledFacilityRestartsTheBaselineButKeepsTheTotals() {
        var tracker = MeasurementTracker()
        tracker.record(Self.reading(0, ["channel_work_units": 100]), at: 0)
        tracker.record(Self.reading(15625, ["channel_work_units": 200]), at: 2)
        tracker.record(ChannelMeasurementReading(chpid: Self.chpid, cmg: 2, problem: .facilityDisabled), at: 3)
        #expect(tracker.report(Self.chpid)?.problem == .facilityDisabled)
        #expect(Self.total(tracker.report(Self.chpid), "channel_work_units") == 200)
        // Re-enabled: the counters may have restarted; the totals continue from the new baseline.
        tracker.record(Self.reading(99, ["channel_work_units": 5]), at: 10)
        #expect(tracker.report(Self.chpid)?.problem == .firstSample)
        tracker.record(Self.reading(99 + 15625, ["channel_work_units": 25]), at: 12)
        #expect(Self.total(tracker.report(Self.chpid), "channel_work_units") == 220)
    }
}
