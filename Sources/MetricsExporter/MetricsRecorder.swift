// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Prometheus
import QMPSchema
import QMPServer
import QMPWire
import X509Credentials

/// The metrics cssd counts as things happen (commands, connections), kept
/// in a swift-prometheus registry that the scrape-time collector (`MetricsCollector`) fills
/// with the rest. The server calls it through `ServerObserver` on its event loop only, so the
/// per-command table needs no lock: a command costs one dictionary lookup, a counter increment
/// and a histogram record. Every family exists from the start, as dashboards and `absent()`
/// expect: the connection series of each configured listener, `commands_total{outcome="ok"}`
/// of every command the schema has (at 0), and the duration histogram of `qmp_capabilities`,
/// the command every client sends first (the others' histograms come with their first use:
/// one per command would be 17 series each).
///
/// Families (all `cssd_`; labels bounded by listeners, schema commands and error classes):
/// - `cssd_qmp_connections_total{listener}`, `cssd_qmp_connections_open{listener}`;
/// - `cssd_qmp_commands_total{command,outcome}`: `outcome` is `ok` or the QMP error class;
///   a name the schema does not have (client input, unbounded) is counted as `command="unknown"`
///   (a request refused before dispatch, without a usable `execute`, is not a command);
/// - `cssd_qmp_command_duration_seconds{command}`: time in dispatch on the event loop;
/// - `cssd_qmp_tls_refusals_total{listener,reason}`: TLS clients closed before the greeting.
package final class MetricsRecorder: ServerObserver, @unchecked Sendable {
    // `commands` and `unknown` are touched only on the server's event loop.

    /// Where every family lives; the endpoint renders it.
    package let registry: PrometheusCollectorRegistry
    private let knownCommands: Set<String>
    /// Series of the schema's commands seen so far, by name. Names the schema does not have
    /// never become keys (they are client input): they count under `unknown`.
    private var commands: [String: CommandSeries] = [:]
    private lazy var unknown = CommandSeries(name: "unknown", registry: registry)

    /// Buckets of the command-duration histogram: 10 µs to 1 s (a command runs in
    /// microseconds; a 65,536-subchannel vary in milliseconds).
    static let durationBuckets: [Duration] = [
        .microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250),
        .microseconds(500), .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1),
    ]

    /// One command's duration histogram and its counter per outcome.
    private final class CommandSeries {
        let name: String
        let registry: PrometheusCollectorRegistry
        private var histogram: DurationHistogram?
        private var ok: Counter?
        private var errors: [QMPError.Class: Counter] = [:]

        /// - Parameter histogram: make the duration histogram now rather than at first use.
        init(name: String, registry: PrometheusCollectorRegistry, histogram: Bool = true) {
            self.name = name
            self.registry = registry
            if histogram { _ = duration }
        }

        var duration: DurationHistogram {
            if let histogram { return histogram }
            let made = registry.makeDurationHistogram(
                descriptor: .init(
                    namespace: "cssd", subsystem: "qmp", metricName: "command_duration", unitName: "seconds",
                    helpText: "Time a QMP command spent in dispatch on the server's event loop."),
                labels: [("command", name)], buckets: MetricsRecorder.durationBuckets)
            histogram = made
            return made
        }

        /// The `ok` series at 0, before the first call.
        func prepare() {
            if ok == nil { ok = make("ok") }
        }

        func count(_ outcome: QMPError.Class?) {
            if let outcome {
                if let counter = errors[outcome] { return counter.increment() }
                let counter = make(outcome.rawValue)
                errors[outcome] = counter
                counter.increment()
            } else {
                if let ok { return ok.increment() }
                let counter = make("ok")
                ok = counter
                counter.increment()
            }
        }

        private func make(_ outcome: String) -> Counter {
            registry.makeCounter(
                descriptor: .init(
                    namespace: "cssd", subsystem: "qmp", metricName: "commands", unitName: "total",
                    helpText: "QMP requests executed, by command and outcome (ok or the QMP error class)."),
                labels: [("command", name), ("outcome", outcome)])
        }
    }

    /// - Parameter registry: where to keep the families.
    package init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        // The schema is compiled in as values (checked when the package was built).
        let names = Schema.embedded().commands.map(\.name)
        knownCommands = Set(names)
        for name in names.sorted() {
            let series = CommandSeries(name: name, registry: registry, histogram: name == "qmp_capabilities")
            series.prepare()
            commands[name] = series
        }
    }

    // MARK: ServerObserver

    package func commandCompleted(_ command: String, error: QMPError.Class?, duration: Duration) {
        let series: CommandSeries
        if let known = commands[command] {
            series = known
        } else if knownCommands.contains(command) {
            series = CommandSeries(name: command, registry: registry)
            commands[command] = series
        } else {
            series = unknown
        }
        series.count(error)
        series.duration.record(duration)
    }

    /// Makes the listener's connection series (at 0).
    package func listenerConfigured(_ listener: Listener) {
        _ = connections(listener)
    }

    package func connectionOpened(listener: Listener) {
        let (total, open) = connections(listener)
        total.increment()
        open.increment()
    }

    package func connectionClosed(listener: Listener) {
        connections(listener).open.decrement()
    }

    /// Makes every reason's series (at 0), so that `increase()` sees the first refusal.
    package func tlsListenerConfigured(_ listener: Listener) {
        for reason in TLSRefusalReason.allCases { _ = tlsRefusals(listener, reason) }
    }

    package func tlsRefused(listener: Listener, reason: TLSRefusalReason) {
        tlsRefusals(listener, reason).increment()
    }

    // MARK: Families

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

    /// The registry's thread-safe: this may run off the loop (`tlsListenerConfigured`).
    private func tlsRefusals(_ listener: Listener, _ reason: TLSRefusalReason) -> Counter {
        registry.makeCounter(
            descriptor: .init(
                namespace: "cssd", subsystem: "qmp", metricName: "tls_refusals", unitName: "total",
                helpText:
                    "TLS connections to a QMP listener closed before the greeting, by listener and reason "
                    + "(handshake failed, timed out, certificate revoked, DN not authorized, client left)."),
            labels: [("listener", listener.address.description), ("reason", reason.rawValue)])
    }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

}

