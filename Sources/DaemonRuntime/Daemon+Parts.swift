// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import ChannelMeasurement
import LinuxSysfs
import Logging
import MetricsExporter
import NIOCore
import PathEvents
import PathNotify
import QMPCommands
import QMPServer
import ServerSecurity
import StateStore
import TopologyFile
import VFIOCCW

#if canImport(Glibc)
import Glibc
#endif

/// The state dir as opened at start (step `state-store`).
struct OpenedStateDir {
    let store: StateStore
    let snapshot: StateStore.LoadedSnapshot?
    let journal: PathEventJournal
    let loadStarted: ContinuousClock.Instant
}

extension Daemon {
    /// Step `logging`.
    func makeLogger() -> Logger {
        if let givenLogger { return givenLogger }
        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in
            var handler = LogLineHandler(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "cssd")
    }

    /// Step `listeners`: the configured listeners, then systemd's, or `unix:cssd.sock`.
    func takeListeners(logger: Logger) throws -> ([Listener], gid_t?) {
        var listeners = configuration.listeners
        do {
            listeners += try SocketActivation.takeListeners()
        } catch {
            throw refusal("\(error)", logger: logger)
        }
        if listeners.isEmpty { listeners = [Listener(.unix(path: "cssd.sock"))] }
        // Sockets are for the owner only; 1000+ clients need more descriptors than the default.
        umask(0o077)
        raiseFileDescriptorLimit()
        guard let name = configuration.socketGroup else { return (listeners, nil) }
        guard let group = Self.groupID(name) else {
            throw refusal("--socket-group: no group '\(name)'", logger: logger)
        }
        return (listeners, group)
    }

    /// A group by name or number.
    static func groupID(_ text: String) -> gid_t? {
        if let number = gid_t(text) { return number }
        guard let entry = getgrnam(text) else { return nil }
        return entry.pointee.gr_gid
    }

    /// Step `security`.
    func loadSecurity(logger: Logger) throws -> TransportSecurity? {
        guard let tls = configuration.tls else { return nil }
        do {
            return try TransportSecurity(credentialsDirectory: tls.credentials, authzFile: tls.authz)
        } catch {
            throw refusal("cannot use the TLS settings: \(error)", logger: logger)
        }
    }

    /// Step `backend`: refuses to start rather than serve a half-read topology or tree.
    func loadBackend(logger: Logger) throws -> (ChannelSubsystemBackend, Guests) {
        switch configuration.backend {
        case .linuxSysfs(let root, _):
            let started = ContinuousClock.now
            do throws(BackendError) {
                // A large host's first reading takes seconds: say how far it got, in the log and
                // in systemd's STATUS= (`systemctl status` shows it while the start runs).
                let notifier = SystemdNotifier()
                let sysfs = try SysfsBackend(
                    root: root, procRoot: configuration.procRoot, runRoot: configuration.runRoot
                ) { read, total in
                    logger.info("sysfs reading", metadata: ["subchannels": "\(read) of \(total)"])
                    notifier.notify("STATUS=reading \(root): \(read) of \(total) subchannels")
                }
                for problem in sysfs.problems { logger.warning("sysfs: \(problem)") }
                logger.info(
                    "sysfs read",
                    metadata: [
                        "root": "\(root)", "subchannels": "\(sysfs.subsystem.subchannels.count)",
                        "chpids": "\(sysfs.subsystem.channelPaths.count)", "time": "\(ContinuousClock.now - started)",
                        "partition": "\(sysfs.systemInformation?.partitionName ?? "-")",
                        "kernel": "\(sysfs.kernelRelease.map { "\($0)" } ?? "-")",
                    ])
                return (sysfs, Guests())
            } catch {
                throw refusal("cannot read the Linux sysfs tree: \(error)", logger: logger)
            }
        case .model(let topology):
            let model = try loadModel(topology: topology, logger: logger)
            return (ModelBackend(model.subsystem, measurement: model.measurement), model.guests)
        }
    }

