// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import ArgumentParser
import CSSBackend
import CSSDMetrics
import CSSDSignals
import CSSModel
import Dispatch
import LinuxSysfs
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PathChangePipeline
import PathEvents
import PathNotify
import QMPCommands
import QMPServer
import QMPWire
import ServerSecurity
import StateStore
import TopologyFile
import VFIOCCW

#if canImport(Glibc)
import Glibc
#endif

@main
struct CSSD: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cssd",
        abstract: "QMP control server for the s390 channel subsystem.",
        discussion: """
            Speaks QEMU's QMP on every listener. With no --qmp option it listens on unix:./cssd.sock.
            Examples:
              cssd --qmp unix:/run/cssd.sock --qmp tcp:127.0.0.1:4444
              cssd --qmp unix:/run/cssd.sock --qmp-readonly unix:/run/cssd-ro.sock
              cssd --backend linux-sysfs --poll-interval 500     (a real s390 host's /sys)
            """,
        version: CSSDVersion.string
    )

    @Option(name: .customLong("qmp"), help: "Listen for QMP clients: unix:PATH or tcp:HOST:PORT (repeatable).")
    var qmp: [String] = []

    @Option(
        name: .customLong("qmp-readonly"),
        help: "Listen for read-only QMP clients (query-* commands only): unix:PATH or tcp:HOST:PORT (repeatable).")
    var qmpReadOnly: [String] = []

    @Option(
        name: .customLong("topology"),
        help: "The channel subsystem to serve: a topology file (API/topology.md). Default: the embedded one.")
    var topology: String?

    @Option(
        name: .customLong("backend"),
        help: """
            What to serve: 'model' (the topology, default) or 'linux-sysfs[:ROOT]', the machine \
            this Linux runs on, read from ROOT (default /sys; API/linux-sysfs.md).
            """)
    var backend: String = "model"

    @Option(
        name: .customLong("poll-interval"),
        help: """
            linux-sysfs: read every channel path's attributes every N milliseconds, and a share of \
            the subchannels (the sweep), for changes made by others (0: never).
            """)
    var pollInterval: Int = 1000

    @Option(
        name: .customLong("sweep-interval"),
        help: """
            linux-sysfs: read every subchannel at least once within N milliseconds, a bounded share \
            per poll tick (API/linux-sysfs.md).
            """)
    var sweepInterval: Int = 30000

    @Option(
        name: .customLong("kernel-log"),
        help: """
            linux-sysfs: follow this kernel log (or a file or FIFO with its lines) and re-read a \
            channel path at once when cio reports on it; 'none' to not follow one. Default: \
            /dev/kmsg when ROOT is /sys, else none.
            """)
    var kernelLog: String?

    @Flag(
        name: .customLong("no-inotify"),
        help: "linux-sysfs: do not also watch the tree with inotify (real sysfs notifies few attributes).")
    var noInotify = false

    @Option(
        name: .customLong("metrics"),
        help: """
            Serve Prometheus metrics at GET /metrics over HTTP on tcp:HOST:PORT (port 0 picks a \
            free one; the bound address is logged as 'metrics listening'); HTTPS with --tls-creds.
            """)
    var metrics: String?

    @Option(
        name: .customLong("metrics-tls"),
        help: """
            on: --metrics serves HTTPS with the --tls-creds certificates and --tls-authz policy, as \
            QMP's tcp listeners (the default with --tls-creds); off: plain HTTP (the default without).
            """)
    var metricsTLS: MetricsTLS?

    @Flag(name: .customLong("allow-quit"), help: "Provide the quit command, which stops the server.")
    var allowQuit = false

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(
        name: .customLong("max-request-size"),
        help: "Largest JSON value a client may send, in bytes (QEMU: 67108864).")
    var maxRequestSize: Int = WireLimits().maxValueSize

    @Option(
        name: .customLong("event-queue-limit"),
        help: """
            Path events a subscription holds while its client does not read (1..1048576); \
            beyond it they are coalesced, then dropped and counted (API/path-events.md).
            """)
    var eventQueueLimit: Int = ServerOptions().eventQueueLimit

    @Option(
        name: .customLong("event-journal"),
        help: """
            Path changes kept in memory for clients that resume (subscribe-path-events 'since'), \
            0..16777216; about 150 bytes each plus 24 per subchannel a change altered (API/resume.md).
            """)
    var eventJournal: Int = ServerOptions().eventJournal

    @Option(
        name: .customLong("state-dir"),
        help: """
            Keep what cssd owns (model changes, guests, attachments, the epoch, sequence and journal) \
            in DIR/state.sqlite so it survives a crash and a restart; one cssd per DIR, which it \
            locks (DIR/lock; API/resume.md).
            """)
    var stateDir: String?

    @Option(
        name: .customLong("state-snapshot-every"),
        help: """
            --state-dir: write a snapshot of the state every N recorded commands (and on a clean \
            stop) and drop the log before it, so that a restart replays at most N (0: only on a \
            clean stop; API/resume.md).
            """)
    var stateSnapshotEvery: Int = StateStore.Options().snapshotEvery

    @OptionGroup(title: "Notifications on the AMQP bus")
    var notify: NotifyOptions

    @Option(
        name: .customLong("tls-creds"),
        help: """
            TLS on every tcp listener, with client certificates: a directory in QEMU's tls-creds-x509 \
            layout (ca-cert.pem, server-cert.pem, server-key.pem, optional ca-crl.pem).
            """)
    var tlsCreds: String?

    @Option(
        name: .customLong("tls-authz"),
        help:
            "Which client certificates (by DN) may connect: a QEMU authz-list-file JSON file; reloaded on change and SIGHUP."
    )
    var tlsAuthz: String?

    @Option(
        name: .customLong("socket-group"), help: "Unix sockets owned by this group, mode 0660 (default: mode 0600).")
    var socketGroup: String?

    @Option(name: .customLong("max-clients"), help: "Most connections at once; more are closed and logged.")
    var maxClients: Int = ConnectionLimits().maxClients

    @Option(name: .customLong("max-tls-handshakes"), help: "Most TLS handshakes in progress at once.")
    var maxTLSHandshakes: Int = ConnectionLimits().maxHandshakes

    @Option(
        name: .customLong("tls-handshake-timeout"), help: "Milliseconds a TLS client has to complete its handshake.")
    var tlsHandshakeTimeout: Int = 10_000

    func validate() throws {
        guard (0...(1 << 24)).contains(eventJournal) else {
            throw ValidationError("--event-journal must be between 0 and 16777216 changes")
        }
        guard (0...(1 << 30)).contains(stateSnapshotEvery) else {
            throw ValidationError("--state-snapshot-every must be between 0 and 1073741824 commands")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError(
                "--log-level: '\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical")
        }
        guard maxRequestSize >= 1024, maxRequestSize <= 1 << 30 else {
            throw ValidationError("--max-request-size must be between 1024 and 1073741824 bytes")
        }
        guard backend == "model" || backend == "linux-sysfs" || backend.hasPrefix("linux-sysfs:") else {
            throw ValidationError("--backend: '\(backend)' is not 'model' or 'linux-sysfs[:ROOT]'")
        }
        guard backend == "model" || topology == nil else {
            throw ValidationError("--topology describes the model; the linux-sysfs backend reads the machine instead")
        }
        guard pollInterval >= 0 else { throw ValidationError("--poll-interval must be 0 or more milliseconds") }
        guard sweepInterval >= 1 else { throw ValidationError("--sweep-interval must be 1 or more milliseconds") }
        if let metrics {
            guard case .tcp = try? ListenAddress(parsing: metrics) else {
                throw ValidationError("--metrics: '\(metrics)' is not tcp:HOST:PORT (Prometheus scrapes over TCP)")
            }
        }
        guard (1...(1 << 20)).contains(eventQueueLimit) else {
            throw ValidationError("--event-queue-limit must be between 1 and 1048576 events")
        }
        if let metricsTLS {
            guard metrics != nil else {
                throw ValidationError(
                    "--metrics-tls \(metricsTLS.rawValue) configures the metrics endpoint: it needs --metrics tcp:HOST:PORT"
                )
            }
            guard metricsTLS == .off || tlsCreds != nil else {
                throw ValidationError(
                    "--metrics-tls on serves metrics with the --tls-creds certificates: it needs --tls-creds DIR")
            }
        }
        guard tlsAuthz == nil || tlsCreds != nil else {
            throw ValidationError("--tls-authz checks TLS client certificates: it needs --tls-creds")
        }
        guard maxClients >= 1, maxTLSHandshakes >= 1 else {
            throw ValidationError("--max-clients and --max-tls-handshakes must be at least 1")
        }
        guard (1...3_600_000).contains(tlsHandshakeTimeout) else {
            throw ValidationError("--tls-handshake-timeout must be between 1 and 3600000 ms")
        }
    }

    func run() async throws {
        // First: from here on SIGTERM/SIGINT stop cleanly and SIGHUP reloads (before, they are
        // held in the signal pipe since the process started).
        let signals = SignalRouter()
        signals.start()
        let level = Logger.Level(rawValue: logLevel)!
        LoggingSystem.bootstrap { label in
            var handler = LogLineHandler(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "cssd")

        var listeners: [Listener] = []
        do {
            for text in qmp { listeners.append(Listener(try ListenAddress(parsing: text))) }
            for text in qmpReadOnly { listeners.append(Listener(try ListenAddress(parsing: text), readOnly: true)) }
        } catch {
            throw ValidationError("\(error)")
        }
        do {
            listeners += try SocketActivation.takeListeners()
        } catch {
            logger.critical("\(error)")
            throw ExitCode(1)
        }
        if listeners.isEmpty { listeners = [Listener(.unix(path: "cssd.sock"))] }

        // Sockets are for the owner only; 1000+ clients need more descriptors than the default.
        umask(0o077)
        raiseFileDescriptorLimit()

        var group: gid_t?
        if let socketGroup {
            guard let found = Self.groupID(socketGroup) else {
                logger.critical("--socket-group: no group '\(socketGroup)'")
                throw ExitCode(1)
            }
            group = found
        }
        var security: TransportSecurity?
        if let tlsCreds {
            do {
                security = try TransportSecurity(credentialsDirectory: tlsCreds, authzFile: tlsAuthz)
            } catch {
                logger.critical("cannot use the TLS settings: \(error)")
                throw ExitCode(1)
            }
        }

        // Refuse to start rather than serve a half-read topology or tree.
        let source: ChannelSubsystemBackend
        var guests = Guests()
        var followedLog: String?
        if backend.hasPrefix("linux-sysfs") {
            let root = backend.hasPrefix("linux-sysfs:") ? String(backend.dropFirst("linux-sysfs:".count)) : "/sys"
            followedLog = kernelLog == "none" ? nil : kernelLog ?? (root == "/sys" ? "/dev/kmsg" : nil)
            let started = ContinuousClock.now
            do throws(BackendError) {
                let sysfs = try SysfsBackend(root: root)
                for problem in sysfs.problems { logger.warning("sysfs: \(problem)") }
                logger.info(
                    "sysfs read",
                    metadata: [
                        "root": "\(root)", "subchannels": "\(sysfs.subsystem.subchannels.count)",
                        "chpids": "\(sysfs.subsystem.channelPaths.count)", "time": "\(ContinuousClock.now - started)",
                    ])
                source = sysfs
            } catch {
                logger.critical("cannot read the Linux sysfs tree: \(error)")
                throw ExitCode(1)
            }
        } else {
            let model = try loadModel(logger: logger)
            source = ModelBackend(model.subsystem)
            guests = model.guests
        }

        var options = ServerOptions(
            limits: WireLimits(maxValueSize: maxRequestSize), eventQueueLimit: eventQueueLimit,
            eventJournal: eventJournal)
        if allowQuit { options.conditions.insert("allow-quit") }
        let watch = BackendWatch(
            pollInterval: pollInterval > 0 ? .milliseconds(Int64(pollInterval)) : nil,
            sweepInterval: .milliseconds(Int64(sweepInterval)), inotify: !noInotify, kernelLog: followedLog)
        let limits = ConnectionLimits(
            maxClients: maxClients, maxHandshakes: maxTLSHandshakes,
            handshakeTimeout: .milliseconds(Int64(tlsHandshakeTimeout)))
        var store: StateStore?
        // However run() ends: the state dir's lock goes with the store (a clean stop closes it
        // earlier, in the stop's own order: below).
        defer { store?.close() }
        var journal: PathEventJournal?
        var snapshot: StateStore.LoadedSnapshot?
        let loadStarted = ContinuousClock.now
        if let stateDir {
            let fingerprint = StateStore.fingerprint(of: source.subsystem, backend: source.name)
            do throws(StateStoreError) {
                let opened = try StateStore.open(
                    directory: stateDir, fingerprint: fingerprint, backend: source.name,
                    changedState: CommandRegistry.changedState,
                    options: StateStore.Options(
                        journalCapacity: eventJournal, snapshotEvery: stateSnapshotEvery,
                        keepsHost: source.kind != .model))
                store = opened
                // The snapshot's model state and guests, then the journal up to it: the model's
                // later changes are replayed (which numbers and journals them again); with a
                // real host the journal is read up to the last recorded change.
                let model = source as? ModelBackend
                snapshot = try opened.loadSnapshot(model: model?.subsystem)
                if let snapshot {
                    if let restored = snapshot.model { model?.subsystem = restored }
                    guests = snapshot.guests
                }
                journal = try opened.loadJournal(
                    capacity: eventJournal,
                    newest: source.name == "model" ? snapshot?.lastSequence ?? 0 : opened.storedLastSequence)
            } catch {
                logger.critical("refusing to start: \(error)")
                throw ExitCode(1)
            }
        }
        let recorder = metrics.map { _ in MetricsRecorder() }
        let started = ContinuousClock.now
        let server: QMPServer
        do {
            server = try QMPServer(
                configuration: ServerConfiguration(
                    listeners: listeners, options: options, watch: watch, security: security, socketGroup: group,
                    limits: limits),
                backend: source, guests: guests, journal: journal, observer: recorder, logger: logger
            ) { state in
                guard let store else { return }
                let journaled = state.journal.count
                let restored = try store.restore(into: state)
                for failure in restored.failed {
                    logger.warning("state dir: a recorded command failed again: \(failure)")
                }
                logger.info(
                    store.created ? "state dir created" : "state restored",
                    metadata: [
                        "state-dir": "\(store.path)", "epoch": "\(store.epoch)",
                        "snapshot":
                            "\(snapshot.map { "commands 1-\($0.commands) sequence \($0.lastSequence)" } ?? "none")",
                        "journal-read": "\(journaled)", "loading": "\(started - loadStarted)",
                        "commands": "\(restored.commands)",
                        "last-sequence": "\(state.pathChanges.lastSequence)", "journal": "\(state.journal.count)",
                        "guests": "\(state.guests.names.count)", "took": "\(ContinuousClock.now - loadStarted)",
                        "reading": "\(restored.reading)", "replaying": "\(restored.replaying)",
                    ])
                if source.name == "model" && restored.lastSequence != store.storedLastSequence {
                    let numbered = restored.lastSequence
                    logger.warning(
                        "state dir: replay numbered \(numbered) changes, the record says \(store.storedLastSequence)")
                }
                state.durability = store
                state.pathChanges.register(store, as: .stateStore)  // held weakly; `store` lives as long as run()
                store.capture = {
                    StateStore.Captured(
                        model: (state.backend as? ModelBackend)?.subsystem, guests: state.guests,
                        lastSequence: state.pathChanges.lastSequence)
                }
                guard store.keepsHost else { return }
                // The host is the truth, and it may have changed while cssd was down: what differs
                // from the last recorded state is published now, as observed changes with new
                // sequence numbers (journaled and kept like any other), so that a resumed
                // subscriber learns of it.
                // Devices that came or went since (while cssd was down; while it ran, too, when
                // it did not stop cleanly: the record of the devices is taken at start and at a
                // clean stop) are no reason to refuse the state dir: the recorded devices become
                // the host's, and the count is logged.
                if let recorded = try store.recordedHost(onto: state.subsystem) {
                    var published = 0
                    for change in recorded.pathChanges(to: state.subsystem) {
                        guard let kind = PathEventChange.observed(change, before: recorded) else { continue }
                        if state.pathChanges.publish(change, as: kind, cause: .observed(backend: source.name)) != nil {
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
                } else {
                    try store.recordHost(state.subsystem)
                }
            }
        } catch let error as StateStoreError {
            logger.critical("refusing to start: \(error)")
            throw ExitCode(1)
        }
        // The notifier lives as long as the server (the pipeline holds its sinks weakly). Its
        // payloads carry the server's epoch: the journal's, kept across restarts with --state-dir.
        var notifier: PathNotifier?
        if let configuration = try notify.configuration() {
            // With a state dir the outbox is kept there, and only durable changes are published.
            var persistence: NotifyPersistence?
            if let store, let stateDir {
                persistence = NotifyPersistence(
                    directory: stateDir, lastSequence: server.state.pathChanges.lastSequence,
                    journal: Array(server.state.journal.changes), cause: .command(connection: 0),
                    durableThrough: { store.committedSequence })
            }
            let publisher: PathNotifier
            do throws(OutboxStoreError) {
                publisher = try PathNotifier(
                    configuration: configuration, epoch: server.state.journal.epoch, persistence: persistence,
                    logger: logger)
            } catch {
                logger.critical("refusing to start: \(error)")
                throw ExitCode(1)
            }
            if let store {
                // The server's own wake-up (held events) first, then the notifier's.
                let wakeServer = store.onDurable
                let wakeNotifier = publisher.durabilityAdvanced
                store.onDurable = {
                    wakeServer?()
                    wakeNotifier()
                }
            }
            server.addPathChangeSink(publisher, status: publisher.status)
            notifier = publisher
            // Read at scrape time, on the loop: the outbox's and the publisher's short locks.
            let figures = publisher.figures
            recorder?.notifier = {
                let (counters, state, connections) = figures()
                return NotifierFigures(
                    published: counters.published, confirmed: counters.confirmed, failed: counters.failed,
                    dropped: counters.dropped, gaps: counters.gapsReported, outboxDepth: counters.depth,
                    outboxBytes: counters.bytes, outboxMaxDepth: configuration.maxEvents,
                    outboxMaxBytes: configuration.maxBytes, connected: state == .connected,
                    connections: connections, restored: counters.restored, rebuilt: counters.rebuilt)
            }
        }
        // A stop asked for before this point ends cssd here, before any socket exists.
        guard signals.attach(server) else {
            logger.info("stopped by a signal before listening")
            return
        }
        do {
            // Metrics first: it cannot leave QMP socket files behind if it fails to bind.
            if let metrics, let recorder, case .tcp(let host, let port) = try ListenAddress(parsing: metrics) {
                // TLS unless asked otherwise when there are credentials: the safe default.
                let metricsSecurity = metricsTLS == .off ? nil : security
                if security != nil && metricsSecurity == nil {
                    logger.notice(
                        "metrics served over plain HTTP although --tls-creds is given (--metrics-tls off)",
                        metadata: ["address": "\(metrics)"])
                }
                _ = try await MetricsEndpoint.start(
                    .init(host: host, port: port, security: metricsSecurity, handshakeTimeout: limits.handshakeTimeout),
                    server: server, recorder: recorder, logger: logger)
            }
            try await server.start()
        } catch {
            logger.critical("\(error)")
            throw ExitCode(1)
        }
        notifier?.start()
        defer { notifier?.stop() }
        server.notifier.notify("READY=1\nSTATUS=serving \(listeners.count) listener(s)")
        // A clean stop, once no command is taken any more and before the event loop stops:
        // the state as a snapshot (read on the loop), so that the next start replays nothing,
        // with a real host its devices as they are now, then the store closed (checkpointed:
        // state.sqlite alone is the whole state).
        let stopping = store
        await server.serve {
            guard let stopping else { return }
            let taken = try? await server.eventLoop.submit {
                (stopping.appendSnapshot(), stopping.keepsHost ? server.state.subsystem : nil)
            }.get()
            if let token = taken?.0, case .failure(let error) = stopping.waitUntilDurable(token) {
                logger.error("state dir: the snapshot at the stop failed: \(error)")
            }
            if let host = taken?.1 {
                do throws(StateStoreError) {
                    _ = try stopping.recordHostLayout(host)
                } catch {
                    logger.error("state dir: the host's devices could not be recorded at the stop: \(error)")
                }
            }
            if let failure = stopping.close() {
                logger.warning("state dir: closed without a checkpoint (the next start reads the log): \(failure)")
            }
        }
    }
}

/// `--metrics-tls`: whether the metrics endpoint uses the TLS settings of QMP's tcp listeners.
enum MetricsTLS: String, ExpressibleByArgument, CaseIterable {
    case on, off
}

/// Carries the signals the C constructor caught (CSSDSignals) to the server: SIGTERM and
/// SIGINT stop it (at once if it serves, else as soon as it does), SIGHUP reloads it (and is
/// ignored before it serves: there is nothing loaded to reload yet).
final class SignalRouter: @unchecked Sendable {
    private let lock = NIOLock()
    private var server: QMPServer?
    private var stopRequested = false

    /// Reads the signal pipe on a thread of its own.
    func start() {
        let fd = cssd_signal_pipe()
        guard fd >= 0 else { return }
        DispatchQueue(label: "cssd.signals").async { [self] in
            var byte: UInt8 = 0
            while true {
                let n = read(fd, &byte, 1)
                if n < 0 && errno == EINTR { continue }
                guard n == 1 else { return }
                handle(Int32(byte))
            }
        }
    }

    private func handle(_ signal: Int32) {
        let server: QMPServer? = lock.withLock {
            if signal != SIGHUP { stopRequested = true }
            return self.server
        }
        guard let server else { return }
        if signal == SIGHUP {
            Task { await server.reload() }
        } else {
            server.shutdown(cause: .hostSignal)
        }
    }

    /// From now on signals go to `server`. Returns false when a stop was already asked for.
    func attach(_ server: QMPServer) -> Bool {
        lock.withLock {
            self.server = server
            return !stopRequested
        }
    }
}

extension CSSD {
    /// The model of `--topology` (or the embedded default) and its guests; exits 1 on a bad file.
    private func loadModel(logger: Logger) throws -> (subsystem: Subsystem, guests: Guests) {
        let started = ContinuousClock.now
        let subsystem: Subsystem
        let guests: Guests
        do {
            let description =
                try topology.map { (path) throws(TopologyFileError) in
                    try TopologyFile.decode(contentsOf: path)
                } ?? .embeddedDefault
            subsystem = try Subsystem(topology: description)
            do throws(TopologyError) {
                guests = try Guests(topology: description, host: subsystem)
            } catch {
                // Name the file's fields (crw-capacity, cu-model) when it came from a file.
                if let topology { throw TopologyFileError(file: topology, validation: error) }
                throw error
            }
        } catch {
            logger.critical("cannot load the topology: \(error)")
            throw ExitCode(1)
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
        return (subsystem, guests)
    }
}

extension CSSD {
    /// A group by name or number.
    static func groupID(_ text: String) -> gid_t? {
        if let number = gid_t(text) { return number }
        guard let entry = getgrnam(text) else { return nil }
        return entry.pointee.gr_gid
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
