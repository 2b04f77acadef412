// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import Prometheus

/// The backend's readings (linux-sysfs): the last poll tick, the last good reading, read errors.
extension MetricsCollector {
    struct BackendSeries {
        let duration: Gauge
        let lastGood: Gauge
        var errors: [String: Counter]
        var pollInterval: Gauge?
        var kernelLogLines: [String: Counter] = [:]
    }

    func collectBackend(_ backend: ChannelSubsystemBackend) {
        guard let stats = backend.readingStats else { return }
        let labels = [("backend", backend.name)]
        func gauge(_ name: String, _ unit: String, _ help: String) -> Gauge {
            registry.makeGauge(
                descriptor: .init(
                    namespace: "cssd", subsystem: "backend", metricName: name, unitName: unit, helpText: help),
                labels: labels)
        }
        var series =
            backendSeries
            ?? BackendSeries(
                duration: gauge(
                    "last_reading_duration", "seconds",
                    "How long the backend's last poll tick took (0 before the first)."),
                lastGood: gauge(
                    "last_good_reading", "timestamp_seconds",
                    "Unix time of the backend's last reading without a read error (every clean poll tick, changed or not)."
                ),
                errors: [:], pollInterval: nil)
        series.duration.set(to: stats.lastReadingDuration ?? 0)
        series.lastGood.set(to: stats.lastGoodReading)
        for (kind, count) in stats.readErrors {
            let counter =
                series.errors[kind]
                ?? registry.makeCounter(
                    descriptor: .init(
                        namespace: "cssd", subsystem: "backend", metricName: "read_errors", unitName: "total",
                        helpText: "Failed reads of the backend's source, by kind (missing, unreadable, malformed)."),
                    labels: labels + [("kind", kind)])
            series.errors[kind] = counter
            counter.setTotal(count)
        }
        if let interval = stats.pollInterval {
            let poll =
                series.pollInterval
                ?? gauge(
                    "poll_interval", "seconds", "Seconds between the backend's poll ticks (absent when polling is off)."
                )
            series.pollInterval = poll
            poll.set(to: interval)
        } else if let poll = series.pollInterval {
            registry.unregisterGauge(poll)
            series.pollInterval = nil
        }
        // Every outcome from the start (all five come together), so that a garbled or lost
        // line is an increase(), not a series appearing.
        for (outcome, count) in stats.kernelLogLines ?? [:] {
            let counter =
                series.kernelLogLines[outcome]
                ?? registry.makeCounter(
                    descriptor: .init(
                        namespace: "cssd", subsystem: "kernel_log", metricName: "lines", unitName: "total",
                        helpText:
                            "Lines of the followed kernel log, by outcome (acted: triggered a re-read; ignored; "
                            + "garbled: a cio message that does not parse; too_long; lost: /dev/kmsg records "
                            + "overwritten before they were read)."),
                    labels: labels + [("outcome", outcome)])
            series.kernelLogLines[outcome] = counter
            counter.setTotal(count)
        }
        backendSeries = series
    }
}
