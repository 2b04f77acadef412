// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import QMPCommands
import QMPServer

/// The Prometheus endpoint (`cssd --metrics tcp:HOST:PORT`): `GET /metrics` over HTTP/1
/// (SwiftNIO's NIOHTTP1 codec), on the QMP server's own event loop group.
///
/// A scrape runs on the server's single event loop, between QMP requests, and costs
/// O(chpids + css + guests + subscriptions + commands seen), whatever the number of
/// subchannels (`MetricsCollector`); it reads no file. The exposition is swift-prometheus'
/// (`ExpositionFormat` adds OpenMetrics' framing when the scraper asks for it).
///
/// Bounds: at most `maxConnections` connections (more are closed at once), a request must be
/// complete within `requestTimeout`, a header field may take 8 KiB and all of them 32 KiB
/// (beyond: 431), and an answer is written at once (a client that does not read holds its
/// answer's buffer until the timeout of its next request closes the connection).
package final class MetricsEndpoint: @unchecked Sendable {
    // Mutable state is touched only on the server's event loop.

    package struct Configuration: Sendable {
        package var host: String
        package var port: Int
        /// How long a client has to send a whole request (from connect or the last answer).
        package var requestTimeout: TimeAmount
        /// Connections served at once; more are closed on accept.
        package var maxConnections: Int

        package init(host: String, port: Int, requestTimeout: TimeAmount = .seconds(10), maxConnections: Int = 16) {
            self.host = host
            self.port = port
            self.requestTimeout = requestTimeout
            self.maxConnections = maxConnections
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
    /// - Returns: the running endpoint, with the address it bound.
    /// - Throws: `MetricsEndpointError` naming the address when it cannot bind.
    package static func start(
        _ configuration: Configuration, server: QMPServer, recorder: MetricsRecorder, logger: Logger
    ) async throws -> MetricsEndpoint {
        let loop = server.eventLoop
        let scraper = try await loop.submit {
            let collector = MetricsCollector(
                registry: recorder.registry, version: CSSDVersion.string, backend: server.state.backend.name)
            // Held weakly by the pipeline: the scraper keeps the collector alive.
            server.state.pathChanges.addSink(collector)
            return Scraper(
                state: server.state, registry: recorder.registry, collector: collector, notifier: recorder.notifier)
        }.get()
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = 8 * 1024
        limits.maxHeaderListSize = 32 * 1024
        limits.maxHeaderFieldCount = 64
        let decoderLimits = limits
        let bootstrap = ServerBootstrap(group: server.eventLoopGroup)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // One loop serves the server: the scraper's state is confined to it.
                    channel.eventLoop.preconditionInEventLoop()
                    guard scraper.connections < configuration.maxConnections else {
                        channel.close(promise: nil)
                        return
                    }
                    scraper.connections += 1
                    channel.closeFuture.whenComplete { _ in scraper.connections -= 1 }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withPipeliningAssistance: false, withErrorHandling: false,
                        withEncoderConfiguration: .init(), withDecoderLimitConfiguration: decoderLimits)
                    try channel.pipeline.syncOperations.addHandler(
                        MetricsHTTPHandler(requestTimeout: configuration.requestTimeout) { format in
                            scraper.scrape(format, allocator: channel.allocator)
                        })
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
        logger.info("metrics listening", metadata: ["address": "\(bound)"])
        return MetricsEndpoint(boundAddress: bound, channel: channel)
    }

    /// Stops accepting scrapes (connections in progress finish).
    package func close() async {
        try? await channel.close()
    }
}

package struct MetricsEndpointError: Error, CustomStringConvertible, Sendable {
    package let description: String
    init(_ description: String) { self.description = description }
}

/// The scrape itself, confined to the server's event loop.
final class Scraper: @unchecked Sendable {
    private let state: ServerState
    private let registry: PrometheusCollectorRegistry
    private let collector: MetricsCollector
    private let notifier: (@Sendable () -> NotifierFigures)?
    private let lastDuration: Gauge
    private var text: [UInt8] = []
    var connections = 0

    init(
        state: ServerState, registry: PrometheusCollectorRegistry, collector: MetricsCollector,
        notifier: (@Sendable () -> NotifierFigures)?
    ) {
        self.state = state
        self.notifier = notifier
        self.registry = registry
        self.collector = collector
        lastDuration = registry.makeGauge(
            descriptor: .init(
                namespace: "cssd", subsystem: "metrics", metricName: "scrape_duration", unitName: "seconds",
                helpText: "Time the previous scrape took on the server's event loop (collect and render)."))
    }

    /// Collects the state and renders every family: the answer's body.
    func scrape(_ format: ExpositionFormat, allocator: ByteBufferAllocator) -> ByteBuffer {
        let started = ContinuousClock.now
        collector.collect(state)
        if let notifier { collector.collectNotifier(notifier()) }
        text.removeAll(keepingCapacity: true)
        registry.emit(into: &text)
        let body = format == .openMetrics ? ExpositionFormat.openMetrics(from: text) : text
        var buffer = allocator.buffer(capacity: body.count)
        buffer.writeBytes(body)
        lastDuration.set(to: MetricsRecorder.seconds(ContinuousClock.now - started))
        return buffer
    }
}
