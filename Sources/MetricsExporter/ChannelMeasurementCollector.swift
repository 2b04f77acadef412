// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import ChannelMeasurement
import Prometheus

/// The channel-measurement facility's data (issue 21) as Prometheus series, read at scrape
/// time from the backend's `channelMeasurements` (the model advances its counters to the
/// server's clock; linux-sysfs answers from its last poll tick, read off the loop). Runs on the
/// server's loop; costs O(chpids × counters), no file read.
///
/// Families (API/metrics.md "Channel measurement"; labels `chpid` as cssd's other chpid
/// families, `channel_css_chpid` with the same value as the HMC exporter's `zhmc_channel_*`
/// label, `partition` the partition's name):
/// - `cssd_channel_measurement_facility_state{state}`: enabled, disabled, unsupported; one at 1.
/// - `cssd_chpid_measurement_info{cmg,reason}`: value 1 per chpid from the start; `reason`
///   is empty while metrics are available, else the query's `reason`.
/// - per counter of the chpid's CMG, chpstat's key as the name: `cssd_chpid_<key>_total`, or
///   `cssd_chpid_<key>_seconds_total` for the counters in timer ticks (CMG 1 busy time, DPU
///   execution time). The partition's and the whole machine's (`_cpc`) counts are separate
///   families, not a label: a sum over such a label would count this partition twice. Values
///   are the tracker's 64-bit running totals (never reset by a 32-bit wrap); a counter appears
///   with the chpid's first sample (starting at the hardware's value, so no false increase) and
///   is absent while its CUIV marks it invalid.
/// - `cssd_chpid_measurement_interval_seconds_total`: the CUE timestamp's running total in
///   seconds (128 µs ticks). Rates divide by its increase, the machine's own interval, not
///   the scrape's (Deploy/prometheus/cssd-measurement-rules.yml).
/// - characteristics as gauges, chpstat's key: `cssd_chpid_<key>` (`max_channel_work_units`,
///   ..., `data_unit_size_bytes`, `dpu_num_cores`), and `cssd_chpid_speed_bytes_per_second` (`speed_bps` / 8).
///
/// A chpid's series go when it goes; a counter's family follows its CMG.
final class ChannelMeasurementCollector {
    private let registry: PrometheusCollectorRegistry
    private let facility: [String: Gauge]
    private var chpids: [ChannelPathID: ChpidSeries] = [:]

    private static let facilityStates = ["enabled", "disabled", "unsupported"]

    private struct ChpidSeries {
        var labels: [(String, String)]
        var infoLabels: [(String, String)]
        var info: Gauge
        var counters: [String: Counter] = [:]
        var gauges: [String: Gauge] = [:]
        var interval: Counter?

