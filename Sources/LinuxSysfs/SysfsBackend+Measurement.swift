// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import ChannelMeasurement

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

    // MARK: The backend requirement (CSSBackend ChannelMeasurementBackend.swift)

    /// As of the last pass (the start-up reading, then every poll tick); never blocks.
    package var channelMeasurementFacility: ChannelMeasurementFacilityState { follower.measurements.facility }

    /// Plans the write of `cm_enable`; its `perform` (off the event loop) writes, then reads a
    /// pass (`measurementFacilityWrite`).
    /// - Throws: `.unsupported` when the kernel has no `css0/cm_enable`.
    package func planChannelMeasurement(enable: Bool) throws(BackendError) -> PendingMeasurementSwitch {
        if case .unsupported(let reason) = channelMeasurementFacility,
            follower.lastMeasurement?.facility == .unsupported
        {
            throw .unsupported(
                operation: enable ? "enabling channel measurement" : "disabling channel measurement", backend: name,
                reason: reason)
        }
        let write = measurementFacilityWrite(enable: enable)
        return PendingMeasurementSwitch(enable: enable) {
            // The pass is recorded by the follower; nothing for the loop to apply.
            write().map { _ in nil }
        }
    }

    /// The write's error (EIO on enabling names the authorization), or the facility's state
    /// as the pass after the write found it.
    package func completeChannelMeasurement(
        _ write: PendingMeasurementSwitch, _ outcome: PendingMeasurementSwitch.Outcome
    ) throws(BackendError) -> ChannelMeasurementFacilityState {
        _ = try outcome.get()
        return channelMeasurementFacility
    }

    /// Every chpid's (nil) or the selected chpids' reports, in chpid order, from the passes
    /// made so far; `time` is ignored (the machine keeps its own). Never blocks.
    /// - Throws: `.model(.unknownChannelPath)` for a selected chpid the tree does not have.
    package func channelMeasurements(_ chpids: [ChannelPathID]?, at time: MeasurementTime) throws(BackendError)
        -> [ChannelMeasurementReport]
    {
        var ids = subsystem.channelPaths.map(\.id)
        if let chpids {
            for id in chpids where subsystem.channelPath(id) == nil { throw .model(.unknownChannelPath(id)) }
            ids = Array(Set(chpids)).sorted()
        }
        return follower.measurements.reports(ids.map { ($0, details(of: $0)?.cmg, details(of: $0)?.shared) })
    }

    // MARK: The writes

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
