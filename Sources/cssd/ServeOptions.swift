// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import ArgumentParser
import CSSBackend
import Logging
import QMPCommands
import QMPServer
import QMPWire
import StateStore

// cssd's options in the groups its help shows, the common ones first (ArgumentParser prints
// titled groups in declaration order). CSSD reads them through forwarding properties.

/// `cssd --help`: "Listeners and clients".
struct ListenOptions: ParsableArguments {
    @Option(name: .customLong("qmp"), help: "Listen for QMP clients: unix:PATH or tcp:HOST:PORT (repeatable).")
    var qmp: [String] = []

    @Option(
        name: .customLong("qmp-readonly"),
        help:
            "Listen for read-only QMP clients (query-* commands and path-event subscriptions): unix:PATH or tcp:HOST:PORT (repeatable)."
    )
    var qmpReadOnly: [String] = []

    @Option(
        name: .customLong("socket-group"), help: "Unix sockets owned by this group, mode 0660 (default: mode 0600).")
    var socketGroup: String?

    @Flag(name: .customLong("allow-quit"), help: "Provide the quit command, which stops the server.")
    var allowQuit = false

    @Option(name: .customLong("max-clients"), help: "Most connections at once; more are closed and logged.")
    var maxClients: Int = ConnectionLimits().maxClients

    @Option(
        name: .customLong("max-request-size"),
        help: "Largest JSON value a client may send, in bytes (QEMU: 67108864).")
    var maxRequestSize: Int = WireLimits().maxValueSize
}

/// `cssd --help`: "What to serve".
struct ServeOptions: ParsableArguments {
    @Option(
        name: .customLong("backend"),
        help: """
            What to serve: 'model' (the topology) or 'linux-sysfs[:ROOT]', the machine this Linux \
            runs on, read from ROOT (/sys when not given; API/linux-sysfs.md).
            """)
    var backend: String = "model"

    @Option(
        name: .customLong("topology"),
        help: "The channel subsystem to serve: a topology file (API/topology.md); without it, the embedded one.")
    var topology: String?

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
            The directory that stands for /proc, as ROOT in linux-sysfs:ROOT stands for /sys: \
            linux-sysfs reads sysinfo (the partition's name) and sys/kernel/osrelease there.
            """)
    var procRoot: String = "/proc"

    @Option(
        name: .customLong("run-root"),
        help: """
            The directory that stands for /run: linux-sysfs reads libvirt's domain status files \
            (libvirt/qemu/*.xml) there, to name the guests holding vfio-ccw mediated devices.
            """)
    var runRoot: String = "/run"

    @Flag(
        name: .customLong("no-inotify"),
        help: "linux-sysfs: do not also watch the tree with inotify (real sysfs notifies few attributes).")
    var noInotify = false
}

/// `cssd --help`: "State, path events and logs".
struct StateOptions: ParsableArguments {
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

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"
}

/// `cssd --help`: "Metrics".
struct MetricsOptions: ParsableArguments {
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
}

/// `cssd --help`: "TLS".
struct TLSOptions: ParsableArguments {
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

    @Option(name: .customLong("max-tls-handshakes"), help: "Most TLS handshakes in progress at once.")
    var maxTLSHandshakes: Int = ConnectionLimits().maxHandshakes

    @Option(
        name: .customLong("tls-handshake-timeout"), help: "Milliseconds a TLS client has to complete its handshake.")
    var tlsHandshakeTimeout: Int = 10_000
}