/// The AMQP notifier's figures at a scrape (PathNotify's `NotificationOutbox.Counters` and
/// broker state, API/notify.md), as `cssd_notify_*` families.
package struct NotifierFigures: Sendable, Hashable {
    /// Notifications published to the broker (a re-publish after a reconnect counts again).
    package var published: Int
    /// Publishes the broker confirmed (basic.ack).
    package var confirmed: Int
    /// Publishes nacked or lost with the connection.
    package var failed: Int
    /// Notifications refused by a full outbox.
    package var dropped: Int
    /// Gap notifications (naming dropped sequence numbers) the broker confirmed.
    package var gaps: Int
    /// Notifications and bytes in the outbox now (waiting or unconfirmed).
    package var outboxDepth: Int
    package var outboxBytes: Int
    /// The outbox's limits (`--notify-outbox-events`, `--notify-outbox-bytes`).
    package var outboxMaxDepth: Int
    package var outboxMaxBytes: Int
    /// Logged in with the channel in confirm mode now.
    package var connected: Bool
    /// Connections made to the broker so far.
    package var connections: Int
    /// Notifications reloaded from the state dir's outbox at start, and made again from the
    /// restored journal (`--state-dir`, API/notify.md).
    package var restored: Int
    package var rebuilt: Int

    package init(
        published: Int, confirmed: Int, failed: Int, dropped: Int, gaps: Int, outboxDepth: Int, outboxBytes: Int,
        outboxMaxDepth: Int, outboxMaxBytes: Int, connected: Bool, connections: Int, restored: Int = 0,
        rebuilt: Int = 0
    ) {
        self.restored = restored
        self.rebuilt = rebuilt
        self.published = published
        self.confirmed = confirmed
        self.failed = failed
        self.dropped = dropped
        self.gaps = gaps
        self.outboxDepth = outboxDepth
        self.outboxBytes = outboxBytes
        self.outboxMaxDepth = outboxMaxDepth
        self.outboxMaxBytes = outboxMaxBytes
        self.connected = connected
        self.connections = connections
    }
}
