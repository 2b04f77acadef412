// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import Prometheus

/// Redundancy of the devices in use, per channel path and per css: what an operator must act
/// on before (or after) a path goes. Read from the counts the model keeps up to date
/// (`Subsystem.redundancy(ofPathAt:)`, `redundancy(cssid:)`), so a scrape costs
/// O(chpids + css), not O(subchannels); every series is there from the first scrape on.
///
/// - `cssd_chpid_online_devices_single_path{chpid}`: devices in use whose only operational
///   path is this chpid (its loss takes them down);
/// - `cssd_chpid_online_devices_redundancy_lost{chpid}`: of those, the devices with two or
///   more paths installed (they had redundancy and lost it; the alert's series);
/// - `cssd_chpid_online_devices_without_path{chpid}`: devices in use that have the chpid
///   installed and no operational path at all;
/// - `cssd_css_online_devices_{single_path,redundancy_lost,without_path}{cssid}`: the same per
///   channel subsystem, each device once (the css's single-path count is the sum over its
///   chpids; a device without a path counts on each chpid it has installed).
///
/// "Operational" is a bit in PIM & PAM & POM & LPM, "in use" an online device that is there
/// (`Subchannel.operationalPaths`): the definitions the impact query and the interlock use.
extension MetricsCollector {
    struct RedundancySeries {
        let singlePath: Gauge
        let redundancyLost: Gauge
        let withoutPath: Gauge

        func set(_ counts: RedundancySummary) {
            singlePath.set(to: Double(counts.singlePath))
            redundancyLost.set(to: Double(counts.redundancyLost))
            withoutPath.set(to: Double(counts.withoutPath))
        }

        func unregister(from registry: PrometheusCollectorRegistry) {
            for gauge in [singlePath, redundancyLost, withoutPath] { registry.unregisterGauge(gauge) }
        }
    }

    func collectRedundancy(_ subsystem: Subsystem) {
        var seen = Set<UInt16>()
        for (index, path) in subsystem.channelPaths.enumerated() {
            let key = path.id.rawValue
            seen.insert(key)
            let series = chpidRedundancy[key] ?? makeRedundancySeries(chpid: path.id.description)
            chpidRedundancy[key] = series
            series.set(subsystem.redundancy(ofPathAt: index))
        }
        for (key, series) in chpidRedundancy where !seen.contains(key) {
            series.unregister(from: registry)
            chpidRedundancy[key] = nil
        }
        for cssid in subsystem.cssids {
            let series = cssRedundancy[cssid] ?? makeRedundancySeries(cssid: cssid)
            cssRedundancy[cssid] = series
            series.set(subsystem.redundancy(cssid: cssid))
        }
    }

    private func makeRedundancySeries(chpid: String) -> RedundancySeries {
        makeRedundancySeries(
            "chpid", [("chpid", chpid)],
            single:
                "Online devices whose only operational path (PIM & PAM & POM & LPM) is this chpid: its loss takes them down.",
            lost:
                "Online devices with two or more paths installed whose only operational path is this chpid: they lost their redundancy.",
            without: "Online devices that have this chpid installed and no operational path at all: their I/O fails.")
    }

    private func makeRedundancySeries(cssid: UInt8) -> RedundancySeries {
        makeRedundancySeries(
            "css", [("cssid", Hex.string(cssid))],
            single: "Online devices on exactly one operational path (PIM & PAM & POM & LPM).",
            lost:
                "Online devices with two or more paths installed that run on one operational path: they lost their redundancy.",
            without: "Online devices without any operational path: their I/O fails.")
    }

    private func makeRedundancySeries(
        _ subsystem: String, _ labels: [(String, String)], single: String, lost: String, without: String
    ) -> RedundancySeries {
        func gauge(_ name: String, _ help: String) -> Gauge {
            registry.makeGauge(
                descriptor: .init(
                    namespace: "cssd", subsystem: subsystem, metricName: name, unitName: "", helpText: help),
                labels: labels)
        }
        return RedundancySeries(
            singlePath: gauge("online_devices_single_path", single),
            redundancyLost: gauge("online_devices_redundancy_lost", lost),
            withoutPath: gauge("online_devices_without_path", without))
    }
}
