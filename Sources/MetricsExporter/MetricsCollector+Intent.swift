// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import Prometheus

/// Drift from the intended chpid state (linux-sysfs with `--state-dir`, API/intent.md): per
/// chpid that has an intent, `cssd_chpid_intent_drift{chpid,field}` for `field` `vary`,
/// `configure` and `absent` (1 when that part differs: the vary state, the known configure
/// state, the chpid being gone), and `cssd_chpid_intent_drifted` (chpids with any drift; 0
/// when intent is kept and none drifts; absent where intent is not kept). At most 3 series
/// per chpid with an intent plus one: O(chpids). A chpid whose intent is cleared loses its
/// series.
extension MetricsCollector {
    struct IntentSeries {
        let vary: Gauge
        let configure: Gauge
        let absent: Gauge

        func unregister(from registry: PrometheusCollectorRegistry) {
            for gauge in [vary, configure, absent] { registry.unregisterGauge(gauge) }
        }
    }

    /// - Parameter drifts: every chpid with an intent (`ChpidIntents.drifts`); nil where intent
    ///   is not kept.
    func collectIntent(_ drifts: [ChpidDrift]?) {
        guard let drifts else { return }
        var seen = Set<UInt16>()
        for drift in drifts {
            let key = drift.chpid.rawValue
            seen.insert(key)
            let series = intentSeries[key] ?? makeIntentSeries(drift.chpid)
            series.vary.set(to: drift.varyDrifted ? 1 : 0)
            series.configure.set(to: drift.configureDrifted ? 1 : 0)
            series.absent.set(to: drift.present ? 0 : 1)
            intentSeries[key] = series
        }
        for (key, series) in intentSeries where !seen.contains(key) {
            series.unregister(from: registry)
            intentSeries[key] = nil
        }
        let total =
            driftedTotal
            ?? registry.makeGauge(
                descriptor: .init(
                    namespace: "cssd", subsystem: "chpid", metricName: "intent_drifted",
                    helpText: "Channel paths whose actual state differs from their intended state (API/intent.md)."))
        driftedTotal = total
        total.set(to: Double(drifts.filter(\.drifted).count))
    }

    private func makeIntentSeries(_ id: ChannelPathID) -> IntentSeries {
        func gauge(_ field: String) -> Gauge {
            registry.makeGauge(
                descriptor: .init(
                    namespace: "cssd", subsystem: "chpid", metricName: "intent_drift",
                    helpText:
                        "1 when a channel path's state differs from its intended state in this field "
                        + "(vary, configure, absent: the chpid is gone), else 0; only chpids with an intent."),
                labels: [("chpid", id.description), ("field", field)])
        }
        return IntentSeries(vary: gauge("vary"), configure: gauge("configure"), absent: gauge("absent"))
    }
}