    /// The model of `topology` (or the embedded default) and its guests.
    private func loadModel(topology: String?, logger: Logger) throws -> (
        subsystem: Subsystem, guests: Guests, measurement: MeasurementModel
    ) {
        let started = ContinuousClock.now
        let subsystem: Subsystem
        let guests: Guests
        let measurement: MeasurementModel
        do {
            let description =
                try topology.map { (path) throws(TopologyFileError) in
                    try TopologyFile.decode(contentsOf: path)
                } ?? .embeddedDefault
            subsystem = try Subsystem(topology: description)
            do throws(TopologyError) {
                guests = try Guests(topology: description, host: subsystem)
                measurement = try MeasurementModel(topology: description, subsystem: subsystem)
            } catch {
                // Name the file's fields (crw-capacity, cu-model) when it came from a file.
                if let topology { throw TopologyFileError(file: topology, validation: error) }
                throw error
            }
        } catch {
            throw refusal("cannot load the topology: \(error)", logger: logger)
        }
        // Decoding a large topology file churns through temporary objects; give those pages
        // back so the server's footprint is the model's, not the decoder's high-water mark.
        releaseFreedMemory()
        logger.info(
            "topology loaded",
            metadata: [
                "source": "\(topology ?? "embedded default")", "subchannels": "\(subsystem.subchannels.count)",
                "chpids": "\(subsystem.channelPaths.count)", "guests": "\(guests.names.count)",
                "time": "\(ContinuousClock.now - started)",
            ])
        return (subsystem, guests, measurement)
    }

    /// Step `state-store`: the snapshot's model state and guests, then the journal up to it:
    /// the model's later changes are replayed (which numbers and journals them again); with a
    /// real host the journal is read up to the last recorded change.
    func openStateDir(backend source: ChannelSubsystemBackend, guests: inout Guests, logger: Logger) throws
        -> OpenedStateDir?
    {
        guard let stateDir = configuration.stateDir else { return nil }
        let loadStarted = ContinuousClock.now
        let kind = configuration.backend.kind
        let fingerprint = StateStore.fingerprint(of: source.subsystem, backend: kind.rawValue)
        let journalCapacity = configuration.options.eventJournal
        var opened: StateStore?
        do throws(StateStoreError) {
            let store = try StateStore.open(
                directory: stateDir.directory, fingerprint: fingerprint, backend: kind.rawValue,
                changedState: CommandRegistry.changedState,
                options: StateStore.Options(
                    journalCapacity: journalCapacity, snapshotEvery: stateDir.snapshotEvery,
                    keepsHost: kind != .model))
            opened = store
            let model = source as? ModelBackend
            let snapshot = try store.loadSnapshot(model: model?.subsystem)
            if let snapshot {
                if let restored = snapshot.model { model?.subsystem = restored }
                guests = snapshot.guests
            }
            let journal = try store.loadJournal(
                capacity: journalCapacity,
                newest: kind == .model ? snapshot?.lastSequence ?? 0 : store.storedLastSequence)
            return OpenedStateDir(store: store, snapshot: snapshot, journal: journal, loadStarted: loadStarted)
        } catch {
            opened?.close()
            throw refusal("refusing to start: \(error)", logger: logger)
        }
    }

    /// Step `server`, with the state dir's restore.
    func makeServer(_ parts: Parts, recorder: MetricsRecorder?, logger: Logger) throws -> QMPServer {
        var watch = BackendWatch()
        if case .linuxSysfs(_, let followed) = configuration.backend { watch = followed }
        let started = ContinuousClock.now
        do {
            return try QMPServer(
                configuration: ServerConfiguration(
                    listeners: parts.listeners, options: configuration.options, watch: watch,
                    security: parts.security, socketGroup: parts.socketGroup, limits: configuration.limits),
                backend: parts.backend, guests: parts.guests, journal: parts.state?.journal, observer: recorder,
                logger: logger, eventLoopGroup: parts.loop
            ) { state in
                guard let opened = parts.state else { return }
                try Self.restore(
                    opened, into: state, backend: self.configuration.backend.kind, started: started, logger: logger)
            }
        } catch let error as StateStoreError {
            throw refusal("refusing to start: \(error)", logger: logger)
        }
    }

