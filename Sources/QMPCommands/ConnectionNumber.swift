// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// The numbers `SessionControl.connectionID` and `PathChangeCause.command(connection:)` carry:
/// clients are numbered from 1 (`ServerState.makeConnectionID`), so 0 is no client.
package enum ConnectionNumber {
    /// The replay of a state dir's log at start (`StateStore.restore`), and the notifications
    /// rebuilt from its journal: commands no connected client ran.
    package static let replay = 0
}
