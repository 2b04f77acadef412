// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import Prometheus
import QMPCommands
import QMPSchema
import QMPServer
import QMPWire
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The metrics cssd counts as things happen (commands, connections, backend readings), kept
/// in a swift-prometheus registry that the scrape-time collector (`MetricsCollector`) fills
/// with the rest. The server calls it through `ServerObserver` on its event loop; each call
/// costs one lock and a dictionary lookup (the counters are made once per label set).
///
/// Families (all `cssd_`; labels bounded by listeners, schema commands and error classes):
/// - `cssd_qmp_connections_total{listener}`, `cssd_qmp_connections_open{listener}`;
/// - `cssd_qmp_commands_total{command,outcome}`: `outcome` is `ok` or the QMP error class;
///   a name the schema does not have (client input, unbounded) is counted as `command="unknown"`,
///   a request without a usable `execute` as `command="invalid"`;
/// - `cssd_qmp_command_duration_seconds{command}`: time in dispatch on the event loop;
/// - linux-sysfs only: `cssd_backend_readings_total`, `cssd_backend_read_errors_total`,
///   `cssd_backend_last_reading_duration_seconds`, `cssd_backend_last_good_reading_timestamp_seconds`.
public final class MetricsRecorder: ServerObserver {
    /// Where every family lives; the endpoint renders it.
    public let registry: PrometheusCollectorRegistry
    private let knownCommands: Set<String>
    private let commands = Mutex<[CommandKey: Counter]>([:])
    private let durations = Mutex<[String: DurationHistogram]>([:])
    private let backend: BackendMetrics?

    /// Buckets of the command-duration histogram: 10 µs to 1 s (a command runs in
    /// microseconds; a 65,536-subchannel vary in milliseconds).
    static let durationBuckets: [Duration] = [
        .microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250),
        .microseconds(500), .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1),
    ]

    private struct CommandKey: Hashable {
        let command: String
        let outcome: String
    }

    private struct BackendMetrics: Sendable {
        let readings: Counter
        let errors: Counter
        let lastDuration: Gauge
        let lastGood: Gauge
    }

    /// - Parameters:
    ///   - registry: where to keep the families.
    ///   - observedBackend: whether the backend is read again over time (linux-sysfs): only
    ///     then are the backend families exported; the start-up reading counts as the first
    ///     good one.
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), observedBackend: Bool) {
        self.registry = registry
        // The embedded schema is compiled in and validated by tests; an empty set only means
        // every command would count as "unknown".
        knownCommands = Set(((try? Schema.embedded())?.commands ?? []).map(\.name))
        if observedBackend {
            let backend = BackendMetrics(
                readings: registry.makeCounter(
                    descriptor: .init(
                        namespace: "cssd", subsystem: "backend", metricName: "readings", unitName: "total",
                        helpText: "Readings of the observed machine (linux-sysfs), good or not.")),
                errors: registry.makeCounter(
                    descriptor: .init(
                        namespace: "cssd", subsystem: "backend", metricName: "read_errors", unitName: "total",
                        helpText: "Readings of the observed machine that failed (the last good view is kept).")),
                lastDuration: registry.makeGauge(
                    descriptor: .init(
                        namespace: "cssd", subsystem: "backend", metricName: "last_reading_duration",
                        unitName: "seconds", helpText: "How long the last reading of the observed machine took.")),
                lastGood: registry.makeGauge(
                    descriptor: .init(
                        namespace: "cssd", subsystem: "backend", metricName: "last_good_reading_timestamp",
                        unitName: "seconds", helpText: "When the observed machine was last read successfully (Unix time).")))
            backend.lastGood.set(to: Self.unixTime())
            self.backend = backend
        } else {
            backend = nil
        }
    }

    // MARK: ServerObserver

    public func commandCompleted(_ request: JSON, result: Result<JSON, QMPError>, duration: Duration) {
        let name: String
        if let text = (request["execute"] ?? request["exec-oob"])?.stringValue {
            name = knownCommands.contains(text) ? text : "unknown"
        } else {
            name = "invalid"
        }
        let outcome: String
        switch result {
        case .success: outcome = "ok"
        case .failure(let error): outcome = error.errorClass.rawValue
        }
        counter(command: name, outcome: outcome).increment()
        histogram(command: name).record(duration)
    }

    public func connectionOpened(listener: Listener) {
        let (total, open) = connections(listener)
        total.increment()
        open.increment()
    }

    public func connectionClosed(listener: Listener) {
        connections(listener).open.decrement()
    }

    public func backendRead(duration: Duration, error: BackendError?) {
        guard let backend else { return }
        backend.readings.increment()
        backend.lastDuration.set(to: Self.seconds(duration))
        if error == nil { backend.lastGood.set(to: Self.unixTime()) } else { backend.errors.increment() }
    }

    // MARK: Families

    private func counter(command: String, outcome: String) -> Counter {
        let key = CommandKey(command: command, outcome: outcome)
        return commands.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = registry.makeCounter(
                descriptor: .init(
                    namespace: "cssd", subsystem: "qmp", metricName: "commands", unitName: "total",
                    helpText: "QMP requests executed, by command and outcome (ok or the QMP error class)."),
                labels: [("command", command), ("outcome", outcome)])
            counters[key] = counter
            return counter
        }
    }

    private func histogram(command: String) -> DurationHistogram {
        durations.withLock { histograms in
            if let histogram = histograms[command] { return histogram }
            let histogram = registry.makeDurationHistogram(
                descriptor: .init(
                    namespace: "cssd", subsystem: "qmp", metricName: "command_duration", unitName: "seconds",
                    helpText: "Time a QMP command spent in dispatch on the server's event loop."),
                labels: [("command", command)], buckets: Self.durationBuckets)
            histograms[command] = histogram
            return histogram
        }
    }

    /// The registry returns the existing collector for a known label set.
    private func connections(_ listener: Listener) -> (total: Counter, open: Gauge) {
        let labels = [("listener", listener.address.description)]
        return (
            registry.makeCounter(
                descriptor: .init(
                    namespace: "cssd", subsystem: "qmp", metricName: "connections", unitName: "total",
                    helpText: "QMP connections accepted, by listener."),
                labels: labels),
            registry.makeGauge(
                descriptor: .init(
                    namespace: "cssd", subsystem: "qmp", metricName: "connections_open", unitName: "",
                    helpText: "QMP connections open now, by listener."),
                labels: labels)
        )
    }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// Wall-clock time as Prometheus timestamps it (for `time() - x` in rules).
    static func unixTime() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
