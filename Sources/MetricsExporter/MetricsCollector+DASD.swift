// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import Prometheus

/// DASD path health per chpid (issue 22): `cssd_chpid_dasd_paths{chpid,state}`, the number of
/// DASDs behind the chpid whose driver has the path in each state (`in-use`, `non-preferred`,
/// `miscabled`, `cuir-quiesced`, `no-hpf`, `ifcc-disabled`, `unknown`: masks not readable), and
/// `cssd_chpid_dasd_devices{chpid}`, those whose masks are known. Only chpids with DASDs behind
/// them have these series (O(chpids) series); they go when the last DASD does. Read from the
/// backend's roll-up (`dasdChannelPathSummaries`), which is computed once per change of the
/// DASDs, so a scrape visits no device.
extension MetricsCollector {
    struct DASDSeries {
        let devices: Gauge
        let states: [Gauge]

        func unregister(from registry: PrometheusCollectorRegistry) {
            for gauge in [devices] + states { registry.unregisterGauge(gauge) }
        }
    }

    /// The `state` label values, in the order of `values(_:)`.
    static let dasdStates = [
        "in-use", "non-preferred", "miscabled", "cuir-quiesced", "no-hpf", "ifcc-disabled", "unknown",
    ]

    private static func values(_ summary: DASDChannelPathSummary) -> [Int] {
        [
            summary.inUse, summary.nonPreferred, summary.miscabled, summary.cuirQuiesced, summary.noHPF,
            summary.ifccDisabled, summary.unknown,
        ]
    }

    func collectDASD(_ backend: ChannelSubsystemBackend) {
        let summaries = backend.dasdChannelPathSummaries
        for (chpid, summary) in summaries {
            let series = dasd[chpid.rawValue] ?? makeDASDSeries(chpid)
            series.devices.set(to: Double(summary.devices))
            for (gauge, value) in zip(series.states, Self.values(summary)) { gauge.set(to: Double(value)) }
            dasd[chpid.rawValue] = series
        }
        for (key, series) in dasd
        where summaries[ChannelPathID(cssid: UInt8(key >> 8), chpid: UInt8(key & 0xff))] == nil {
            series.unregister(from: registry)
            dasd[key] = nil
        }
    }

    private func makeDASDSeries(_ id: ChannelPathID) -> DASDSeries {
        let chpid = id.description
        return DASDSeries(
            devices: registry.makeGauge(
                descriptor: .init(
                    namespace: "cssd", subsystem: "chpid", metricName: "dasd", unitName: "devices",
                    helpText: "DASDs behind the channel path whose path masks the DASD driver shows."),
                labels: [("chpid", chpid)]),
            states: Self.dasdStates.map { state in
                registry.makeGauge(
                    descriptor: .init(
                        namespace: "cssd", subsystem: "chpid", metricName: "dasd", unitName: "paths",
                        helpText:
                            "DASDs behind the channel path whose driver has the path in this state (path_masks; unknown: not readable)."
                    ),
                    labels: [("chpid", chpid), ("state", state)])
            })
    }
}
