// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import QMPWire

/// Told of every command a session dispatched (metrics); a request whose envelope is refused
/// before dispatch (no `execute`, a stray member) is not a command and is not reported. Called
/// on the server's event loop, right after the dispatch, so it must return quickly and never
/// block.
package protocol CommandObserver: AnyObject, Sendable {
    /// - Parameters:
    ///   - command: the `execute` (or `exec-oob`) name as the client sent it: client input, so
    ///     an observer that labels by it must keep to the schema's names.
    ///   - error: the error reply's class; nil for a success. A reply deferred off the loop (a
    ///     sysfs write) counts as its dispatch's outcome.
    ///   - duration: time spent in the dispatch (and work run inline), on the event loop.
    func commandCompleted(_ command: String, error: QMPError.Class?, duration: Duration)
}
