// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import PathChangePipeline
import Prometheus
import QMPServer
import ServerSecurity

/// The Prometheus endpoint (`cssd --metrics tcp:HOST:PORT`): `GET /metrics` over HTTP/1
/// (SwiftNIO's NIOHTTP1 codec), on the QMP server's own event loop group; over TLS
/// (swift-nio-ssl) when `Configuration.security` is given.
///
/// TLS uses QMP's `TransportSecurity` (`--tls-creds`, `--tls-authz`) with QMP's semantics:
/// TLS 1.2 or later, a client certificate required and verified against `ca-cert.pem`, the CRL
/// checked, the DN authorized by the policy; each connection takes the snapshot current at its
/// accept, so a reload (SIGHUP, the policy file changing) applies to later scrapes. The
/// handshake has `handshakeTimeout`; `metricsTLSGate` does the checks and counts refusals
/// (`cssd_metrics_tls_refusals_total`).
///
/// A scrape runs on the server's single event loop, between QMP requests, and costs
/// O(chpids + css + guests + subscriptions + commands seen), whatever the number of
/// subchannels (`MetricsCollector`); it reads no file. The exposition is swift-prometheus'
/// (`ExpositionFormat` adds OpenMetrics' framing when the scraper asks for it).
///
/// Bounds: at most `maxConnections` connections; at the limit a new connection closes the one
/// that made progress least recently (`MetricsConnections`: a slow or idle client gives way to
/// a scrape). A TLS handshake must complete within `handshakeTimeout` and then a request within
/// `requestTimeout`; a header field may take 8 KiB and all of them 32 KiB (beyond: 431).
/// Pipelined requests are answered one at a time, each once the previous answer is on the
/// socket, and the connection is not read meanwhile (`MetricsHTTPHandler`): a client that does
/// not read holds one answer, for `requestTimeout` at most. When accept(2) fails (out of
/// descriptors) the listener pauses and logs (`AcceptBackoff`).
package final class MetricsEndpoint: @unchecked Sendable {
    // Mutable state is touched only on the server's event loop.

    package struct Configuration: Sendable {
        package var host: String
        package var port: Int
        /// How long a client has to send a whole request (from connect or the last answer
        /// written), and to read an answer.
        package var requestTimeout: TimeAmount
        /// Connections served at once, TLS handshakes in progress included; at the limit a new
        /// connection closes the one that made progress least recently.
        package var maxConnections: Int
        /// TLS credentials and authorization (shared with QMP's listeners, reloaded with them);
        /// nil: plain HTTP.
        package var security: TransportSecurity?
        /// How long a TLS client has to complete its handshake (`--tls-handshake-timeout`);
        /// the request timeout starts after it.
        package var handshakeTimeout: TimeAmount

        package init(
            host: String, port: Int, requestTimeout: TimeAmount = .seconds(10), maxConnections: Int = 16,
            security: TransportSecurity? = nil, handshakeTimeout: TimeAmount = .seconds(10)
        ) {
            self.host = host
            self.port = port
            self.requestTimeout = requestTimeout
            self.maxConnections = maxConnections
            self.security = security
            self.handshakeTimeout = handshakeTimeout
        }
    }

    /// The address bound (port 0 resolved).
    package let boundAddress: ListenAddress
    private let channel: Channel

    private init(boundAddress: ListenAddress, channel: Channel) {
        self.boundAddress = boundAddress
        self.channel = channel
    }

    /// Binds the endpoint on `server`'s event loop group; scrapes are served from then on.
    /// - Parameters:
    ///   - recorder: the registry the server's observer fills; the endpoint adds the
    ///     scrape-time families to it.
    ///   - notifier: where the `--notify` publisher stands, read at scrape time on the loop
    ///     (must not block); nil without one.
    /// - Returns: the running endpoint, with the address it bound.
    /// - Throws: `MetricsEndpointError` naming the address when it cannot bind.
    package static func start(
        _ configuration: Configuration, server: QMPServer, recorder: MetricsRecorder,
        notifier: (@Sendable () -> NotifierFigures)? = nil, logger: Logger
    ) async throws -> MetricsEndpoint {
        let loop = server.eventLoop
        let connections = try await loop.submit {
            NIOLoopBound(MetricsConnections(limit: configuration.maxConnections), eventLoop: loop)
        }.get()
        let scraper = try await loop.submit {
            let collector = MetricsCollector(
                registry: recorder.registry, version: QMPServer.version, backend: server.backend.name)
            // Held weakly by the pipeline: the scraper keeps the collector alive.
            server.pathChanges.register(collector, as: .metrics)
            return Scraper(
                server: server, registry: recorder.registry, collector: collector, notifier: notifier)
        }.get()
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = 8 * 1024
        limits.maxHeaderListSize = 32 * 1024
        limits.maxHeaderFieldCount = 64
        let decoderLimits = limits
        let refusals = configuration.security.map { _ in MetricsTLSRefusals(registry: recorder.registry) }
        let address = ListenAddress.tcp(host: configuration.host, port: configuration.port)
        // For the log: the bound address once known (port 0 resolved); a connection accepted
        // in the instant before logs the configured one.
        let listenerName = NIOLockedValueBox(address.description)
        let bootstrap = ServerBootstrap(group: server.eventLoopGroup)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try AcceptBackoff.install(on: channel, logger: logger) { listenerName.withLockedValue { $0 } }
                }
            }
            // What one read brings bounds the requests that wait while an answer is written
            // (MetricsHTTPHandler): 16 KiB, some 400 pipelined scrapes.
            .childChannelOption(.maxMessagesPerRead, value: 1)
            .childChannelOption(
                .recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 512, initial: 4096, maximum: 16384)
            )
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // One loop serves the server: the scraper's state is confined to it.
                    channel.eventLoop.preconditionInEventLoop()
                    let connections = connections.value
                    connections.admit(channel)
                    let serveHTTP = { (sync: ChannelPipeline.SynchronousOperations) throws in
                        // Without NIO's pipelining assistance: MetricsHTTPHandler answers one
                        // request at a time itself, and holds reads until an answer is written
                        // (NIO's HTTPServerPipelineHandler would let the next request in as
                        // soon as an answer is handed to the channel, not to the socket).
                        try sync.configureHTTPServerPipeline(
                            withPipeliningAssistance: false, withErrorHandling: false,
                            withEncoderConfiguration: .init(), withDecoderLimitConfiguration: decoderLimits)
                        try sync.addHandler(
                            MetricsHTTPHandler(
                                requestTimeout: configuration.requestTimeout,
                                progressed: { connections.progressed(channel) },
                                page: { page in scraper.page(page, allocator: channel.allocator) }
                            ) { format in
                                scraper.scrape(format, allocator: channel.allocator)
                            })
                    }
                    let sync = channel.pipeline.syncOperations
                    guard let security = configuration.security, let refusals else { return try serveHTTP(sync) }
                    let snapshot = security.current
                    try sync.addHandler(snapshot.makeServerHandler())
                    try sync.addHandler(
                        metricsTLSGate(
                            snapshot: snapshot, latest: { security.current }, timeout: configuration.handshakeTimeout,
                            listener: listenerName.withLockedValue { $0 },
                            peer: peerAddress(channel), logger: logger, refusals: refusals,
                            serve: serveHTTP))
                }
            }
        let channel: Channel
        do {
            channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        } catch {
            throw MetricsEndpointError(
                "cannot listen for metrics on tcp:\(configuration.host):\(configuration.port): \(error)")
        }
        let bound = ListenAddress.tcp(host: configuration.host, port: channel.localAddress?.port ?? configuration.port)
        listenerName.withLockedValue { $0 = bound.description }
        logger.info(
            "metrics listening",
            metadata: [
                "address": "\(bound)", "tls": "\(configuration.security != nil)",
                "authz": "\(configuration.security?.authzFile ?? "none")",
            ])
        return MetricsEndpoint(boundAddress: bound, channel: channel)
    }

    /// Stops accepting scrapes (connections in progress finish).
    package func close() async {
        try? await channel.close()
    }
}

