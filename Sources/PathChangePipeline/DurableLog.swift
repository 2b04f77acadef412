// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import PathEvents

/// Where the commands that change what cssd owns are recorded so that they survive a crash
/// (`--state-dir`): the session records each successful one and sends its reply only once
/// `waitUntilDurable` returned, and holds the events of its changes until then.
///
/// `records`, `append` and `deliverableThrough` are called on the server's event loop;
/// `waitUntilDurable` off it (it may block on the disk). Whoever holds events until they are
/// durable is woken by the log's owner after a commit (`QMPServer.durabilityAdvanced`, which
/// the daemon's assembly registers).
package protocol DurableLog: AnyObject, Sendable {
    /// Whether a successful call of `command` must be recorded (it changed what cssd owns).
    func records(_ command: String) -> Bool
    /// Records one successful command.
    /// - Parameters:
    ///   - request: the request as received (its `id` is not needed), replayed on start.
    ///   - time: the clock while it ran (its events' timestamp), replayed with it.
    ///   - sequences: the path changes it published (empty when none).
    /// - Returns: a token for `waitUntilDurable`.
    func append(request: String, time: EventTime, sequences: ClosedRange<UInt64>?) -> UInt64
    /// Runs `body`, which appends the records of one change made whole (a scenario step of
    /// several commands), with no periodic snapshot between them: a snapshot due meanwhile is
    /// taken after the last (one taken between would hold the whole change and be followed by
    /// the rest of its records, replayed twice). Event loop.
    func appendingTogether<T>(_ body: () -> T) -> T
    /// Blocks until the record `token` (and every record before it) is on disk: one commit of
    /// every record appended so far (group commit), or none when one already took it. A
    /// failure leaves the records it tried pending: a later call commits them again.
    func waitUntilDurable(_ token: UInt64) -> Result<Void, BackendError>
    /// Whether the record `token` is on disk (a commit took it). Any thread, no I/O. After a
    /// wait for a later token failed, it tells which of the records before were committed
    /// anyway (by a commit another connection waited for).
    func isDurable(_ token: UInt64) -> Bool
    /// The newest sequence number whose change, and every one before it, is durable; events of
    /// later changes are held. `.max` when nothing waits.
    var deliverableThrough: UInt64 { get }
    /// Why a recorded command must be refused before it runs, nil when it may run: while the
    /// last commit failed (a full disk) and is not retried yet. Changes made then could not be
    /// recorded either; refusing them keeps the model equal to its record and bounds what is
    /// held in memory and retried (one attempt per retry interval, not one per command).
    /// Event loop, no I/O.
    var refusal: String? { get }
}
