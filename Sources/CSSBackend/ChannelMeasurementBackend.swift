// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import ChannelMeasurement

/// The state of the channel-measurement facility (Linux `css0/cm_enable`).
package enum ChannelMeasurementFacilityState: Hashable, Sendable, CustomStringConvertible {
    /// Measuring: `cm_enable` reads 1.
    case enabled
    /// Not measuring, as after a Linux boot: `cm_enable` reads 0.
    case disabled
    /// No facility to switch: the backend does not implement it, or the source has none
    /// (no `css0/cm_enable`: not an LPAR or DPM partition, or an old kernel); `reason` says
    /// which.
    case unsupported(reason: String)

    /// `enabled`, `disabled` or `unsupported` (the QMP `state`).
    package var description: String {
        switch self {
        case .enabled: "enabled"
        case .disabled: "disabled"
        case .unsupported: "unsupported"
        }
    }
}

/// Enabling or disabling the facility, planned like a vary (`PendingWrite`): checked on the
/// event loop, `perform`ed off it when it blocks (a sysfs `cm_enable` write makes the kernel
/// issue CHSC requests), completed back on the loop. The model's `perform` is nil.
package struct PendingMeasurementSwitch: Sendable {
    /// What the blocking part returns, the shape every backend write returns
    /// (`PendingWrite.Outcome`, so the server runs it like a vary): its error (sysfs EIO: the
    /// partition lacks the authorization; the error names it and where it is granted), or a
    /// reading made after the write (nil when none).
    package typealias Outcome = PendingWrite.Outcome

    /// True to enable, false to disable.
    package let enable: Bool
    /// The write, on any thread; nil when nothing blocks.
    package let perform: (@Sendable () -> Outcome)?

    package init(enable: Bool, perform: (@Sendable () -> Outcome)?) {
        self.enable = enable
        self.perform = perform
    }
}

/// The time a model-time-driven backend is given: how long since the server (or a scenario)
/// started its clock. The model is pure: its counters are a function of this alone; the
/// server passes its monotonic clock in, a scenario its own. A backend that reads a real
/// machine ignores it.
package typealias MeasurementTime = Duration

extension ChannelSubsystemBackend {
    /// Default for a backend without the facility: `unsupported`.
    package var channelMeasurementFacility: ChannelMeasurementFacilityState {
        .unsupported(reason: "the \(name) backend does not implement channel measurement yet")
    }

    /// Default: refused as unsupported.
    package func planChannelMeasurement(enable: Bool) throws(BackendError) -> PendingMeasurementSwitch {
        throw .unsupported(
            operation: enable ? "enabling channel measurement" : "disabling channel measurement", backend: name,
            reason: "not implemented yet")
    }

    /// Default: refused as unsupported.
    package func completeChannelMeasurement(
        _ write: PendingMeasurementSwitch, _ outcome: PendingMeasurementSwitch.Outcome
    ) throws(BackendError) -> ChannelMeasurementFacilityState {
        throw .unsupported(
            operation: write.enable ? "enabling channel measurement" : "disabling channel measurement", backend: name,
            reason: "not implemented yet")
    }

    /// Default: refused as unsupported.
    package func channelMeasurements(_ chpids: [ChannelPathID]?, at time: MeasurementTime) throws(BackendError)
        -> [ChannelMeasurementReport]
    {
        throw .unsupported(operation: "query-chpid-measurements", backend: name, reason: "not implemented yet")
    }

    /// Default: refused as unsupported (only the model has loads to set).
    package func setChannelLoad(_ chpid: ChannelPathID, _ load: [String: Double], at time: MeasurementTime)
        throws(BackendError) -> ChannelLoad
    {
        throw .unsupported(
            operation: "set-chpid-load", backend: name, reason: "only the model's channel paths carry a set load")
    }

    /// Enables or disables the facility here and now (blocking, for a real machine; tools and
    /// tests): plan, perform, complete.
    package func setChannelMeasurement(enable: Bool) throws(BackendError) -> ChannelMeasurementFacilityState {
        let write = try planChannelMeasurement(enable: enable)
        return try completeChannelMeasurement(write, write.perform?() ?? .success(nil))
    }
}
