// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import NIOCore
import QMPCommands
import ServerSecurity

#if canImport(Glibc)
import Glibc
#endif

/// Server configuration: listeners, options, and per-connection bounds.
package struct ServerConfiguration: Sendable {
    package var listeners: [Listener]
    package var options: ServerOptions
    /// Output backlog per connection above which the server stops processing that client's
    /// requests (docs/running.md, "Memory and fairness").
    package var outputHighWatermark: Int
    /// Backlog below which processing resumes.
    package var outputLowWatermark: Int
    /// Most unprocessed input held per connection (bytes); the server keeps reading a client
    /// whose output is blocked up to this bound, so that a batch written before reading any
    /// reply is served. Raised to at least one whole pending value plus one read.
    package var inputBacklog: Int
    /// The default `inputBacklog`: 4 MiB, about 110,000 `query-version` requests.
    package static let defaultInputBacklog = 4 << 20
    /// The channel subsystem to serve; the embedded default topology when nil.
    package var subsystem: Subsystem?
    /// How to follow an observed backend (linux-sysfs).
    package var watch: BackendWatch
    /// TLS on every tcp listener (`--tls-creds`, `--tls-authz`); nil: plain tcp, loopback only.
    package var security: TransportSecurity?
    /// The group that owns the unix sockets (mode 0660); nil: mode 0600, the owner only.
    package var socketGroup: gid_t?
    package var limits: ConnectionLimits

    package init(
        listeners: [Listener],
        options: ServerOptions = ServerOptions(),
        outputHighWatermark: Int = 256 * 1024,
        outputLowWatermark: Int = 64 * 1024,
        inputBacklog: Int = ServerConfiguration.defaultInputBacklog,
        subsystem: Subsystem? = nil,
        watch: BackendWatch = BackendWatch(),
        security: TransportSecurity? = nil,
        socketGroup: gid_t? = nil,
        limits: ConnectionLimits = ConnectionLimits()
    ) {
        self.listeners = listeners
        self.options = options
        self.outputHighWatermark = outputHighWatermark
        self.outputLowWatermark = outputLowWatermark
        self.inputBacklog = inputBacklog
        self.subsystem = subsystem
        self.watch = watch
        self.security = security
        self.socketGroup = socketGroup
        self.limits = limits
    }
}

/// Bounds on clients, so that many or slow peers cannot exhaust the server (libvirt's
/// max_clients and max_anonymous_clients play the same part).
package struct ConnectionLimits: Sendable {
    /// Most open connections (QMP and TLS handshakes together); more are closed and logged.
    package var maxClients: Int
    /// Most TLS handshakes in progress; more connections are closed and logged.
    package var maxHandshakes: Int
    /// How long a TLS client has to complete its handshake.
    package var handshakeTimeout: TimeAmount

    package init(maxClients: Int = 1024, maxHandshakes: Int = 64, handshakeTimeout: TimeAmount = .seconds(10)) {
        self.maxClients = maxClients
        self.maxHandshakes = maxHandshakes
        self.handshakeTimeout = handshakeTimeout
    }
}

package struct ServerStartError: Error, CustomStringConvertible, Sendable {
    package let description: String
    init(_ description: String) { self.description = description }
}
