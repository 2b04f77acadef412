// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import PathEvents
import Prometheus

/// Path-event subscriptions by granularity: published, delivered, coalesced, dropped, queued.
extension MetricsCollector {
    struct PathEventSeries {
        let published: Counter
        let delivered: Counter
        let coalesced: Counter
        let dropped: Counter
        let queued: Gauge
        let subscriptions: Gauge
    }

    func collectPathEvents(_ totals: [PathEventGranularity: PathEventTotals]) {
        for (granularity, total) in totals {
            let series = granularities[granularity] ?? makePathEventSeries(granularity)
            granularities[granularity] = series
            series.published.setTotal(total.published)
            series.delivered.setTotal(total.delivered)
            series.coalesced.setTotal(total.coalesced)
            series.dropped.setTotal(total.dropped)
            series.queued.set(to: Double(total.queued))
            series.subscriptions.set(to: Double(total.subscriptions))
        }
    }

    private func makePathEventSeries(_ granularity: PathEventGranularity) -> PathEventSeries {
        let labels = [("granularity", granularity.rawValue)]
        func counter(_ name: String, _ help: String) -> Counter {
            registry.makeCounter(
                descriptor: .init(
                    namespace: "cssd", subsystem: "path_events", metricName: name, unitName: "total", helpText: help),
                labels: labels)
        }
        return PathEventSeries(
            published: counter(
                "published", "Path events handed to subscriptions' queues, by subscription granularity."),
            delivered: counter("delivered", "Path events written to subscribers."),
            coalesced: counter(
                "coalesced", "Path events replaced in a queue by a newer one for the same chpid or subchannel."),
            dropped: counter(
                "dropped", "Path events dropped from full queues (or left queued when the subscription ended)."),
            queued: registry.makeGauge(
                descriptor: .init(
                    namespace: "cssd", subsystem: "path_events", metricName: "queued", unitName: "",
                    helpText: "Path events waiting in subscriptions' queues."),
                labels: labels),
            subscriptions: registry.makeGauge(
                descriptor: .init(
                    namespace: "cssd", subsystem: "path_event", metricName: "subscriptions", unitName: "",
                    helpText: "Path-event subscriptions open now."),
                labels: labels))
    }
}
