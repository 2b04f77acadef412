// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import Prometheus

/// Per channel path and per channel subsystem: info, the state sets, subchannel and CRW counts.
extension MetricsCollector {
    struct ChpidSeries {
        var infoLabels: [(String, String)]
        var info: Gauge
        let vary: [Gauge]
        let configure: [Gauge]
        let condition: [Gauge]
        let subchannels: Gauge

        func unregister(from registry: PrometheusCollectorRegistry) {
            for gauge in [info, subchannels] + vary + configure + condition { registry.unregisterGauge(gauge) }
        }
    }

    func collectChannelPaths(_ subsystem: Subsystem, backend: ChannelSubsystemBackend) {
        var seen = Set<UInt16>()
        for path in subsystem.channelPaths {
            let key = path.id.rawValue
            seen.insert(key)
            let labels = infoLabels(path, details: backend.details(of: path.id))
            var series = chpids[key] ?? makeChpidSeries(path.id, infoLabels: labels)
            if !series.infoLabels.elementsEqual(labels, by: { $0 == $1 }) {
                registry.unregisterGauge(series.info)
                series.infoLabels = labels
                series.info = makeInfoGauge(labels)
            }
            series.info.set(to: 1)
            for (index, state) in VaryState.allCases.enumerated() {
                series.vary[index].set(to: path.vary == state ? 1 : 0)
            }
            for (index, state) in ConfigureState.allCases.enumerated() {
                series.configure[index].set(to: path.configure == state ? 1 : 0)
            }
            for (index, state) in PathCondition.allCases.enumerated() {
                series.condition[index].set(to: path.condition == state ? 1 : 0)
            }
            series.subchannels.set(to: Double(path.subchannelCount))
            chpids[key] = series
        }
        for (key, series) in chpids where !seen.contains(key) {
            series.unregister(from: registry)
            chpids[key] = nil
        }
    }

    private func infoLabels(_ path: ChannelPath, details: ChannelPathDetails?) -> [(String, String)] {
        let shared = details?.shared ?? path.shared
        return [
            ("chpid", path.id.description), ("type", Hex.string(path.type, width: 2)),
            ("cmg", details?.cmg.map { String($0) } ?? ""), ("shared", shared ? "1" : "0"),
            ("pchid", path.pchid.map { Hex.string($0, width: 4) } ?? ""),
        ]
    }

    private func makeInfoGauge(_ labels: [(String, String)]) -> Gauge {
        registry.makeGauge(
            descriptor: .init(
                namespace: "cssd", metricName: "chpid", unitName: "info",
                helpText: "A channel path: type (hex), channel-measurement group, shared, physical channel id; value 1."
            ),
            labels: labels)
    }

    private func makeChpidSeries(_ id: ChannelPathID, infoLabels: [(String, String)]) -> ChpidSeries {
        let chpid = id.description
        func stateSet<State: CustomStringConvertible>(_ name: String, _ help: String, _ states: [State]) -> [Gauge] {
            states.map { state in
                registry.makeGauge(
                    descriptor: .init(
                        namespace: "cssd", subsystem: "chpid", metricName: name, unitName: "state", helpText: help),
                    labels: [("chpid", chpid), ("state", state.description)])
            }
        }
        return ChpidSeries(
            infoLabels: infoLabels, info: makeInfoGauge(infoLabels),
            vary: stateSet(
                "vary", "A channel path's logical vary state (Linux chp status); 1 for the current state.",
                VaryState.allCases),
            configure: stateSet(
                "configure", "A channel path's configure state (Linux chp configure); 1 for the current state.",
                ConfigureState.allCases),
            condition: stateSet(
                "condition", "A channel path's fault condition; 1 for the current state.", PathCondition.allCases),
            subchannels: registry.makeGauge(
                descriptor: .init(
                    namespace: "cssd", subsystem: "chpid", metricName: "subchannels", unitName: "",
                    helpText: "Subchannels that have the channel path installed."),
                labels: [("chpid", chpid)]))
    }

    // MARK: Channel subsystems

    struct CSSSeries {
        let subchannels: Gauge
        let withoutOperationalPath: Gauge
        let crwsQueued: Gauge
        let crwsLost: Counter
    }

    func collectChannelSubsystems(_ subsystem: Subsystem) {
        for cssid in subsystem.cssids {
            let series = css[cssid] ?? makeCSSSeries(cssid)
            css[cssid] = series
            let summary = subsystem.summary(cssid: cssid)
            series.subchannels.set(to: Double(summary.subchannels))
            series.withoutOperationalPath.set(to: Double(subsystem.subchannelsWithoutOperationalPath(cssid: cssid)))
            series.crwsQueued.set(to: Double(summary.crwsQueued))
            series.crwsLost.setTotal(summary.crwsLost)
        }
    }

    private func makeCSSSeries(_ cssid: UInt8) -> CSSSeries {
        let labels = [("cssid", Hex.string(cssid))]
        func gauge(_ name: String, _ help: String) -> Gauge {
            registry.makeGauge(
                descriptor: .init(namespace: "cssd", subsystem: "css", metricName: name, unitName: "", helpText: help),
                labels: labels)
        }
        return CSSSeries(
            subchannels: gauge("subchannels", "Subchannels in the channel subsystem."),
            withoutOperationalPath: gauge(
                "subchannels_without_operational_path",
                "Subchannels with no operational path left (no bit in PIM & PAM & POM & LPM): their devices are down."),
            crwsQueued: gauge("crws_queued", "Channel report words pending in the machine's queue for this css."),
            crwsLost: registry.makeCounter(
                descriptor: .init(
                    namespace: "cssd", subsystem: "css", metricName: "crws_lost", unitName: "total",
                    helpText: "Channel report words lost to queue overflow (the overflow bit set)."),
                labels: labels))
    }
}
