// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import ChannelMeasurement
import Foundation
import Synchronization
import TestSupport
import Testing

@testable import LinuxSysfs

/// The backend requirement over fixture trees: passes fed to the tracker, the query's
/// reports, the facility switched through `cm_enable`.
@Suite struct SysfsMeasurementQueryTests {
    typealias T = MeasurementSysfsTests
    static let chp40 = T.chp40
    static let chp41 = T.chp41

    /// A CMG 2 path: max 2000 work units/s, data unit 64 bytes; counters as given.
    static func cmg2(_ tree: SysfsTree, timestamp: UInt32, cwu: UInt32, cwuCPC: UInt32) {
        tree.measurement(
            "40", cmg: 2, characteristics: T.cmcb(cmg: 2, data: [1000, 2000, 3000, 4000, 64]),
            entry: T.cue(timestamp: timestamp, [0, cwuCPC, cwu, 0, 0, 0, 0]),
            extended: bigEndian(Array(repeating: 0, count: 16)), speed: "32G")
    }

    static func total(_ report: ChannelMeasurementReport, _ key: String) -> UInt64? {
        report.totals.first { $0.key == key }?.total
    }

    static func metric(_ report: ChannelMeasurementReport, _ key: String) -> Double? {
        guard case .double(let value)? = report.metrics?.first(where: { $0.key == key })?.value else { return nil }
        return value
    }

    /// Two ticks' samples make an interval: chpstat's utilization, and totals that went on
    /// through the 32-bit wrap of a counter.
    @Test func twoSamplesGiveMetricsAndTotalsThroughAWrap() throws {
        let tree = T.tree()
        // 1 s = 7812.5 ticks of 128 µs; 7813 ticks ≈ 1.000064 s.
        Self.cmg2(tree, timestamp: 100, cwu: 0xffff_ff00, cwuCPC: 1000)
        let backend = try SysfsBackend(root: tree.root, procRoot: tree.procRoot)
        var report = try #require(try backend.channelMeasurements([Self.chp40], at: .zero).first)
        #expect(report.problem == .firstSample && report.samples == 1)
        #expect(Self.total(report, "channel_work_units") == 0xffff_ff00)
        Self.cmg2(tree, timestamp: 100 + 7813, cwu: 0x100, cwuCPC: 1000 + 1000)  // 0x200 work units, through the wrap
        backend.measureNow()
        report = try #require(try backend.channelMeasurements([Self.chp40], at: .zero).first)
        #expect(report.problem == nil && report.samples == 2)
        #expect(Self.total(report, "channel_work_units") == 0xffff_ff00 + 0x200)
        #expect(Self.total(report, "channel_work_units_cpc") == 2000)
        // util_total = 100 · Δcwu_cpc / (max_cwu · s) = 100 · 1000 / (2000 · 7813 · 0.000128)
        let seconds = 7813 * 0.000128
        #expect(Self.metric(report, "util_total") == 100.0 * 1000 / (2000 * seconds))
        #expect(Self.metric(report, "util_part") == 100.0 * 512 / (2000 * seconds))
        #expect(report.characteristics?.cmcb.bytes == T.cmcb(cmg: 2, data: [1000, 2000, 3000, 4000, 64]))
        #expect(report.speedBPS == 32_000_000_000)
    }

    /// A pass whose file could not be read is that chpid's problem; its group stays, so its
    /// totals go on from the last good sample (never reset, never zero).
    @Test func aFailedReadKeepsTheTotals() throws {
        let tree = T.tree()
        Self.cmg2(tree, timestamp: 100, cwu: 0xffff_fff0, cwuCPC: 10)
        let backend = try SysfsBackend(root: tree.root, procRoot: tree.procRoot)
        tree.writeBytes("devices/css0/chp0.40/measurement", [1, 2, 3])
        backend.measureNow()
        var report = try #require(try backend.channelMeasurements(nil, at: .zero).first { $0.chpid == Self.chp40 })
        #expect(report.problem == .malformed(.wrongSize(block: "chp0.40/measurement", expected: 32, actual: 3)))
        #expect(report.metrics == nil && report.cmgValue == 2)
        #expect(Self.total(report, "channel_work_units") == 0xffff_fff0)
        Self.cmg2(tree, timestamp: 9000, cwu: 0x10, cwuCPC: 30)
        backend.measureNow()
        report = try #require(try backend.channelMeasurements([Self.chp40], at: .zero).first)
        #expect(report.problem == nil)
        #expect(Self.total(report, "channel_work_units") == 0xffff_fff0 + 0x20)
    }