        func unregister(from registry: PrometheusCollectorRegistry) {
            registry.unregisterGauge(info)
            for counter in counters.values { registry.unregisterCounter(counter) }
            for gauge in gauges.values { registry.unregisterGauge(gauge) }
            if let interval { registry.unregisterCounter(interval) }
        }
    }

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        var facility: [String: Gauge] = [:]
        for state in Self.facilityStates {
            facility[state] = registry.makeGauge(
                descriptor: .init(
                    namespace: "cssd", subsystem: "channel_measurement", metricName: "facility", unitName: "state",
                    helpText: "The channel-measurement facility (css0/cm_enable); 1 for the current state."),
                labels: [("state", state)])
        }
        self.facility = facility
    }

    /// Brings the families up to date with `backend`'s facility, as of `time`. Call on the
    /// server's loop.
    func collect(backend: ChannelSubsystemBackend, at time: MeasurementTime) {
        let state = backend.channelMeasurementFacility
        for (name, gauge) in facility { gauge.set(to: name == state.description ? 1 : 0) }
        // Unsupported (the default's throw) or refused: no chpid series.
        let reports = (try? backend.channelMeasurements(nil, at: time)) ?? []
        let partition = backend.partitionName ?? ""
        var seen = Set<ChannelPathID>()
        for report in reports {
            seen.insert(report.chpid)
            collect(report, partition: partition)
        }
        for (chpid, series) in chpids where !seen.contains(chpid) {
            series.unregister(from: registry)
            chpids[chpid] = nil
        }
    }

    private func collect(_ report: ChannelMeasurementReport, partition: String) {
        let chpid = report.chpid.description
        let labels = [("chpid", chpid), ("channel_css_chpid", chpid), ("partition", partition)]
        let infoLabels =
            labels + [
                ("cmg", report.cmgValue.map { String($0) } ?? ""),
                ("reason", report.problem?.reason ?? ""),
            ]
        var series: ChpidSeries
        if let existing = chpids[report.chpid], existing.labels.elementsEqual(labels, by: { $0 == $1 }) {
            series = existing
        } else {
            chpids[report.chpid]?.unregister(from: registry)
            series = ChpidSeries(labels: labels, infoLabels: infoLabels, info: makeInfo(infoLabels))
        }
        if !series.infoLabels.elementsEqual(infoLabels, by: { $0 == $1 }) {
            registry.unregisterGauge(series.info)
            series.infoLabels = infoLabels
            series.info = makeInfo(infoLabels)
        }
        series.info.set(to: 1)

        // Counters: the families of this CMG only (a new CMG drops the old ones).
        var keep = Set<String>()
        for total in report.totals {
            guard let value = total.total else { continue }
            let name = Self.counterName(total.key)
            keep.insert(name)
            let counter = series.counters[name] ?? makeCounter(name, key: total.key, labels: labels)
            series.counters[name] = counter
            if Self.isTimerTicks(total.key) {
                counter.setTotal(CUE.secondsPerTick * Double(value))
            } else {
                counter.setTotal(Int(clamping: value))
            }
        }
        for (name, counter) in series.counters where !keep.contains(name) {
            registry.unregisterCounter(counter)
            series.counters[name] = nil
        }

        // The measurement's own clock, the tracker's running total across the 24-bit wrap (on
        // the model the model's time, which continues across a restart with --state-dir).
        if let ticks = report.timestampTicks {
            let interval =
                series.interval
                ?? registry.makeCounter(
                    descriptor: .init(
                        namespace: "cssd", subsystem: "chpid", metricName: "measurement_interval",
                        unitName: "seconds_total",
                        helpText:
                            "Running total of the measurement entry's timestamp (128 us ticks) in seconds: the denominator of the rates."
                    ),
                    labels: labels)
            series.interval = interval
            interval.setTotal(CUE.secondsPerTick * Double(ticks))
        }

        // Characteristics, and the speed.
        var gauges: [(String, Double)] = []
        for value in report.characteristics?.values ?? [] where value.key != "dpu_id" {
            guard let number = value.value else { continue }
            gauges.append((value.key == "data_unit_size" ? "data_unit_size_bytes" : value.key, number.doubleValue))
        }
        // Prometheus' base unit is the byte (promtool's lint refuses "bits").
        if let speed = report.speedBPS { gauges.append(("speed_bytes_per_second", Double(speed) / 8)) }
        var keepGauges = Set<String>()
        for (name, value) in gauges {
            keepGauges.insert(name)
            let gauge = series.gauges[name] ?? makeGauge(name, labels: labels)
            series.gauges[name] = gauge
            gauge.set(to: value)
        }
        for (name, gauge) in series.gauges where !keepGauges.contains(name) {
            registry.unregisterGauge(gauge)
            series.gauges[name] = nil
        }
        chpids[report.chpid] = series
    }

    /// Counters in timer ticks (128 µs): CMG 1's busy times, CMG 4/5's DPU execution times.
    private static func isTimerTicks(_ key: String) -> Bool { key.contains("_time") }

    private static func counterName(_ key: String) -> String {
        isTimerTicks(key) ? key + "_seconds_total" : key + "_total"
    }

    private func makeInfo(_ labels: [(String, String)]) -> Gauge {
        registry.makeGauge(
            descriptor: .init(
                namespace: "cssd", subsystem: "chpid", metricName: "measurement", unitName: "info",
                helpText:
                    "A chpid's channel measurement: its group (cmg) and why metrics are not available (reason; empty: available); value 1."
            ),
            labels: labels)
    }

    private func makeCounter(_ name: String, key: String, labels: [(String, String)]) -> Counter {
        let scope = key.hasSuffix("_cpc") ? "the whole machine (all partitions)" : "this partition"
        let unit = Self.isTimerTicks(key) ? " in seconds" : ""
        return registry.makeCounter(
            name: "cssd_chpid_" + name, labels: labels,
            help: "chpstat's \(key)\(unit), for \(scope): a 64-bit running total that survives the counter's wraps.")
    }

    private func makeGauge(_ name: String, labels: [(String, String)]) -> Gauge {
        let help =
            switch name {
            case "speed_bytes_per_second": "The channel path's operating speed (speed_bps / 8) in bytes per second."
            case "data_unit_size_bytes": "chpstat's data_unit_size: bytes per data unit."
            case "dpu_num_cores": "chpstat's dpu_num_cores: cores of the channel's data-processing unit."
            default: "chpstat's characteristic \(name) (channel-measurement characteristics block)."
            }
        return registry.makeGauge(name: "cssd_chpid_" + name, labels: labels, help: help)
    }
}

extension Counter {
    /// Sets a counter to a cumulative count in a unit with fractions (seconds).
    func setTotal(_ value: Double) {
        reset()
        increment(by: value)
    }
}
