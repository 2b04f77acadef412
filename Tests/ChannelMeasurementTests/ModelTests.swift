// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import Testing

@testable import ChannelMeasurement

/// The model's facility: off at start, authorization, loads driving counters as a pure
/// function of the time passed in, the hardware's wraps.
@Suite struct ModelTests {
    static func id(_ chpid: UInt8) -> ChannelPathID { ChannelPathID(cssid: 0, chpid: chpid) }

    static func model(_ cmgs: [UInt8: CMG?], authorized: Bool = true) -> MeasurementModel {
        var channels: [ChannelPathID: MeasurementModel.Channel] = [:]
        for (chpid, cmg) in cmgs {
            channels[id(chpid)] = MeasurementModel.Channel(
                cmg: cmg, cmcb: MeasurementModel.defaultCMCB(for: cmg, chpid: chpid, shared: true))
        }
        return MeasurementModel(channels: channels, authorized: authorized)
    }

    @Test func theFacilityStartsDisabledAndNeedsAuthorization() throws {
        var model = Self.model([0x40: .cmg2], authorized: false)
        #expect(!model.enabled)
        #expect(model.reading(Self.id(0x40), at: .seconds(1))?.problem == .facilityDisabled)
        #expect(model.reading(Self.id(0x40), at: .seconds(1))?.sample == nil)
        #expect(throws: MeasurementFacilityError.notAuthorized) { try model.setEnabled(true) }
        #expect(MeasurementFacilityError.notAuthorized.description.contains("Global performance data control"))
        try model.setEnabled(false)
        model.authorized = true
        try model.setEnabled(true)
        let reading = try #require(model.reading(Self.id(0x40), at: .seconds(1)))
        #expect(reading.problem == nil)
        #expect(reading.cmg == 2)
        #expect(reading.fullCharacteristics)
        #expect(reading.speedBPS == 32_000_000_000)
        #expect(reading.sample?.extendedCUE != nil)
        #expect(reading.sample?.cue.cuiv == 0xff)
        #expect(model.reading(Self.id(0x99), at: .zero) == nil)
    }

    @Test func entriesChangeOnlyAtUpdateBoundaries() throws {
        var model = Self.model([0x40: .cmg2])
        try model.setEnabled(true)
        try model.setLoad(Self.id(0x40), ["util_part": 50], at: .zero)
        let at2 = model.reading(Self.id(0x40), at: .seconds(2))
        #expect(model.reading(Self.id(0x40), at: .milliseconds(3999)) == at2)
        #expect(at2?.sample?.cue.timestamp == 15625)  // 2 s in 128 µs units
        #expect(at2?.sample.map { CMG.cmg2.counter("channel_work_units")!.value(in: $0) } == 4_000_000)
        #expect(model.reading(Self.id(0x40), at: .seconds(4))?.sample?.cue.timestamp == 31250)
    }

