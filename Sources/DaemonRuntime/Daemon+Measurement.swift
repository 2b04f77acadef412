// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import Logging
import PathEvents
import QMPCommands
import StateStore

extension Daemon {
    /// The model's channel-measurement facility as the state dir kept it (after the replay,
    /// which does not touch it: `ChangedState.measurement`), and the model clock continued.
    ///
    /// The model clock across a restart: it continues from the model time the state was
    /// recorded at, plus the wall-clock time since then (never less than 0), then advances with
    /// the monotonic clock. So the model has counted through the downtime, as a machine's
    /// channels do while the OS is down, and every counter (the 32-bit words and the 64-bit
    /// totals, which start at the model's exact counts) is at least what it was when cssd
    /// stopped or was killed: a Prometheus `rate()` sees no reset. Only a wall clock set back
    /// across the restart shortens the gap (down to none), so counts served after the last
    /// record could then be served again, lower, for up to that step.
    static func restoreMeasurement(from store: StateStore, into state: ServerState, logger: Logger)
        throws(StateStoreError)
    {
        guard store.keepsMeasurement, let model = state.backend as? ModelBackend,
            let (savedTime, recordedAt) = try store.restoreMeasurement(into: model)
        else { return }
        let now = state.clock()
        let down =
            Duration.seconds(now.seconds - recordedAt.seconds)
            + Duration.microseconds(now.microseconds - recordedAt.microseconds)
        let resumesAt = savedTime + max(down, .zero)
        let start = ContinuousClock.now
        state.measurementClock = { resumesAt + (ContinuousClock.now - start) }
        logger.info(
            "state dir: channel measurement restored",
            metadata: [
                "enabled": "\(model.measurement.enabled)", "model-time": "\(resumesAt)",
                "loaded-chpids": "\(model.measurement.channels.values.filter { $0.load != .idle }.count)",
            ])
    }
}
