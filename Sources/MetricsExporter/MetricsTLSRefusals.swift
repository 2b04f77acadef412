// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Logging
import NIOCore
import Prometheus
import ServerSecurity
import X509Credentials

/// The metrics endpoint's TLS admission: ServerSecurity's `TLSAdmissionHandler` between its
/// NIOSSLServerHandler and its HTTP codec, with the same checks as QMP's listeners: the handshake
/// must complete within `timeout` (`--tls-handshake-timeout`); the verified client certificate
/// must not be on the CRL (`ca-crl.pem`); its DN must be allowed by the `--tls-authz` policy
/// when there is one. Only then does `serve` install HTTP (whose own request timeout starts
/// there). Any failure is logged with its reason, counted by `MetricsTLSRefusals`, and closes
/// this connection only.
///
/// The endpoint's connection bound (`MetricsEndpoint.Configuration.maxConnections`) counts
/// connections from accept, so it bounds handshakes in progress too; they take none of QMP's
/// `--max-tls-handshakes` slots, so that scrapers cannot lock QMP clients out.
///
/// - Parameters:
///   - listener: the endpoint's address, for the log.
///   - peer: the client's address, for the log.
///   - serve: installs the HTTP handlers at the end of the pipeline (after the gate).
func metricsTLSGate(
    snapshot: TransportSecurity.Snapshot, latest: @escaping @Sendable () -> TransportSecurity.Snapshot,
    timeout: TimeAmount, listener: String, peer: String, logger: Logger,
    refusals: MetricsTLSRefusals, serve: @escaping (ChannelPipeline.SynchronousOperations) throws -> Void
) -> TLSAdmissionHandler {
    // "Authorized" at debug: Prometheus reconnects at most once per scrape, and a fleet's worth
    // of those lines says nothing an operator acts on. A scraper that leaves mid-handshake (a
    // port probe) is routine: info, and a close before the handshake started is only counted.
    TLSAdmissionHandler(
        snapshot: snapshot, latest: latest, timeout: timeout,
        reporting: .init(
            logger: logger, prefix: "metrics: ", listener: listener, peer: peer, authorized: .debug, abandoned: .info,
            left: nil),
        refused: { reason, _ in refusals.count(reason) }, admit: { sync, _ in try serve(sync) })
}

/// `cssd_metrics_tls_refusals_total{reason}`: TLS connections to the metrics endpoint not
/// served, by reason. Every reason's series exists (at 0) from the start when the endpoint uses
/// TLS, so that `increase()` sees the first one; without TLS the family is absent.
/// Counted on the server's event loop (swift-prometheus' counters are atomic anyway).
package final class MetricsTLSRefusals: Sendable {
    /// The `reason` label: what failed in the handshake, or what is refused after it.
    package typealias Reason = TLSRefusalReason

    private let counters: [Reason: Counter]

    package init(registry: PrometheusCollectorRegistry) {
        var counters: [Reason: Counter] = [:]
        for reason in Reason.allCases {
            counters[reason] = registry.makeCounter(
                descriptor: .init(
                    namespace: "cssd", subsystem: "metrics", metricName: "tls_refusals", unitName: "total",
                    helpText:
                        "TLS connections to the metrics endpoint closed before HTTP, by reason (handshake failed, "
                        + "timed out, certificate revoked, DN not authorized, client left)."),
                labels: [("reason", reason.rawValue)])
        }
        self.counters = counters
    }

    func count(_ reason: Reason) {
        counters[reason]?.increment()
    }
}
