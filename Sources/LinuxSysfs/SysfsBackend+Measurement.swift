// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend

#if canImport(Glibc)
import Glibc
#endif

/// The channel-measurement facility through sysfs: `css0/cm_enable` and each chpid's
/// measurement files, read by the follower once per poll tick, off the event loop.
extension SysfsBackend {
    /// The last pass over the measurement files (a poll tick's, or the one after a write to
    /// `cm_enable`); nil before the first. Never waits for a reading.
    package var lastMeasurement: MeasurementPass? { follower.lastMeasurement }

    /// A pass here and now, on the calling thread (tests and tools; the server's follower
    /// makes one per poll tick), kept as the last one.
    @discardableResult
    package func measureNow() -> MeasurementPass { follower.measureNow() }

    /// The blocking part of enabling or disabling the facility, for a thread off the event
    /// loop: writes `1` or `0` to `css0/cm_enable` (the kernel's store issues CHSC "set
    /// channel-monitoring mode" and adds or removes every chpid's measurement files before it
    /// returns), then reads a pass, which it returns and keeps as the last one.
    /// - Returns: the pass, or `BackendError.io` for the write; an EIO on enabling names the
    ///   authorization the partition lacks and where an administrator grants it.
    package func measurementFacilityWrite(enable: Bool) -> @Sendable () -> Result<MeasurementPass, BackendError> {
        let writer = self.writer
        let follower = self.follower
        let path = paths.css(0) + "/cm_enable"
        return {
            do throws(BackendError) {
                try writer.write(enable ? "1" : "0", to: path)
            } catch {
                return .failure(Self.explained(error, enabling: enable))
            }
            return .success(follower.measureNow())
        }
    }

    /// `measurementFacilityWrite(enable:)` here and now, on the calling thread (tests, tools).
    /// - Throws: the write's `BackendError`.
    @discardableResult
    package func setMeasurementFacility(enabled: Bool) throws(BackendError) -> MeasurementPass {
        try measurementFacilityWrite(enable: enabled)().get()
    }

    /// The kernel answers a refused enable with EIO (chsc_secm's response code): the
    /// partition lacks the authorization to read channel-path statistics (chpstat.8,
    /// "AUTHORIZATION").
    static func explained(_ error: BackendError, enabling: Bool) -> BackendError {
        guard enabling, case .io(let path, let operation, let code, let message) = error, code == EIO else {
            return error
        }
        return .io(
            path: path, operation: operation, errno: code,
            message: message + ": the channel-measurement facility refused to start, as it does for a partition "
                + "not authorized to access global performance data. An administrator grants it on the HMC: "
                + "for a classic-mode LPAR, in its activation profile (Security: 'Global performance data "
                + "control'; the LPAR must be deactivated and activated again); for a DPM partition, in "
                + "Partition Details (Controls: 'Access global performance data'; effective at once)")
    }
}
