// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import PathEvents

/// A durable log that also keeps the model's channel-measurement facility (issue 21:
/// `set-channel-measurement`, `set-chpid-load`) as its whole state after each change, not as
/// commands to replay: a load takes effect at a boundary of the model clock, and a replay on
/// start would run at another model time, giving other counts than those already served.
/// The state is a few dozen bytes per chpid, so one record of it replaces the last.
///
/// Called as `DurableLog`'s methods are: `appendMeasurement` on the event loop, the reply
/// waits off it in `waitUntilDurable`.
package protocol MeasurementStateLog: DurableLog {
    /// Whether the facility's state is kept (the model backend; a real host's `cm_enable` is
    /// the host's, which is the truth).
    var keepsMeasurement: Bool { get }
    /// Records the facility's state (`MeasurementModel.savedState(at:)`, which holds its model
    /// time) with the wall clock `time` it was taken at.
    /// - Returns: a token for `waitUntilDurable`.
    func appendMeasurement(state: [UInt8], time: EventTime) -> UInt64
}
