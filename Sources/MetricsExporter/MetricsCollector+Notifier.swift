// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Prometheus

/// The AMQP notifier's families (`--notify`): its counters, outbox depth and limits, broker state.
extension MetricsCollector {
    struct NotifierSeries {
        let published, confirmed, failed, dropped, gaps, connections, restored, rebuilt: Counter
        let depth, bytes, maxDepth, maxBytes, connected: Gauge
    }

    /// The notifier's figures (`--notify`), read at scrape time by the caller's closure.
    func collectNotifier(_ figures: NotifierFigures) {
        func counter(_ name: String, _ help: String) -> Counter {
            registry.makeCounter(
                descriptor: .init(
                    namespace: "cssd", subsystem: "notify", metricName: name, unitName: "total", helpText: help))
        }
        func gauge(_ name: String, _ unit: String, _ help: String) -> Gauge {
            registry.makeGauge(
                descriptor: .init(
                    namespace: "cssd", subsystem: "notify", metricName: name, unitName: unit, helpText: help))
        }
        let series =
            notifierSeries
            ?? NotifierSeries(
                published: counter(
                    "published", "Notifications published to the broker (re-publishes after a reconnect count again)."),
                confirmed: counter("confirmed", "Publishes the broker confirmed (basic.ack)."),
                failed: counter("failed", "Publishes the broker nacked or that were lost with the connection."),
                dropped: counter("dropped", "Notifications refused by a full outbox (a gap notification names them)."),
                gaps: counter("gaps", "Gap notifications the broker confirmed."),
                connections: counter("broker_connections", "Connections made to the broker."),
                restored: counter(
                    "restored", "Notifications reloaded from the state dir's outbox at start (--state-dir)."),
                rebuilt: counter(
                    "rebuilt", "Notifications made again at start from the restored journal (lost in a crash)."),
                depth: gauge("outbox_notifications", "", "Notifications in the outbox (waiting or unconfirmed)."),
                bytes: gauge("outbox", "bytes", "Bytes of the notifications in the outbox."),
                maxDepth: gauge(
                    "outbox_max_notifications", "", "The outbox's capacity in notifications (--notify-outbox-events)."),
                maxBytes: gauge("outbox_max", "bytes", "The outbox's capacity in bytes (--notify-outbox-bytes)."),
                connected: gauge("broker_connected", "", "1 while connected to the broker with confirms on, else 0."))
        notifierSeries = series
        series.published.setTotal(figures.published)
        series.confirmed.setTotal(figures.confirmed)
        series.failed.setTotal(figures.failed)
        series.dropped.setTotal(figures.dropped)
        series.gaps.setTotal(figures.gaps)
        series.connections.setTotal(figures.connections)
        series.restored.setTotal(figures.restored)
        series.rebuilt.setTotal(figures.rebuilt)
        series.depth.set(to: Double(figures.outboxDepth))
        series.bytes.set(to: Double(figures.outboxBytes))
        series.maxDepth.set(to: Double(figures.outboxMaxDepth))
        series.maxBytes.set(to: Double(figures.outboxMaxBytes))
        series.connected.set(to: figures.connected ? 1 : 0)
    }
}