    /// Every CMG: a load of every key it takes comes back from chpstat's formulas over an
    /// interval of the model's updates.
    @Test(arguments: CMG.allCases) func loadsComeBackAsChpstatMetrics(cmg: CMG) throws {
        var model = Self.model([0x40: cmg])
        try model.setEnabled(true)
        var load: [String: Double] = [:]
        for (index, key) in ChannelLoad.keys(for: cmg).enumerated() {
            // Percentages from 10 to 66, rates from 0.7 to 10.5 million (under the 10.7 million
            // units/s the tracker can follow with the default characteristics).
            load[key] = key.contains("util") ? Double(10 + index * 4) : Double(700_000 * (index + 1))
        }
        if cmg.countsWorkUnits {
            load["util_total"] = 60
            load["util_part"] = 20
        }
        try model.setLoad(Self.id(0x40), load, at: .zero)
        var tracker = MeasurementTracker()
        tracker.record(try #require(model.reading(Self.id(0x40), at: .seconds(10))), at: 10)
        tracker.record(try #require(model.reading(Self.id(0x40), at: .seconds(70))), at: 70)
        let report = try #require(tracker.report(Self.id(0x40)))
        #expect(report.problem == nil)
        let metrics = try #require(report.metrics)
        for (key, value) in load {
            // The counters are whole units: over 60 s the rounding stays below 1e-4 relative.
            let got = try #require(metrics.double(key), "\(key)")
            #expect(abs(got - value) <= 1e-4 * value, "\(key): \(got) vs \(value)")
        }
        if cmg != .cmg3 { #expect(close(metrics.double("interval"), 60)) }
    }

    @Test func aLoadTakesEffectAtTheNextBoundary() throws {
        var model = Self.model([0x40: .cmg1])
        try model.setEnabled(true)
        let busy = CMG.cmg1.counter("channel_path_busy_time")!
        try model.setLoad(Self.id(0x40), ["util_part": 100], at: .milliseconds(2500))
        // Set at 2.5 s: in force from 4 s.
        #expect(model.reading(Self.id(0x40), at: .seconds(4)).flatMap { $0.sample.flatMap(busy.value) } == 0)
        #expect(model.reading(Self.id(0x40), at: .seconds(6)).flatMap { $0.sample.flatMap(busy.value) } == 15625)
        // Set twice within one interval: the later one wins; the earlier interval is kept.
        try model.setLoad(Self.id(0x40), ["util_part": 0], at: .milliseconds(6100))
        try model.setLoad(Self.id(0x40), ["util_part": 50], at: .milliseconds(7000))
        #expect(model.reading(Self.id(0x40), at: .seconds(8)).flatMap { $0.sample.flatMap(busy.value) } == 31250)
        #expect(model.reading(Self.id(0x40), at: .seconds(10)).flatMap { $0.sample.flatMap(busy.value) } == 39062)
    }

    @Test func loadsTheCMGCannotTakeAreRefused() {
        var model = Self.model([0x40: .cmg3, 0x41: nil])
        #expect(throws: MeasurementFacilityError.self) { try model.setLoad(Self.id(0x40), ["util_part": 1], at: .zero) }
        do {
            try model.setLoad(Self.id(0x40), ["util_part": 1], at: .zero)
        } catch {
            #expect(error.description.hasPrefix("load key 'util_part' is not one CMG 3 can be driven by"))
        }
        #expect(throws: MeasurementFacilityError.load(.badValue("write_part", -1))) {
            try model.setLoad(Self.id(0x40), ["write_part": -1], at: .zero)
        }
        #expect(throws: MeasurementFacilityError.load(.noGroup)) {
            try model.setLoad(Self.id(0x41), [:], at: .zero)
        }
        #expect(throws: MeasurementFacilityError.unknownChannelPath(Self.id(0x42))) {
            try model.setLoad(Self.id(0x42), [:], at: .zero)
        }
    }

    /// 40 minutes at full load, read once a minute: the bus-cycle counter wraps its 32 bits
    /// several times, the timestamp its 24 bits once; the running totals equal the model's
    /// exact counts.
    @Test func runningTotalsMatchTheExactCountsAcrossWraps() throws {
        var model = Self.model([0x40: .cmg5])
        try model.setEnabled(true)
        try model.setLoad(
            Self.id(0x40),
            ["util_bus": 100, "util_total": 90, "read_total": 4e9, "ficon_rate": 1e6, "ficon_active": 40],
            at: .zero)
        var tracker = MeasurementTracker()
        var wrappedTimestamp = false
        var last: UInt32 = 0
        for minute in 0...40 {
            let time = Duration.seconds(minute * 60)
            let reading = try #require(model.reading(Self.id(0x40), at: time))
            if let timestamp = reading.sample?.cue.timestamp {
                if timestamp < last { wrappedTimestamp = true }
                last = timestamp
            }
            tracker.record(reading, at: Double(minute * 60))
            #expect(tracker.report(Self.id(0x40))?.problem == (minute == 0 ? .firstSample : nil))
        }
        #expect(wrappedTimestamp)
        let exact = model.exactCounts(Self.id(0x40), at: .seconds(2400))
        #expect(exact["bus_cycles_cpc"]! > 2 * UInt64(UInt32.max))
        let report = try #require(tracker.report(Self.id(0x40)))
        for total in report.totals {
            #expect(total.total == (exact[total.key] ?? 0), "\(total.key)")
        }
        #expect(close(report.metrics?.double("util_bus"), 100))
    }

