// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import Logging
import NIOCore
import PathNotify
import QMPCommands
import QMPServer
import StateStore

/// Everything `Daemon` needs to build cssd, as typed values: what the command line said, checked
/// and parsed once (the executable's flags, docs/running.md "Options"). Defaults are cssd's defaults.
package struct DaemonConfiguration: Sendable {
    /// What cssd serves.
    package enum Backend: Sendable {
        /// The in-memory model of a topology file (API/topology.md); nil: the embedded default.
        case model(topology: String?)
        /// The machine this Linux runs on, read from sysfs under `root` (`/sys`), followed as
        /// `watch` says (API/linux-sysfs.md).
        case linuxSysfs(root: String, watch: BackendWatch)

        /// The kind of source: who owns the state.
        package var kind: BackendKind {
            switch self {
            case .model: .model
            case .linuxSysfs: .linuxSysfs
            }
        }

        /// `--backend`'s text: `model`, `linux-sysfs` (root `/sys`) or `linux-sysfs:ROOT`, as kind
        /// and root; nil for anything else.
        package static func parse(_ text: String) -> (kind: BackendKind, root: String?)? {
            if text == BackendKind.model.rawValue { return (.model, nil) }
            let sysfs = BackendKind.linuxSysfs.rawValue
            if text == sysfs { return (.linuxSysfs, "/sys") }
            guard text.hasPrefix(sysfs + ":") else { return nil }
            return (.linuxSysfs, String(text.dropFirst(sysfs.count + 1)))
        }
    }

    /// TLS on every tcp listener (`--tls-creds`, `--tls-authz`).
    package struct TLS: Sendable, Equatable {
        /// A directory in QEMU's tls-creds-x509 layout.
        package var credentials: String
        /// A QEMU authz-list-file JSON file; nil: every client certificate the CA signed.
        package var authz: String?

        package init(credentials: String, authz: String? = nil) {
            self.credentials = credentials
            self.authz = authz
        }
    }

    /// The Prometheus endpoint (`--metrics tcp:HOST:PORT`, `--metrics-tls`).
    package struct Metrics: Sendable, Equatable {
        package var host: String
        /// 0 picks a free port (logged as `metrics listening`).
        package var port: Int
        /// HTTPS with `tls` (the default when there is one); false: plain HTTP, logged as a notice
        /// when there is `tls`.
        package var usesTLS: Bool

        package init(host: String, port: Int, usesTLS: Bool = true) {
            self.host = host
            self.port = port
            self.usesTLS = usesTLS
        }
    }

    /// `--state-dir` (API/resume.md).
    package struct StateDir: Sendable, Equatable {
        package var directory: String
        /// Commands between snapshots (`--state-snapshot-every`); 0: only on a clean stop.
        package var snapshotEvery: Int

        package init(directory: String, snapshotEvery: Int = StateStore.Options().snapshotEvery) {
            self.directory = directory
            self.snapshotEvery = snapshotEvery
        }
    }

    /// QMP listeners (`--qmp`, `--qmp-readonly`); socket-activated ones are added at start, and
    /// with none at all cssd listens on `unix:cssd.sock`.
    package var listeners: [Listener]
    package var backend: Backend
    /// Request limits, event queues, the journal, conditions (`--allow-quit`).
    package var options: ServerOptions
    package var limits: ConnectionLimits
    /// The group (name or number) owning the unix sockets, mode 0660; nil: mode 0600.
    package var socketGroup: String?
    package var tls: TLS?
    package var metrics: Metrics?
    package var stateDir: StateDir?
    /// `--notify`: the AMQP publisher; nil: none.
    package var notify: NotifyConfiguration?
    /// The level of the process's log when the daemon sets the logging up itself.
    package var logLevel: Logger.Level
    /// The directory that stands for `/proc` (`--proc-root`): linux-sysfs reads `sysinfo` and
    /// `sys/kernel/osrelease` under it.
    package var procRoot: String = "/proc"
    /// The directory that stands for `/run` (`--run-root`): linux-sysfs reads libvirt's
    /// `libvirt/qemu/*.xml` status files under it.
    package var runRoot: String = "/run"

    package init(
        listeners: [Listener] = [], backend: Backend = .model(topology: nil), options: ServerOptions = ServerOptions(),
        limits: ConnectionLimits = ConnectionLimits(), socketGroup: String? = nil, tls: TLS? = nil,
        metrics: Metrics? = nil, stateDir: StateDir? = nil, notify: NotifyConfiguration? = nil,
        logLevel: Logger.Level = .info
    ) {
        self.listeners = listeners
        self.backend = backend
        self.options = options
        self.limits = limits
        self.socketGroup = socketGroup
        self.tls = tls
        self.metrics = metrics
        self.stateDir = stateDir
        self.notify = notify
        self.logLevel = logLevel
    }
}
