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

    @OptionGroup(title: "Listeners and clients")
    var listenOptions: ListenOptions

    @OptionGroup(title: "What to serve")
    var serveOptions: ServeOptions

    @OptionGroup(title: "State, path events and logs")
    var stateOptions: StateOptions

    @OptionGroup(title: "Metrics")
    var metricsOptions: MetricsOptions

    @OptionGroup(title: "TLS")
    var tlsOptions: TLSOptions

    @OptionGroup(title: "Notifications on the AMQP bus")
    var notify: NotifyOptions

    // The options by name, wherever their group (validate() and daemonConfiguration() read these).
    var qmp: [String] { listenOptions.qmp }
    var qmpReadOnly: [String] { listenOptions.qmpReadOnly }
    var socketGroup: String? { listenOptions.socketGroup }
    var allowQuit: Bool { listenOptions.allowQuit }
    var maxClients: Int { listenOptions.maxClients }
    var maxRequestSize: Int { listenOptions.maxRequestSize }
    var backend: String { serveOptions.backend }
    var topology: String? { serveOptions.topology }
    var pollInterval: Int { serveOptions.pollInterval }
    var sweepInterval: Int { serveOptions.sweepInterval }
    var kernelLog: String? { serveOptions.kernelLog }
    var procRoot: String { serveOptions.procRoot }
    var runRoot: String { serveOptions.runRoot }
    var noInotify: Bool { serveOptions.noInotify }
    var stateDir: String? { stateOptions.stateDir }
    var stateSnapshotEvery: Int { stateOptions.stateSnapshotEvery }
    var eventQueueLimit: Int { stateOptions.eventQueueLimit }
    var eventJournal: Int { stateOptions.eventJournal }
    var logLevel: String { stateOptions.logLevel }
    var metrics: String? { metricsOptions.metrics }
    var metricsTLS: MetricsTLS? { metricsOptions.metricsTLS }
    var tlsCreds: String? { tlsOptions.tlsCreds }
    var tlsAuthz: String? { tlsOptions.tlsAuthz }
    var maxTLSHandshakes: Int { tlsOptions.maxTLSHandshakes }
    var tlsHandshakeTimeout: Int { tlsOptions.tlsHandshakeTimeout }

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
        configuration.runRoot = runRoot
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