    @Test func defaultsFollowThePathType() {
        #expect(MeasurementModel.defaultCMG(forType: 0x1a) == .cmg2)
        #expect(MeasurementModel.defaultCMG(forType: 0x11) == .cmg1)
        #expect(MeasurementModel.defaultCMG(forType: 0x23) == .cmg3)
        #expect(MeasurementModel.defaultCMG(forType: 0x32) == nil)
        let cmcb = MeasurementModel.defaultCMCB(for: .cmg4, chpid: 0x40, shared: false)
        #expect(cmcb.cmg == 4 && cmcb.chpid == 0x40 && cmcb.extended && !cmcb.shared)
        #expect(CMGCharacteristics(cmg: .cmg4, cmcb: cmcb, full: true).dpuNumCores == 4)
    }
}

/// The facility a topology sets up, and the topology errors naming the field.
@Suite struct ModelTopologyTests {
    static func topology(_ paths: [Topology.MeasuredPath], authorized: Bool = true) -> Topology {
        Topology(
            channelSubsystems: [Topology.ChannelSubsystem(cssid: 0)],
            channelPaths: [
                Topology.ChannelPath(id: ModelTests.id(0x40), type: 0x1a),
                Topology.ChannelPath(id: ModelTests.id(0x60), type: 0x11),
            ],
            subchannels: [], measurement: Topology.Measurement(authorized: authorized, chpids: paths))
    }

    @Test func groupsLoadsAndAuthorizationComeFromTheTopology() throws {
        let topology = Self.topology(
            [
                Topology.MeasuredPath(id: ModelTests.id(0x40), cmg: .group(4), load: ["dpu_util": 30]),
                Topology.MeasuredPath(id: ModelTests.id(0x60), cmg: .none),
            ], authorized: false)
        var model = try MeasurementModel(topology: topology, subsystem: try Subsystem(topology: topology))
        #expect(!model.authorized)
        #expect(model.channels[ModelTests.id(0x40)]?.cmg == .cmg4)
        #expect(model.channels[ModelTests.id(0x60)]?.cmg == nil)
        model.authorized = true
        try model.setEnabled(true)
        // In force from time 0: 30 % of 4 cores for 2 s in 128 µs ticks.
        let sample = try #require(model.reading(ModelTests.id(0x40), at: .seconds(2))?.sample)
        #expect(CMG.cmg4.counter("dpu_exec_time_cpc")?.value(in: sample) == 18750)
        // Without the section: groups by type, authorized.
        var plain = Self.topology([])
        plain.measurement = nil
        let defaults = try MeasurementModel(topology: plain, subsystem: try Subsystem(topology: plain))
        #expect(defaults.authorized)
        #expect(defaults.channels[ModelTests.id(0x60)]?.cmg == .cmg1)
    }

    @Test(arguments: [
        (Topology.MeasuredPath(id: ModelTests.id(0x41)), "channel-measurement.chpids[0].chpid"),
        (Topology.MeasuredPath(id: ModelTests.id(0x40), cmg: .group(6)), "channel-measurement.chpids[0].cmg"),
        (
            Topology.MeasuredPath(id: ModelTests.id(0x60), load: ["util_bus": 5]),
            "channel-measurement.chpids[0].load.util_bus"
        ),
        (
            Topology.MeasuredPath(id: ModelTests.id(0x40), load: ["util_bus": -5]),
            "channel-measurement.chpids[0].load.util_bus"
        ),
        (
            Topology.MeasuredPath(id: ModelTests.id(0x40), cmg: .none, load: ["util_bus": 5]),
            "channel-measurement.chpids[0].load"
        ),
    ])
    func badSetupsNameTheField(_ path: Topology.MeasuredPath, _ field: String) throws {
        let topology = Self.topology([path])
        let subsystem = try Subsystem(topology: topology)
        #expect(throws: TopologyError.self) { try MeasurementModel(topology: topology, subsystem: subsystem) }
        do {
            _ = try MeasurementModel(topology: topology, subsystem: subsystem)
        } catch {
            #expect(error.field == field, "\(error)")
        }
    }
}

