// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import QMPCommands
import X509Credentials

/// What the server tells an observer (the metrics endpoint) as it runs: commands (through
/// `CommandObserver`) and connections. Every call is made on the server's event loop and must
/// return quickly without blocking.
package protocol ServerObserver: CommandObserver {
    /// A QMP connection was accepted on `listener`.
    func connectionOpened(listener: Listener)
    /// A connection accepted on `listener` closed.
    func connectionClosed(listener: Listener)
    /// `listener` was configured (told once per listener of the configuration, before it
    /// binds; may be called off the loop): its series can exist before its first connection.
    func listenerConfigured(_ listener: Listener)
    /// `listener` will serve TLS (told once, before it binds; may be called off the loop).
    func tlsListenerConfigured(_ listener: Listener)
    /// A TLS client on `listener` was not served (closed before QMP's greeting), for `reason`.
    func tlsRefused(listener: Listener, reason: TLSRefusalReason)
}