/// The client's address as `HOST:PORT` (`[::1]:PORT` for IPv6), as QMP's log writes it.
private func peerAddress(_ channel: Channel) -> String {
    guard let remote = channel.remoteAddress, let ip = remote.ipAddress, let port = remote.port else { return "?" }
    return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
}

package struct MetricsEndpointError: Error, CustomStringConvertible, Sendable {
    package let description: String
    init(_ description: String) { self.description = description }
}

/// The scrape itself, confined to the server's event loop.
final class Scraper: @unchecked Sendable {
    private let server: QMPServer
    private let registry: PrometheusCollectorRegistry
    private let collector: MetricsCollector
    private let measurement: ChannelMeasurementCollector
    private let process: ProcessCollector
    private let notifier: (@Sendable () -> NotifierFigures)?
    private let lastDuration: Gauge
    private var text: [UInt8] = []

    init(
        server: QMPServer, registry: PrometheusCollectorRegistry, collector: MetricsCollector,
        notifier: (@Sendable () -> NotifierFigures)?
    ) {
        self.server = server
        self.notifier = notifier
        self.registry = registry
        self.collector = collector
        measurement = ChannelMeasurementCollector(registry: registry)
        process = ProcessCollector(registry: registry)
        lastDuration = registry.makeGauge(
            descriptor: .init(
                namespace: "cssd", subsystem: "metrics", metricName: "scrape_duration", unitName: "seconds",
                helpText: "Time the previous scrape took on the server's event loop (collect and render)."))
    }

    /// Collects the state and renders every family: the answer's body.
    func scrape(_ format: ExpositionFormat, allocator: ByteBufferAllocator) -> ByteBuffer {
        let started = ContinuousClock.now
        collector.collect(
            subsystem: server.backend.subsystem, backend: server.backend, pathEvents: server.pathEventTotals,
            guests: server.guests)
        measurement.collect(backend: server.backend, at: server.state.measurementClock())
        collector.collectIntent(server.state.intents?.drifts(in: server.backend))
        if let notifier { collector.collectNotifier(notifier()) }
        process.collect()
        text.removeAll(keepingCapacity: true)
        registry.emit(into: &text)
        text = ExpositionFormat.sortedByFamily(text)
        let body = format == .openMetrics ? ExpositionFormat.openMetrics(from: text) : text
        var buffer = allocator.buffer(capacity: body.count)
        buffer.writeBytes(body)
        lastDuration.set(to: MetricsRecorder.seconds(ContinuousClock.now - started))
        return buffer
    }

    /// A page of the site: the landing page, or the status page and its data from a snapshot
    /// taken now (`StatusSnapshot`).
    func page(_ page: SitePage, allocator: ByteBufferAllocator) -> ByteBuffer {
        switch page {
        case .landing:
            return allocator.buffer(string: StatusSnapshot.landing)
        case .status, .statusData:
            let subsystem = server.backend.subsystem
            let snapshot = StatusSnapshot(
                version: QMPServer.version, backend: server.backend.name, subsystem: subsystem,
                cssids: subsystem.cssids, journal: server.state.journal)
            return allocator.buffer(string: page == .status ? snapshot.html : snapshot.json.serialized() + "\n")
        }
    }
}
