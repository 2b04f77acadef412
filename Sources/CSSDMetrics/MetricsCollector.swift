// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import PathChangePipeline
import PathEvents
import Prometheus
import VFIOCCW

/// Reads the server's state at scrape time into the registry: channel paths, channel
/// subsystems, path events and guests. Runs on the server's event loop (the state is confined
/// to it) and costs O(chpids + css + guests + subscriptions): no subchannel is visited (the
/// model keeps the no-operational-path count up to date) and no file is read (the linux-sysfs
/// backend's last reading is what it reports).
///
/// Families (all gauges unless `_total`; labels in Linux notation, `chpid="0.40"`, `cssid="fe"`):
/// - `cssd_build_info{version}`, `cssd_backend_info{backend}`: value 1;
/// - per chpid: `cssd_chpid_info{chpid,type,cmg,shared,pchid}` (value 1; `type` two hex digits
///   as lschp prints it, `pchid` four; an empty value: not known or none),
///   the state sets `cssd_chpid_vary_state{chpid,state}` (online, offline),
///   `cssd_chpid_configure_state{chpid,state}` (configured, standby, reserved, not-recognized),
///   `cssd_chpid_condition_state{chpid,state}` (operational, temporary-error, permanent-error),
///   each with exactly one series at 1 per chpid, and `cssd_chpid_subchannels{chpid}`;
/// - per css: `cssd_css_subchannels`, `cssd_css_subchannels_without_operational_path` (no bit
///   in PIM & PAM & POM & LPM), `cssd_css_crws_queued`, `cssd_css_crws_lost_total`;
/// - per subscription granularity: `cssd_path_events_{published,delivered,coalesced,dropped}_total`,
///   `cssd_path_events_queued`, `cssd_path_event_subscriptions`;
/// - per guest: `cssd_guest_{notifications,crws_queued,crws_lost}_total{guest,strategy}`
///   (the guest's current strategy: changing it moves the series to the new label value);
/// - the backend's readings (linux-sysfs only: the model reads nothing, so it has none of
///   these), label `backend`: `cssd_backend_last_reading_duration_seconds` (the last poll
///   tick), `cssd_backend_last_good_reading_timestamp_seconds` (Unix time of the last tick
///   without a read error, or of the start-up reading), `cssd_backend_read_errors_total{kind}`
///   (`missing`, `unreadable`, `malformed`), `cssd_backend_poll_interval_seconds` (absent when
///   polling is off); read at scrape time from the follower's own lock, never the mirror's;
/// - with `--notify` (`MetricsEndpoint.start`'s `notifier`): `cssd_notify_{published,confirmed,failed,
///   dropped,gaps,broker_connections}_total`, `cssd_notify_outbox_{notifications,bytes}`, the
///   outbox's limits `cssd_notify_outbox_max_{notifications,bytes}`, `cssd_notify_broker_connected`;
/// - `cssd_path_changes_total{change,cause}`: path changes published (`cause` `command` or
///   `observed`), counted as they happen: the collector is a sink of the path-change pipeline.
///
/// Series of a chpid or guest that is gone are removed from the registry.
final class MetricsCollector: PathChangeSink {
    private let registry: PrometheusCollectorRegistry
    private var chpids: [UInt16: ChpidSeries] = [:]
    private var css: [UInt8: CSSSeries] = [:]
    private var granularities: [PathEventGranularity: PathEventSeries] = [:]
    private var guests: [String: GuestSeries] = [:]
    private var changes: [ChangeKey: Counter] = [:]
    private var backendSeries: BackendSeries?
    private var notifierSeries: NotifierSeries?

    private struct ChangeKey: Hashable {
        let kind: PathEventChange
        let observed: Bool
    }

    init(registry: PrometheusCollectorRegistry, version: String, backend: String) {
        self.registry = registry
        registry.makeGauge(
            descriptor: .init(
                namespace: "cssd", metricName: "build", unitName: "info", helpText: "cssd's version; value 1."),
            labels: [("version", version)]
        ).set(to: 1)
        registry.makeGauge(
            descriptor: .init(
                namespace: "cssd", metricName: "backend", unitName: "info",
                helpText: "The source of truth cssd serves: model or linux-sysfs; value 1."),
            labels: [("backend", backend)]
        ).set(to: 1)
    }