    /// The state dir's log replayed into the new server state; the store becomes its durable
    /// log and its first path-change sink. With a real host, what changed while cssd was down
    /// is published.
    private static func restore(
        _ opened: OpenedStateDir, into state: ServerState, backend: BackendKind, started: ContinuousClock.Instant,
        logger: Logger
    ) throws(StateStoreError) {
        let store = opened.store
        let journaled = state.journal.count
        let restored = try store.restore(into: state)
        try restoreMeasurement(from: store, into: state, logger: logger)
        for failure in restored.failed {
            logger.warning("state dir: a recorded command failed again: \(failure)")
        }
        if store.replacedEmpty {
            logger.warning(
                "state dir: \(store.path) held no state (an empty file, as a first start interrupted before its first commit leaves it): started afresh with a new epoch"
            )
        }
        if let run = state.scenarios.interrupted {
            logger.warning(
                "state dir: scenario '\(run.name)' was interrupted: \(run.played) of \(run.total) steps played (the last '\(run.lastStep)'); the model is as they left it (query-scenario)"
            )
        }
        logger.info(
            store.created ? "state dir created" : "state restored",
            metadata: [
                "state-dir": "\(store.path)", "epoch": "\(store.epoch)",
                "snapshot":
                    "\(opened.snapshot.map { "commands 1-\($0.commands) sequence \($0.lastSequence)" } ?? "none")",
                "journal-read": "\(journaled)", "loading": "\(started - opened.loadStarted)",
                "commands": "\(restored.commands)",
                "last-sequence": "\(state.pathChanges.lastSequence)", "journal": "\(state.journal.count)",
                "guests": "\(state.guests.names.count)", "took": "\(ContinuousClock.now - opened.loadStarted)",
                "reading": "\(restored.reading)", "replaying": "\(restored.replaying)",
            ])
        if backend == .model && restored.lastSequence != store.storedLastSequence {
            let numbered = restored.lastSequence
            logger.warning(
                "state dir: replay numbered \(numbered) changes, the record says \(store.storedLastSequence)")
        }
        state.durability = store
        // Held weakly; the daemon holds `store` while it runs. Its place among the sinks is its
        // role's (API/path-change-pipeline.md).
        state.pathChanges.register(store, as: .stateStore)
        store.capture = {
            StateStore.Captured(
                model: (state.backend as? ModelBackend)?.subsystem, guests: state.guests,
                lastSequence: state.pathChanges.lastSequence)
        }
        store.afterSnapshot = { state.scenarios.interruptionMarker }
        guard store.keepsHost else { return }
        // Intended chpid states (API/intent.md): loaded before the host's changes are
        // published, so that a drift the reading shows is reported once they are.
        let intents = ChpidIntents(log: store, intended: try store.recordedIntents())
        state.intents = intents
        defer { reportDrift(intents, state: state, logger: logger) }
        // The host is the truth, and it may have changed while cssd was down: what differs
        // from the last recorded state is published now, as observed changes with new
        // sequence numbers (journaled and kept like any other), so that a resumed
        // subscriber learns of it.
        // Devices that came or went since (while cssd was down; while it ran, too, when
        // it did not stop cleanly: the record of the devices is taken at start and at a
        // clean stop) are no reason to refuse the state dir: the recorded devices become
        // the host's, and the count is logged.
        guard let recorded = try store.recordedHost(onto: state.subsystem) else {
            try store.recordHost(state.subsystem)
            return
        }
        var published = 0
        for change in recorded.pathChanges(to: state.subsystem) {
            guard let kind = PathEventChange.observed(change, before: recorded) else { continue }
            if state.pathChanges.publish(change, as: kind, cause: .observed(backend: backend.rawValue)) != nil {
                published += 1
            }
        }
        let layout = try store.recordHostLayout(state.subsystem)
        if published > 0 || !layout.isEmpty {
            logger.info(
                "host changed since the last recorded state",
                metadata: [
                    "paths": "\(published)", "last-sequence": "\(state.pathChanges.lastSequence)",
                    "subchannels-added": "\(layout.subchannelsAdded)",
                    "subchannels-removed": "\(layout.subchannelsRemoved)",
                    "chpids-added": "\(layout.channelPathsAdded)",
                    "chpids-removed": "\(layout.channelPathsRemoved)",
                ])
        }
    }

    /// At start, once the host's changes since the last record are published: every chpid
    /// that drifts from its intent gets its `drift` event, and the counts are logged.
    private static func reportDrift(_ intents: ChpidIntents, state: ServerState, logger: Logger) {
        guard !intents.intended.isEmpty else { return }
        let published = intents.publishDrift(state)
        let drifts = intents.drifts(in: state.backend).filter(\.drifted)
        let metadata: Logger.Metadata = [
            "intents": "\(intents.intended.count)", "drifted": "\(drifts.count)", "events": "\(published)",
            "chpids": "\(drifts.prefix(16).map(\.chpid.description).joined(separator: " "))",
        ]
        if drifts.isEmpty {
            logger.info("intended chpid state: no drift", metadata: metadata)
        } else {
            logger.warning("intended chpid state: chpids drifted (query-chpid-drift)", metadata: metadata)
        }
    }

