// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import JSONValues
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PathChangePipeline
import PathEvents
import QMPCommands
import QMPTransport
import ServerSecurity
import ServiceLifecycle
import VFIOCCW

#if canImport(Glibc)
import Glibc
#endif

/// The QMP server: binds its listeners on one event loop and serves until a signal or `quit`.
///
/// Runs as a swift-service-lifecycle `Service`: SIGTERM/SIGINT (graceful shutdown) and the
/// `quit` command both send SHUTDOWN to every connection in command mode, flush, close the
/// connections and listeners, and remove the unix socket files.
package final class QMPServer: Service, @unchecked Sendable {
    // Mutable state is touched only on `core.loop`, or before start / after shutdown.

    package let configuration: ServerConfiguration
    private let group: MultiThreadedEventLoopGroup
    /// The server made `group` and stops it at the end of `serve`; else its owner does.
    private let ownsGroup: Bool
    private let core: ServerCore
    private var serverChannels: [Channel] = []
    private var socketFiles: [String] = []
    private let shutdownStream: AsyncStream<ShutdownCause>
    private let shutdownContinuation: AsyncStream<ShutdownCause>.Continuation
    /// Addresses actually bound (a tcp port 0 resolved), in listener order.
    package private(set) var boundAddresses: [ListenAddress] = []

    private var authzTask: RepeatedTask?
    /// Holds utilizations against path-event subscriptions' thresholds (`evaluateUtilization`).
    private var utilizationTask: RepeatedTask?
    private var watcher: InotifyWatcher?
    /// sd_notify: READY, RELOADING, STOPPING.
    package let notifier = SystemdNotifier()

    /// - Parameters:
    ///   - backend: the source of truth; nil: the model of `configuration.subsystem`.
    ///   - guests: the guests over it.
    ///   - journal: the path-change journal (a restored epoch); nil: a new one.
    ///   - observer: told of commands, connections and backend readings (metrics).
    ///   - prepare: run on the new state before any connection (restores a state dir).
    ///   - eventLoopGroup: a group of one loop to run on, which its owner stops after `serve`
    ///     returned (the daemon, whose other parts still use the loop then); nil: the server
    ///     makes its own and stops it at the end of `serve`.
    package init(
        configuration: ServerConfiguration, backend: ChannelSubsystemBackend? = nil, guests: Guests = Guests(),
        journal: PathEventJournal? = nil, observer: ServerObserver? = nil, logger: Logger,
        eventLoopGroup: MultiThreadedEventLoopGroup? = nil, prepare: ((ServerState) throws -> Void)? = nil
    ) throws {
        self.configuration = configuration
        self.group = eventLoopGroup ?? MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.ownsGroup = eventLoopGroup == nil
        let state = try ServerState.standard(
            options: configuration.options, backend: backend ?? configuration.subsystem.map { ModelBackend($0) },
            guests: guests, journal: journal)
        try prepare?(state)
        self.core = ServerCore(loop: group.next(), state: state, logger: logger, limits: configuration.limits)
        core.observer = observer
        if let observer {
            for listener in configuration.listeners {
                observer.listenerConfigured(listener)
                if configuration.security != nil, case .tcp = listener.address {
                    observer.tlsListenerConfigured(listener)
                }
            }
        }
        (shutdownStream, shutdownContinuation) = AsyncStream.makeStream(of: ShutdownCause.self)
        let continuation = shutdownContinuation
        let loop = core.loop
        state.onShutdownRequest = { cause in
            // Let the quit reply be written first.
            loop.execute { continuation.yield(cause) }
        }
    }

    /// Binds every listener. Throws with a clear message if one cannot be bound; listeners
    /// already bound are closed again, so the server never starts half-configured.
    package func start() async throws {
        try Self.checkPlainTCP(configuration)
        do {
            for listener in configuration.listeners {
                let channel = try await bind(listener)
                serverChannels.append(channel)
                if case .tcp(let host, _) = listener.address, let port = channel.localAddress?.port {
                    boundAddresses.append(.tcp(host: host, port: port))
                } else {
                    boundAddresses.append(listener.address)
                }
                let isTCP: Bool
                if case .tcp = listener.address { isTCP = true } else { isTCP = false }
                core.logger.info(
                    "listening",
                    metadata: [
                        "address": "\(boundAddresses.last!)", "readonly": "\(listener.readOnly)",
                        "tls": "\(isTCP && configuration.security != nil)",
                        "activated": "\(listener.descriptor != nil)",
                    ])
            }
        } catch {
            await closeListeners()
            throw error
        }
        try await watchBackend()
        watchAuthz()
        utilizationTask = core.loop.scheduleRepeatedTask(
            initialDelay: ServerCore.utilizationInterval, delay: ServerCore.utilizationInterval
        ) { [core] _ in core.evaluateUtilization() }
    }

    /// Plain tcp is for loopback only: anyone who reaches a QMP port may change the machine.
    static func checkPlainTCP(_ configuration: ServerConfiguration) throws {
        guard configuration.security == nil else { return }
        for listener in configuration.listeners {
            guard case .tcp(let host, _) = listener.address, !ListenerSocket.isLoopback(host) else { continue }
            let option = listener.readOnly ? "--qmp-readonly" : "--qmp"
            throw ServerStartError(
                "refusing \(option) \(listener.address) without TLS: it is not a loopback address, and anyone who "
                    + "reaches it could run QMP commands unauthenticated (QEMU calls a TCP monitor without TLS and "
                    + "authorization inappropriate). Give --tls-creds DIR (with --tls-authz FILE), or listen on "
                    + "127.0.0.1, [::1] or a unix socket.")
        }
    }

    /// Polls the authorization file once a second and reloads it when it changed.
    private func watchAuthz() {
        guard let security = configuration.security, security.authzFile != nil else { return }
        let logger = core.logger
        authzTask = core.loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [core] _ in
            // stat(2) and the read run on the thread pool, not the event loop.
            core.threads.security.submit { _ in security.reloadAuthzIfChanged(logger: logger) }
        }
    }

    /// Reloads the TLS credentials and the authorization policy (SIGHUP). Open connections
    /// are not disturbed; a file that cannot be used keeps the previous state and is logged.
    /// Reports RELOADING=1 and then READY=1 to systemd.
    ///
    /// Runs on the security thread (`BlockingThreads.security`), not as a Swift task: a reload
    /// must not wait for the cooperative thread pool, which busy TLS verifications may hold.
    /// - Parameter done: called on that thread once the reload is over (tests).
    package func requestReload(done: (@Sendable () -> Void)? = nil) {
        let security = configuration.security
        let logger = core.logger
        let notifier = self.notifier
        core.threads.security.submit { _ in
            notifier.reloading()
            logger.notice("reloading")
            if let security {
                security.reload(logger: logger)
            } else {
                logger.notice("nothing to reload: no --tls-creds")
            }
            notifier.notify("READY=1\nSTATUS=serving")
            done?()
        }
    }

    /// `requestReload`, awaited.
    package func reload() async {
        await withCheckedContinuation { continuation in requestReload { continuation.resume() } }
    }

    /// Follows an observed backend: its reading threads (poll ticks, the sweep, the kernel
    /// log), whose updates are applied on the loop, and inotify on its directories, read on
    /// the loop.
    private func watchBackend() async throws {
        let core = self.core
        guard core.state.backend is ObservedBackend else { return }
        let watch = configuration.watch
        let logger = core.logger
        let options = FollowOptions(
            pollInterval: watch.pollInterval.map { .nanoseconds($0.nanoseconds) },
            sweepInterval: .nanoseconds(watch.sweepInterval.nanoseconds), kernelLog: watch.kernelLog,
            log: { warning, message in
                if warning { logger.warning("\(message)") } else { logger.debug("\(message)") }
            })
        let directories = try await core.loop.submit { () -> [(path: String, target: ObservationTarget)] in
            let backend = core.state.backend as! ObservedBackend
            backend.startFollowing(options) { update in core.loop.execute { core.applyBackendUpdate(update) } }
            return watch.inotify ? backend.watchedDirectories : []
        }.get()
        if watch.inotify, let watcher = InotifyWatcher(logger: logger) {
            try await watcher.start(on: core.loop, directories: directories) { targets in
                (core.state.backend as? ObservedBackend)?.requestReread(targets)
            }
            self.watcher = watcher
            let paths = directories.compactMap { entry -> ObservationTarget? in
                if case .channelPath = entry.target { return entry.target }
                return nil
            }
            try await core.loop.submit {
                core.state.onBackendLayoutChange = { watcher.watch($0) }
                // What changed between the start-up reading and the watches went unseen (with
                // --poll-interval 0, for good): the listing is compared once more (entries
                // that came or went) and every path re-read. A subchannel attribute written in
                // that window is left to the sweep.
                (core.state.backend as? ObservedBackend)?.requestReread([.layout] + paths)
            }.get()
        }
        logger.info(
            "following the backend",
            metadata: [
                "poll": "\(watch.pollInterval.map { "\($0.nanoseconds / 1_000_000) ms" } ?? "off")",
                "sweep": "\(watch.sweepInterval.nanoseconds / 1_000_000) ms", "inotify": "\(watcher != nil)",
                "kernel-log": "\(watch.kernelLog ?? "none")",
            ])
    }

    /// Adds a consumer of every published path change besides the connections (the `--notify`
    /// publisher), and what `query-notify` reports. Call before `start()`; the caller keeps the
    /// sink alive (it is held weakly). `status` runs on the event loop and must not block.
    package func addPathChangeSink(_ sink: PathChangeSink, status: @escaping () -> JSON) {
        core.state.pathChanges.register(sink, as: .notifier)
        core.state.notifyStatus = status
    }

    /// Serves until `shutdown(cause:)`, `quit` or a graceful-shutdown signal; returns once every
    /// connection and listener is closed (the unix socket files removed) and the backend is no
    /// longer followed. The loop still runs then when the server was given its group: what
    /// commits on its behalf (the state store) writes its last state after this, and the owner
    /// stops the group.
    package func serve() async {
        let cause: ShutdownCause = await withGracefulShutdownHandler {
            var iterator = shutdownStream.makeAsyncIterator()
            return await iterator.next() ?? .hostSignal
        } onGracefulShutdown: { [shutdownContinuation] in
            shutdownContinuation.yield(.hostSignal)
        }
        notifier.notify("STOPPING=1")
        core.logger.info("shutting down", metadata: ["reason": "\(cause.rawValue)"])
        authzTask?.cancel()
        utilizationTask?.cancel()
        let core = self.core
        await watcher?.stop()
        try? await core.loop.submit { (core.state.backend as? ObservedBackend)?.stopFollowing() }.get()
        try? await core.loop.submit { core.closeAll(cause: cause) }.get()
        await closeListeners()
        // Give flushes of SHUTDOWN a moment to complete before the loop goes away.
        try? await core.loop.scheduleTask(in: .milliseconds(50)) {}.futureResult.get()
        // Not awaited: a write the kernel never completes must not hold the shutdown.
        core.threads.shutdown()
        if ownsGroup { try? await group.shutdownGracefully() }
    }

    /// Lets go of the threads of a server that will not serve (a stop before it started, or a
    /// failed `start`); its group too when it made it.
    package func discard() async {
        core.threads.shutdown()
        if ownsGroup { try? await group.shutdownGracefully() }
    }

    /// Service: start, then serve.
    package func run() async throws {
        try await start()
        await serve()
    }

    /// Wakes, on the loop, the connections whose events wait for their changes to be durable:
    /// to call after the durable log (`state.durability`) committed. Any thread.
    package var durabilityAdvanced: @Sendable () -> Void {
        let core = self.core
        return { core.loop.execute { core.wakeSubscribers() } }
    }

    /// Asks a running server to stop.
    package func shutdown(cause: ShutdownCause = .hostSignal) {
        shutdownContinuation.yield(cause)
    }

    /// The event loop group the server runs on (one loop): other endpoints of cssd (metrics)
    /// bind on it, so that they see `state` from the same thread as the QMP connections.
    package var eventLoopGroup: EventLoopGroup { group }

    /// The loop every connection, the model and `state` live on.
    package var eventLoop: EventLoop { core.loop }

    /// The server's shared state; touch it only on `eventLoop`.
    package var state: ServerState { core.state }

    // What other endpoints (metrics) read of the state, without the command layer; on
    // `eventLoop` only, like `state`.

    /// The source of truth served.
    package var backend: ChannelSubsystemBackend { core.state.backend }
    /// Guests and their vfio-ccw passthrough devices.
    package var guests: Guests { core.state.guests }
    /// The path-event subscriptions' totals, by granularity.
    package var pathEventTotals: [PathEventGranularity: PathEventTotals] { core.state.pathEvents.totals() }
    /// The path-change pipeline (to register a sink).
    package var pathChanges: PathChangePublisher { core.state.pathChanges }
    /// cssd's version (`query-version`'s, as text).
    package static var version: String { CSSDVersion.string }

    /// Number of open connections (for tests and logs).
    package func connectionCount() async -> Int {
        let core = self.core
        return (try? await core.loop.submit { core.connectionCount }.get()) ?? 0
    }

    /// The listen(2) backlog of every QMP listener, the socket-activated ones included.
    package static let listenBacklog: CInt = 1024

    private func bind(_ listener: Listener) async throws -> Channel {
        let core = self.core
        let readOnly = listener.readOnly
        let inputBacklog = configuration.inputBacklog
        let watermark = ChannelOptions.Types.WriteBufferWaterMark(
            low: configuration.outputLowWatermark, high: configuration.outputHighWatermark)
        let isTCP: Bool
        if case .tcp = listener.address { isTCP = true } else { isTCP = false }
        let security = isTCP ? configuration.security : nil
        let name = ListenerName(listener.address.description)
        // A socket made here (unix) or handed over by systemd, which NIO adopts rather than binds.
        let adopted: CInt?
        switch (listener.address, listener.descriptor) {
        case (_, let descriptor?): adopted = descriptor
        case (.tcp, nil): adopted = nil
        case (.unix(let path), nil):
            try UnixSocketFile.prepare(path)
            adopted = try ListenerSocket.bindUnix(path: path, group: configuration.socketGroup)
            socketFiles.append(path)
        }
        let logger = core.logger
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: Self.listenBacklog)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // NIO applies `.backlog` when it binds; adopting a socket it listens again
                    // with its default of 128, so the backlog is set once more (before the
                    // first accept: the channel is not registered yet).
                    if let adopted { try ListenerSocket.listen(adopted, backlog: Self.listenBacklog) }
                    try AcceptBackoff.install(on: channel, logger: logger) { name.value }
                }
            }
            .childChannelOption(.writeBufferWaterMark, value: watermark)
            // A client that half-closes still gets every reply (QMPConnectionHandler).
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(
                .recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 16384, maximum: 65536)
            )
            .childChannelInitializer { channel in
                core.accept(
                    channel, listener: name.value, readOnly: readOnly, security: security, inputBacklog: inputBacklog,
                    observed: listener)
            }
        let channel: Channel
        switch (listener.address, adopted) {
        case (_, let descriptor?):
            do {
                channel = try await bootstrap.withBoundSocket(descriptor).get()
            } catch {
                throw ServerStartError(
                    listener.descriptor != nil
                        ? "cannot serve the socket-activated \(listener.address): \(error)"
                        : "cannot listen on \(listener.address): \(error)")
            }
        case (.tcp(let host, let port), nil):
            do {
                channel = try await bootstrap.bind(host: host, port: port).get()
            } catch {
                throw ServerStartError("cannot listen on \(listener.address): \(error)")
            }
        case (.unix, nil):
            preconditionFailure("a unix listener is always adopted")
        }
        if case .tcp(let host, _) = listener.address, let port = channel.localAddress?.port {
            let bound = ListenAddress.tcp(host: host, port: port).description
            try await core.loop.submit { name.value = bound }.get()
        }
        return channel
    }

    private func closeListeners() async {
        for channel in serverChannels { try? await channel.close() }
        serverChannels.removeAll()
        for path in socketFiles { unlink(path) }
        socketFiles.removeAll()
    }
}