    /// Brings every scrape-time family up to date with the server's state. Call on the
    /// server's loop.
    /// - Parameters:
    ///   - subsystem: `backend`'s current view of the channel subsystem.
    ///   - pathEvents: the subscriptions' totals (`PathEventHub.totals()`).
    func collect(
        subsystem: Subsystem, backend: ChannelSubsystemBackend,
        pathEvents: [PathEventGranularity: PathEventTotals], guests: Guests
    ) {
        collectChannelPaths(subsystem, backend: backend)
        collectChannelSubsystems(subsystem)
        collectPathEvents(pathEvents)
        collectGuests(guests)
        collectBackend(backend)
    }

    // MARK: AMQP notifier

    private struct NotifierSeries {
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

    // MARK: Backend readings

    private struct BackendSeries {
        let duration: Gauge
        let lastGood: Gauge
        var errors: [String: Counter]
        var pollInterval: Gauge?
    }

    private func collectBackend(_ backend: ChannelSubsystemBackend) {
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
        backendSeries = series
    }

    // MARK: Path changes (as they happen)

    func pathChangePublished(_ published: PublishedPathChange) {
        let observed: Bool
        switch published.cause {
        case .command: observed = false
        case .observed: observed = true
        }
        let key = ChangeKey(kind: published.kind, observed: observed)
        if let counter = changes[key] { return counter.increment() }
        let counter = registry.makeCounter(
            descriptor: .init(
                namespace: "cssd", subsystem: "path", metricName: "changes", unitName: "total",
                helpText: "Path changes published, by change and cause (a command, or observed on the machine)."),
            labels: [("change", published.kind.rawValue), ("cause", observed ? "observed" : "command")])
        changes[key] = counter
        counter.increment()
    }

    // MARK: Channel paths

    private struct ChpidSeries {
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

    private func collectChannelPaths(_ subsystem: Subsystem, backend: ChannelSubsystemBackend) {
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

    private struct CSSSeries {
        let subchannels: Gauge
        let withoutOperationalPath: Gauge
        let crwsQueued: Gauge
        let crwsLost: Counter
    }

    private func collectChannelSubsystems(_ subsystem: Subsystem) {
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

    // MARK: Path events

    private struct PathEventSeries {
        let published: Counter
        let delivered: Counter
        let coalesced: Counter
        let dropped: Counter
        let queued: Gauge
        let subscriptions: Gauge
    }

    private func collectPathEvents(_ totals: [PathEventGranularity: PathEventTotals]) {
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

    // MARK: Guests

    private struct GuestSeries {
        let strategy: PathEventStrategy
        let notifications: Counter
        let crwsQueued: Counter
        let crwsLost: Counter

        func unregister(from registry: PrometheusCollectorRegistry) {
            for counter in [notifications, crwsQueued, crwsLost] { registry.unregisterCounter(counter) }
        }
    }

    private func collectGuests(_ all: Guests) {
        for (name, guest) in all.guests {
            var series = guests[name]
            if let existing = series, existing.strategy != guest.strategy {
                existing.unregister(from: registry)
                series = nil
            }
            let current = series ?? makeGuestSeries(name, strategy: guest.strategy)
            guests[name] = current
            current.notifications.setTotal(guest.stats.notifications)
            current.crwsQueued.setTotal(guest.stats.crwsQueued)
            current.crwsLost.setTotal(guest.stats.crwsLost)
        }
        for (name, series) in guests where all.guests[name] == nil {
            series.unregister(from: registry)
            guests[name] = nil
        }
    }

    private func makeGuestSeries(_ name: String, strategy: PathEventStrategy) -> GuestSeries {
        let labels = [("guest", name), ("strategy", strategy.rawValue)]
        func counter(_ metric: String, _ help: String) -> Counter {
            registry.makeCounter(
                descriptor: .init(
                    namespace: "cssd", subsystem: "guest", metricName: metric, unitName: "total", helpText: help),
                labels: labels)
        }
        return GuestSeries(
            strategy: strategy,
            notifications: counter("notifications", "Per-device path notifications made to the guest (vfio-ccw)."),
            crwsQueued: counter("crws_queued", "Channel report words queued for the guest."),
            crwsLost: counter("crws_lost", "Channel report words the guest lost to its queue's overflow."))
    }
}

extension Counter {
    /// Sets a counter to a cumulative count kept elsewhere (the model's, the hub's). Only the
    /// collector writes these counters, on the loop, and renders right after.
    func setTotal(_ value: Int) {
        reset()
        increment(by: Int64(value))
    }
}