    /// A `cmg` that is not a number is said as such, not as "no CMG"; `unknown` is "no CMG";
    /// the facility off is said for every chpid; an unknown selected chpid is refused.
    @Test func reasonsPerChpid() throws {
        let tree = T.tree()
        Self.cmg2(tree, timestamp: 100, cwu: 1, cwuCPC: 1)
        tree.write("devices/css0/chp0.41/cmg", "two\n")
        let backend = try SysfsBackend(root: tree.root, procRoot: tree.procRoot)
        var reports = try backend.channelMeasurements(nil, at: .zero)
        #expect(reports.map(\.chpid) == [Self.chp40, Self.chp41])
        #expect(reports[1].problem == .unreadable(file: "cmg", detail: "reads 'two', not a channel-measurement group"))
        tree.write("devices/css0/chp0.41/cmg", "unknown\n")
        _ = try backend.refresh()
        backend.measureNow()
        reports = try backend.channelMeasurements([Self.chp41], at: .zero)
        #expect(reports[0].problem == .noGroup)
        #expect(throws: BackendError.self) {
            try backend.channelMeasurements([ChannelPathID(cssid: 0, chpid: 0x99)], at: .zero)
        }
        tree.cmEnable(0)
        backend.measureNow()
        #expect(backend.channelMeasurementFacility == .disabled)
        reports = try backend.channelMeasurements(nil, at: .zero)
        #expect(reports[0].problem == .facilityDisabled)
    }

    /// The counters moved but the timestamp did not: no rate, and one log line for the
    /// episode, however many passes see it.
    @Test func aTimestampThatDidNotMoveIsLoggedOnce() throws {
        let tree = T.tree()
        Self.cmg2(tree, timestamp: 100, cwu: 1, cwuCPC: 1)
        let backend = try SysfsBackend(root: tree.root, procRoot: tree.procRoot)
        let logged = Mutex<[String]>([])
        backend.follower.inspect { mirror in mirror.log = { _, message in logged.withLock { $0.append(message) } } }
        Self.cmg2(tree, timestamp: 100, cwu: 5, cwuCPC: 5)
        backend.measureNow()
        backend.measureNow()
        let report = try #require(try backend.channelMeasurements([Self.chp40], at: .zero).first)
        #expect(report.problem == .timestampDidNotMove && report.metrics == nil)
        #expect(logged.withLock { $0 }.filter { $0.contains("0.40") }.count == 1)
    }

    /// `set-channel-measurement`'s backend part: the blocking write, then the state the pass
    /// after it found; the kernel's EIO names the authorization; without `cm_enable` the
    /// switch is refused before any write.
    @Test func theFacilityIsSwitchedThroughCMEnable() throws {
        let tree = T.tree()
        tree.cmEnable(0)
        let backend = try SysfsBackend(root: tree.root, procRoot: tree.procRoot)
        #expect(backend.channelMeasurementFacility == .disabled)
        let write = try backend.planChannelMeasurement(enable: true)
        let blocking = try #require(write.perform)
        let outcome = blocking()
        let state = try backend.completeChannelMeasurement(write, outcome)
        #expect(state == .enabled)
        #expect(tree.read("devices/css0/cm_enable") == "1")
        let off = try backend.setChannelMeasurement(enable: false)
        #expect(off == .disabled)

        let refusing = try SysfsBackend(
            root: tree.root, procRoot: tree.procRoot, writer: MeasurementFacilityTests.UnauthorizedPartition())
        let refused = try refusing.planChannelMeasurement(enable: true)
        let perform = try #require(refused.perform)
        let refusal = perform()
        do {
            _ = try refusing.completeChannelMeasurement(refused, refusal)
            Issue.record("enabling succeeded in an unauthorized partition")
        } catch {
            #expect(error.description.contains("Global performance data control"))
        }
        #expect(refusing.channelMeasurementFacility == .disabled)

        tree.remove("devices/css0/cm_enable")
        let without = try SysfsBackend(root: tree.root, procRoot: tree.procRoot)
        guard case .unsupported = without.channelMeasurementFacility else {
            Issue.record("no cm_enable read as \(without.channelMeasurementFacility)")
            return
        }
        #expect(throws: BackendError.self) { try without.planChannelMeasurement(enable: true) }
    }
}
