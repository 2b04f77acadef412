// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import ArgumentParser
import CProcessSignals
import CSSBackend
import DaemonRuntime
import Logging
import NIOCore
import QMPCommands
import QMPServer
import QMPWire
import StateStore

#if canImport(Glibc)
import Glibc
#endif

@main
struct CSSD: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cssd",
        abstract: "QMP control server for the s390 channel subsystem.",
        discussion: """
            Speaks QEMU's QMP on every listener. With no --qmp option (and no socket
            from systemd) it listens on unix:./cssd.sock.
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
        help:
            "Listen for read-only QMP clients (query-* commands and path-event subscriptions): unix:PATH or tcp:HOST:PORT (repeatable)."
    )
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

    @Option(
        name: .customLong("proc-root"),
        help: """
            The directory that stands for /proc (default /proc), as ROOT in linux-sysfs:ROOT stands \
            for /sys: linux-sysfs reads sysinfo (the partition's name) and sys/kernel/osrelease there.
            """)
    var procRoot: String = "/proc"

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
        guard let choice = DaemonConfiguration.Backend.parse(backend) else {
            throw ValidationError("--backend: '\(backend)' is not 'model' or 'linux-sysfs[:ROOT]'")
        }
        guard choice.kind == .model || topology == nil else {
            throw ValidationError("--topology describes the model; the linux-sysfs backend reads the machine instead")
        }
        guard isDirectory(procRoot) else { throw ValidationError("--proc-root: '\(procRoot)' is not a directory") }
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
        let daemon = Daemon(configuration: try daemonConfiguration(), signalPipe: cssd_signal_pipe())
        do {
            try await daemon.run()
        } catch is DaemonStartError {
            throw ExitCode(1)  // logged by the daemon
        }
    }

    /// The flags as the daemon's configuration: the one place they are read after `validate()`.
    /// - Throws: `ValidationError` for a listener address or `--notify` settings that cannot be used.
    func daemonConfiguration() throws -> DaemonConfiguration {
        var listeners: [Listener] = []
        do {
            for text in qmp { listeners.append(Listener(try ListenAddress(parsing: text))) }
            for text in qmpReadOnly { listeners.append(Listener(try ListenAddress(parsing: text), readOnly: true)) }
        } catch {
            throw ValidationError("\(error)")
        }
        var backend = DaemonConfiguration.Backend.model(topology: topology)
        if case (.linuxSysfs, let root?)? = DaemonConfiguration.Backend.parse(self.backend) {
            let followedLog = kernelLog == "none" ? nil : kernelLog ?? (root == "/sys" ? "/dev/kmsg" : nil)
            let watch = BackendWatch(
                pollInterval: pollInterval > 0 ? .milliseconds(Int64(pollInterval)) : nil,
                sweepInterval: .milliseconds(Int64(sweepInterval)), inotify: !noInotify, kernelLog: followedLog)
            backend = .linuxSysfs(root: root, watch: watch)
        }
        var options = ServerOptions(
            limits: WireLimits(maxValueSize: maxRequestSize), eventQueueLimit: eventQueueLimit,
            eventJournal: eventJournal)
        if allowQuit { options.conditions.insert(.allowQuit) }
        var metricsEndpoint: DaemonConfiguration.Metrics?
        if let metrics, case .tcp(let host, let port) = try? ListenAddress(parsing: metrics) {
            metricsEndpoint = .init(host: host, port: port, usesTLS: metricsTLS != .off)
        }
        var configuration = DaemonConfiguration(
            listeners: listeners, backend: backend, options: options,
            limits: ConnectionLimits(
                maxClients: maxClients, maxHandshakes: maxTLSHandshakes,
                handshakeTimeout: .milliseconds(Int64(tlsHandshakeTimeout))),
            socketGroup: socketGroup, tls: tlsCreds.map { .init(credentials: $0, authz: tlsAuthz) },
            metrics: metricsEndpoint,
            stateDir: stateDir.map { .init(directory: $0, snapshotEvery: stateSnapshotEvery) },
            notify: try notify.configuration(), logLevel: Logger.Level(rawValue: logLevel)!)
        configuration.procRoot = procRoot
        return configuration
    }
}

/// Whether `path` names a directory (following links).
private func isDirectory(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
}

/// `--metrics-tls`: whether the metrics endpoint uses the TLS settings of QMP's tcp listeners.
enum MetricsTLS: String, ExpressibleByArgument, CaseIterable {
    case on, off
}
