// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import Logging
import MetricsExporter
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PathNotify
import QMPServer
import ServerSecurity
import ServiceLifecycle
import StateStore
import VFIOCCW

#if canImport(Glibc)
import Glibc
#endif

/// cssd, assembled: every part built from one `DaemonConfiguration` in one order, the long-lived
/// parts run as services of a swift-service-lifecycle `ServiceGroup` and stopped gracefully in
/// the reverse order (Hummingbird 2's `Application.run()`). `run()` takes these steps and records
/// each in `steps` as it is done:
///
/// Start:
/// 1. `signals`: the signal pipe is read (SIGTERM/SIGINT stop, SIGHUP reloads); signals caught
///    before wait in it.
/// 2. `logging`: the process's log (`LogLineHandler` at `logLevel`), unless a logger was given.
/// 3. `listeners`: the configured QMP listeners, then systemd's (socket activation), or
///    `unix:cssd.sock`; umask 077, the descriptor limit raised, the socket group looked up.
/// 4. `security`: the TLS credentials and the authz policy read.
/// 5. `backend`: the topology loaded into the model, or the sysfs tree read.
/// 6. `state-store`: the state dir opened and locked, its snapshot and journal read.
/// 7. `server`: the QMP server built on the daemon's event loop (its metrics recorder first);
///    the state dir's log replayed into it, the store made its durable log and first sink.
/// 8. `notifier`: the AMQP publisher built (its outbox restored from the state dir), then
///    added as a path-change sink.
/// 9. `durable-listeners`: after each commit the store wakes the server (held events), then
///    the notifier (durable notifications).
/// 10. Signals are routed to the server; a stop asked for until here ends the daemon now,
///     before any socket exists (`stopped-before-listening`: the store closed, no snapshot).
/// 11. `metrics`: the Prometheus endpoint bound (first: a failure leaves no socket file).
/// 12. `qmp`: every QMP listener bound.
/// 13. `notifier-started`, then `ready`: READY=1 to systemd, and the `onReady` callback.
///
/// A start-up failure is logged at critical and thrown as `DaemonStartError`, after what was
/// built is closed again. Stop (SIGTERM/SIGINT, `quit`, `shutdown()`): the services in the
/// reverse order of their start:
/// 14. `qmp-stopped`: SHUTDOWN to every client, connections and listeners closed, unix socket
///     files removed, the backend no longer followed.
/// 15. `metrics-stopped`.
/// 16. `state-store-closed`: a snapshot on the loop, a real host's devices recorded, the store
///     checkpointed (no write-ahead log left) and closed.
/// 17. `notifier-stopped`: within its bound (3 s), its outbox written to the state dir.
/// 18. `event-loop-stopped`.
package final class Daemon: Sendable {
    /// One step of the assembly or of the stop, in the order `run()` takes them.
    package enum Step: String, Sendable, CaseIterable {
        case signals, logging, listeners, security, backend
        case stateStore = "state-store"
        case server, notifier
        case durableListeners = "durable-listeners"
        case stoppedBeforeListening = "stopped-before-listening"
        case metrics, qmp
        case notifierStarted = "notifier-started"
        case ready
        case qmpStopped = "qmp-stopped"
        case metricsStopped = "metrics-stopped"
        case stateStoreClosed = "state-store-closed"
        case notifierStopped = "notifier-stopped"
        case eventLoopStopped = "event-loop-stopped"
    }

    /// What a serving daemon bound, for `onReady`.
    package struct Ready: Sendable {
        /// The QMP listeners, in order (a tcp port 0 resolved).
        package var qmp: [ListenAddress]
        /// The metrics endpoint (port 0 resolved); nil without one.
        package var metrics: ListenAddress?
    }

    package let configuration: DaemonConfiguration
    let signalPipe: CInt?
    let givenLogger: Logger?
    private let onReady: @Sendable (Ready) async -> Void
    private let router = SignalRouter()
    private let taken = NIOLockedValueBox<[Step]>([])

    /// - Parameters:
    ///   - signalPipe: the read end of a pipe that carries caught signals, one byte each (the
    ///     signal's number: cssd's C constructor, CProcessSignals); nil: no signals (`shutdown()`).
    ///   - logger: the log to write to; nil: the daemon sets up the process's logging
    ///     (`LoggingSystem.bootstrap`, once per process) and logs as `cssd`.
    ///   - onReady: called once every listener is bound, before `run()` serves.
    package init(
        configuration: DaemonConfiguration, signalPipe: CInt? = nil, logger: Logger? = nil,
        onReady: @escaping @Sendable (Ready) async -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.signalPipe = signalPipe
        self.givenLogger = logger
        self.onReady = onReady
    }

    /// The steps taken so far, in order (`Step`).
    package var steps: [Step] { taken.withLockedValue { $0 } }

    /// Stops the daemon as SIGTERM does: at once when it serves, else as soon as it would.
    package func shutdown() { router.route(SIGTERM) }

    func record(_ step: Step) { taken.withLockedValue { $0.append(step) } }

    /// Builds every part, serves until a stop, and stops every part (the type's steps).
    /// - Throws: `DaemonStartError` when cssd refuses to start (already logged); other errors
    ///   of the server's set-up as they are.
    package func run() async throws {
        router.start(reading: signalPipe)
        record(.signals)
        let logger = makeLogger()
        record(.logging)
        let (listeners, socketGroup) = try takeListeners(logger: logger)
        record(.listeners)
        let security = try loadSecurity(logger: logger)
        record(.security)
        let (source, loadedGuests) = try loadBackend(logger: logger)
        record(.backend)
        var guests = loadedGuests
        let state = try openStateDir(backend: source, guests: &guests, logger: logger)
        // However the rest ends: the state dir's lock goes with the store (a clean stop closes
        // it earlier, in the stop's own order).
        defer { state?.store.close() }
        if state != nil { record(.stateStore) }
        let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            try await serve(
                Parts(
                    listeners: listeners, socketGroup: socketGroup, security: security, backend: source,
                    guests: guests, state: state, loop: loop),
                logger: logger)
        } catch {
            try? await loop.shutdownGracefully()
            throw error
        }
        try? await loop.shutdownGracefully()
        record(.eventLoopStopped)
    }

    /// What the first steps made, for the ones after.
    struct Parts {
        var listeners: [Listener]
        var socketGroup: gid_t?
        var security: TransportSecurity?
        var backend: ChannelSubsystemBackend
        var guests: Guests
        var state: OpenedStateDir?
        var loop: MultiThreadedEventLoopGroup
    }

    /// Steps 7 to 18.
    private func serve(_ parts: Parts, logger: Logger) async throws {
        let recorder = configuration.metrics.map { _ in MetricsRecorder() }
        let server = try makeServer(parts, recorder: recorder, logger: logger)
        record(.server)
        let notifier = try makeNotifier(server: server, state: parts.state, logger: logger)
        if let store = parts.state?.store {
            store.addDurableListener(server.durabilityAdvanced)
            if let notifier { store.addDurableListener(notifier.durabilityAdvanced) }
            record(.durableListeners)
        }
        guard router.attach(server) else {
            logger.info("stopped by a signal before listening")
            record(.stoppedBeforeListening)
            await server.discard()
            return
        }
        var endpoint: MetricsEndpoint?
        do {
            if let metrics = configuration.metrics, let recorder {
                endpoint = try await startMetrics(
                    metrics, server: server, recorder: recorder, notifier: notifier, security: parts.security,
                    logger: logger)
                record(.metrics)
            }
            try await server.start()
            record(.qmp)
        } catch {
            let refused = refusal("\(error)", logger: logger)
            await endpoint?.close()
            await server.discard()
            throw refused
        }
        notifier?.start()
        if notifier != nil { record(.notifierStarted) }
        server.notifier.notify("READY=1\nSTATUS=serving \(parts.listeners.count) listener(s)")
        record(.ready)
        await onReady(Ready(qmp: server.boundAddresses, metrics: endpoint?.boundAddress))
        // Started in this order, stopped in the reverse one, each once the one after it stopped.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let notifier {
            // Its sink side lives on the loop; `stop` is for any thread (it joins its own).
            let stopping = UncheckedSendable(notifier)
            services.append(
                stopService("notifier") {
                    await offloaded { stopping.value.stop() }
                } done: {
                    self.record(.notifierStopped)
                })
        }
        if let store = parts.state?.store {
            services.append(
                stopService("state-store") {
                    await Self.close(store, server: server, logger: logger)
                } done: {
                    self.record(.stateStoreClosed)
                })
        }
        if let endpoint {
            services.append(
                stopService("metrics") {
                    await endpoint.close()
                } done: {
                    self.record(.metricsStopped)
                })
        }
        // `quit` or a signal ends the server's service: the group then stops the others.
        services.append(
            .init(
                service: QMPService(server: server) { self.record(.qmpStopped) },
                successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "qmp"))
        // Signals reach the daemon through the signal pipe (caught from the first instruction),
        // not through the group's handlers.
        let group = ServiceGroup(
            configuration: .init(
                services: services, gracefulShutdownSignals: [], cancellationSignals: [], logger: logger))
        try await group.run()
    }

    private func stopService(
        _ name: String, stop: @escaping @Sendable () async -> Void, done: @escaping @Sendable () -> Void
    ) -> ServiceGroupConfiguration.ServiceConfiguration {
        .init(service: StopOnShutdown(stop: stop, done: done), serviceName: name)
    }

    /// Logs why cssd refuses to start, at critical, and returns the error to throw.
    func refusal(_ message: String, logger: Logger) -> DaemonStartError {
        logger.critical("\(message)")
        return DaemonStartError(description: message)
    }
}

/// cssd refused to start (a listener, the TLS settings, the topology or tree, the state dir, the
/// notifier's outbox); the message was logged at critical. The executable exits 1.
package struct DaemonStartError: Error, CustomStringConvertible, Sendable {
    package let description: String
}
