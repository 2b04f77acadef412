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
/// - per chpid with DASDs behind it: `cssd_chpid_dasd_devices{chpid}` and
///   `cssd_chpid_dasd_paths{chpid,state}` (MetricsCollector+DASD.swift);
/// - per guest holding vfio-ccw mdevs on a Linux host: `cssd_host_guest_passthrough_devices{guest}`,
///   `cssd_host_guest_passthrough_without_path_devices{guest}` (MetricsCollector+HostGuests.swift);
/// - per css: `cssd_css_subchannels`, `cssd_css_subchannels_without_operational_path` (no bit
///   in PIM & PAM & POM & LPM), `cssd_css_crws_queued`, `cssd_css_crws_lost_total`;
/// - per chpid and per css: `cssd_{chpid,css}_online_devices_{single_path,redundancy_lost,without_path}`
///   (`MetricsCollector+Redundancy.swift`);
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
/// - with intent kept (linux-sysfs with `--state-dir`): `cssd_chpid_intent_drift{chpid,field}`,
///   `cssd_chpid_intent_drifted` (`MetricsCollector+Intent.swift`);
/// - `cssd_path_changes_total{change,cause}`: path changes published (`cause` `command`,
///   `scenario` (a scenario's step; its series appears with the first) or `observed`), counted as they happen: the collector is a sink of the path-change pipeline.
///
/// Series of a chpid or guest that is gone are removed from the registry. Each group of
/// families is collected in an extension of its own (`MetricsCollector+ChannelPaths.swift`, ...).
final class MetricsCollector: PathChangeSink {
    let registry: PrometheusCollectorRegistry
    var chpids: [UInt16: ChpidSeries] = [:]
    var css: [UInt8: CSSSeries] = [:]
    var chpidRedundancy: [UInt16: RedundancySeries] = [:]
    var cssRedundancy: [UInt8: RedundancySeries] = [:]
    var granularities: [PathEventGranularity: PathEventSeries] = [:]
    var guests: [String: GuestSeries] = [:]
    var dasd: [UInt16: DASDSeries] = [:]
    var hostGuests: [String: HostGuestSeries] = [:]
    private var changes: [ChangeKey: Counter] = [:]
    var backendSeries: BackendSeries?
    var notifierSeries: NotifierSeries?
    /// Per chpid with an intent, and the total (`MetricsCollector+Intent.swift`).
    var intentSeries: [UInt16: IntentSeries] = [:]
    var driftedTotal: Gauge?

    private struct ChangeKey: Hashable {
        let kind: PathEventChange
        /// `command`, `scenario` or `observed`.
        let cause: String
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
        // Every kind and cause at 0 from the start: `increase()` sees the first change, and
        // the family is there before it (28 series).
        for kind in PathEventChange.allCases {
            for cause in ["command", "observed"] { _ = changeCounter(ChangeKey(kind: kind, cause: cause)) }
        }
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
        collectDASD(backend)
        collectChannelSubsystems(subsystem)
        collectRedundancy(subsystem)
        collectPathEvents(pathEvents)
        collectGuests(guests)
        collectHostGuests(backend, subsystem)
        collectBackend(backend)
    }

    // MARK: Path changes (as they happen)

    func pathChangePublished(_ published: PublishedPathChange) {
        // A fixed label per source: a scenario's and step's names never become labels.
        let cause: String
        switch published.cause {
        case .command(by: .scenario): cause = "scenario"
        case .command: cause = "command"
        case .observed: cause = "observed"
        }
        changeCounter(ChangeKey(kind: published.kind, cause: cause)).increment()
    }

    private func changeCounter(_ key: ChangeKey) -> Counter {
        if let counter = changes[key] { return counter }
        let counter = registry.makeCounter(
            descriptor: .init(
                namespace: "cssd", subsystem: "path", metricName: "changes", unitName: "total",
                helpText:
                    "Path changes published, by change and cause (a command, a scenario's step, or observed on the machine)."
            ),
            labels: [("change", key.kind.rawValue), ("cause", key.cause)])
        changes[key] = counter
        return counter
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