/// Loads at the edge: counters beyond 64 bits wrap instead of trapping, and loads no hardware
/// could count are refused.
@Suite struct ModelLimitTests {
    @Test func countersBeyondSixtyFourBitsWrapInsteadOfTrapping() throws {
        var model = ModelTests.model([0x40: .cmg2])
        try model.setEnabled(true)
        // 1e16 FICON operations in flight per second (1e6/s active 1e10 each) for ten years:
        // about 3e24 in the 64-bit sum, past 2^64.
        try model.setLoad(
            ModelTests.id(0x40), ["read_total": 4e10, "ficon_rate": 1e6, "ficon_active": 1e10], at: .zero)
        let tenYears = Duration.seconds(10 * 365 * 86400)
        let sample = try #require(model.reading(ModelTests.id(0x40), at: tenYears)?.sample)
        #expect(CMG.cmg2.counter("data_units_read")?.value(in: sample) != nil)
        #expect(CMG.cmg2.counter("sum_ficon_ops_cpc")?.value(in: sample) != nil)
    }

    /// A load whose 32-bit counter moves 2^31 or more between two of the tracker's readings
    /// (`MeasurementModel.trackingInterval` apart) would show as a wrong rate or a counter that
    /// went backwards: 1e13 bytes/s of 4096-byte units is 2.4e9 units/s, 2^32 in 1.8 s. Before
    /// the limit it was accepted, and chpstat's read_total over 200 s came out as 1.3e10.
    @Test func loadsTheTrackerCannotFollowAreRefused() throws {
        var model = ModelTests.model([0x40: .cmg2, 0x41: .cmg3])
        try model.setEnabled(true)
        #expect(throws: MeasurementFacilityError.self) {
            try model.setLoad(ModelTests.id(0x40), ["read_total": 1e13], at: .zero)
        }
        do {
            try model.setLoad(ModelTests.id(0x40), ["util_part": 10, "read_total": 1e13], at: .zero)
            Issue.record("a read_total of 1e13 bytes/s was accepted")
        } catch {
            #expect(error.description.hasPrefix("load key 'read_total' makes counter data_units_read_cpc advance"))
        }
        // ficon_rate × ficon_active drives a 64-bit sum: 1e15 × 1e15 is past 2^63 in 200 s.
        #expect(throws: MeasurementFacilityError.self) {
            try model.setLoad(ModelTests.id(0x40), ["ficon_rate": 1e15, "ficon_active": 1e15], at: .zero)
        }
        // CMG 3's counters count units of 256 bytes: 1e13 bytes/s is too fast there too.
        #expect(throws: MeasurementFacilityError.self) {
            try model.setLoad(ModelTests.id(0x41), ["write_total": 1e13], at: .zero)
        }
        // Every load that is accepted comes back through the tracker fed every
        // trackingInterval: the largest read_total just under the limit.
        let limit = Double(UInt64(1) << 31) / 200 * 4096
        let load = limit * 0.999
        try model.setLoad(ModelTests.id(0x40), ["read_total": load], at: .zero)
        var tracker = MeasurementTracker()
        let step = MeasurementModel.trackingInterval
        for n in 1...3 {
            let at = step * n
            tracker.record(try #require(model.reading(ModelTests.id(0x40), at: at)), at: Double(n) * 200)
        }
        let got = try #require(tracker.report(ModelTests.id(0x40))?.metrics?.double("read_total"))
        #expect(abs(got - load) <= 1e-6 * load, "\(got) vs \(load)")
    }

    @Test func loadsNoHardwareCouldCountAreRefused() {
        var model = ModelTests.model([0x40: .cmg2])
        #expect(throws: MeasurementFacilityError.load(.badValue("util_part", 1e300))) {
            try model.setLoad(ModelTests.id(0x40), ["util_part": 1e300], at: .zero)
        }
    }
}