    /// Step `notifier`: its payloads carry the server's epoch (the journal's, kept across
    /// restarts with a state dir). With a state dir the outbox is kept there, and only durable
    /// changes are published.
    func makeNotifier(server: QMPServer, state: OpenedStateDir?, logger: Logger) throws -> PathNotifier? {
        guard let configuration = configuration.notify else { return nil }
        var persistence: NotifyPersistence?
        if let store = state?.store, let stateDir = self.configuration.stateDir {
            persistence = NotifyPersistence(
                directory: stateDir.directory, lastSequence: server.state.pathChanges.lastSequence,
                journal: Array(server.state.journal.changes), cause: .command(by: .replay),
                durableThrough: { store.committedSequence })
        }
        let notifier: PathNotifier
        do throws(OutboxStoreError) {
            notifier = try PathNotifier(
                configuration: configuration, epoch: server.state.journal.epoch, persistence: persistence,
                logger: logger)
        } catch {
            throw refusal("refusing to start: \(error)", logger: logger)
        }
        server.addPathChangeSink(notifier, status: notifier.status)
        record(.notifier)
        return notifier
    }

    /// Step `metrics`: TLS unless asked otherwise when there are credentials (the safe default).
    func startMetrics(
        _ metrics: DaemonConfiguration.Metrics, server: QMPServer, recorder: MetricsRecorder, notifier: PathNotifier?,
        security: TransportSecurity?, logger: Logger
    ) async throws -> MetricsEndpoint {
        let metricsSecurity = metrics.usesTLS ? security : nil
        if security != nil && metricsSecurity == nil {
            logger.notice(
                "metrics served over plain HTTP although --tls-creds is given (--metrics-tls off)",
                metadata: ["address": "\(ListenAddress.tcp(host: metrics.host, port: metrics.port))"])
        }
        // Read at scrape time, on the loop: the outbox's and the publisher's short locks.
        let figures = notifier.map { notifier in
            let counts = notifier.figures
            let limits = notifier.configuration
            return { @Sendable () -> NotifierFigures in
                let (counters, state, connections) = counts()
                return NotifierFigures(
                    published: counters.published, confirmed: counters.confirmed, failed: counters.failed,
                    dropped: counters.dropped, gaps: counters.gapsReported, outboxDepth: counters.depth,
                    outboxBytes: counters.bytes, outboxMaxDepth: limits.maxEvents, outboxMaxBytes: limits.maxBytes,
                    connected: state == .connected, connections: connections, restored: counters.restored,
                    rebuilt: counters.rebuilt)
            }
        }
        return try await MetricsEndpoint.start(
            .init(
                host: metrics.host, port: metrics.port, security: metricsSecurity,
                handshakeTimeout: configuration.limits.handshakeTimeout),
            server: server, recorder: recorder, notifier: figures, logger: logger)
    }

    /// Step `state-store-closed`, once no command is taken any more and before the event loop
    /// stops: the state as a snapshot (read on the loop), so that the next start replays
    /// nothing, with a real host its devices as they are now, then the store closed
    /// (checkpointed: state.sqlite alone is the whole state).
    static func close(_ store: StateStore, server: QMPServer, logger: Logger) async {
        let taken = try? await server.eventLoop.submit {
            let snapshot = store.appendSnapshot()
            // After the snapshot, which folds a playing scenario's step records: the next
            // start says the scenario was interrupted (API/scenarios.md).
            let marker = server.state.scenarios.interruptionMarker.map {
                store.append(request: $0, time: server.state.clock(), sequences: nil)
            }
            return (marker ?? snapshot, store.keepsHost ? server.state.subsystem : nil)
        }.get()
        await offloaded {
            if let token = taken?.0, case .failure(let error) = store.waitUntilDurable(token) {
                logger.error("state dir: the snapshot at the stop failed: \(error)")
            }
            if let host = taken?.1 {
                do throws(StateStoreError) {
                    _ = try store.recordHostLayout(host)
                } catch {
                    logger.error("state dir: the host's devices could not be recorded at the stop: \(error)")
                }
            }
            if let failure = store.close() {
                logger.warning("state dir: closed without a checkpoint (the next start reads the log): \(failure)")
            }
        }
    }
}

private func raiseFileDescriptorLimit() {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else {
        return
    }
    limit.rlim_cur = limit.rlim_max
    setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
}

/// glibc's malloc_trim(0): returns freed heap pages to the system. Looked up at run time
/// because Swift's Glibc module does not export <malloc.h>; a no-op elsewhere.
private func releaseFreedMemory() {
    typealias MallocTrim = @convention(c) (Int) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return }
    _ = unsafeBitCast(symbol, to: MallocTrim.self)(0)
}
