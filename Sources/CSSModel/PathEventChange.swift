// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// What happened to a channel path: the `change` of every path event (API/path-events.json)
/// and of what a host change did to a guest, and what subscription filters name.
///
/// It lives in the model, beside `PathChange`, because both event layers describe one change
/// with it: PathEvents (events for subscribers) and VFIOCCW (what reached each guest), and
/// neither depends on the other for it.
package enum PathEventChange: String, CaseIterable, Hashable, Sendable {
    case online, offline
    case configured, standby
    case permanentError = "permanent-error"
    case temporaryError = "temporary-error"
    case recovered
    /// RCHP (reset-channel-path) with cc 0: the solicited report, no change of state or masks.
    case reset
    /// The path's actual state differs from its intended one (`ChpidDrift`): no change of
    /// state or masks; the event says which chpid, the drift query says how.
    case drift

    /// Devices in use lost their redundancy: a change of the chpid left them on exactly one
    /// operational path. Published by the pipeline right after that change, as a change of its
    /// own (no state or mask change of its own; its affected subchannels are those devices).
    case redundancyLost = "redundancy-lost"
    /// Devices in use lost their last operational path through a change of the chpid; published
    /// like `redundancyLost`.
    case lastPathLost = "last-path-lost"

    /// The DASD driver stopped using the path for a device, for the reason the kind names
    /// (linux-sysfs `path_masks`: ifccpm, cablepm, cuirpm); no cio mask changed.
    case driverDisabledIfcc = "driver-disabled-ifcc"
    case driverDisabledMiscabled = "driver-disabled-miscabled"
    case driverDisabledCuir = "driver-disabled-cuir"

    /// The DASD driver uses the path again for a device after it had disabled it
    /// (`dasd-path-reset`, a CUIR resume, or the driver's own verification); no cio mask changed.
    case driverEnabled = "driver-enabled"

    /// Subchannels using the path were removed by a purge of `/proc/cio_ignore` (Linux
    /// 6.18+), an operator's action: their device numbers are on the ignore list. No mask
    /// changed on the path; the affected subchannels are the removed ones, with their last
    /// masks. Reaches no guest.
    case subchannelsPurged = "subchannels-purged"

    /// A device and its subchannel appeared (`Subsystem.addDevice`): one change per installed
    /// chpid, the path's subchannel count one up, the new subchannel the one affected. Reaches
    /// no guest.
    case subchannelAdded = "subchannel-added"
    /// A device and its subchannel went (`Subsystem.removeDevice`), published like
    /// `subchannelAdded` with the subchannel's last masks. Reaches no guest.
    case subchannelRemoved = "subchannel-removed"

    package init(_ kind: DeviceChange.Kind) { self = kind == .added ? .subchannelAdded : .subchannelRemoved }

    /// A report about a path rather than a change of it (a reset, a drift): published although
    /// it alters no state and no mask.
    package var isReport: Bool { self == .reset || self == .drift }

    package init(_ reason: DASDPathDisableReason) {
        switch reason {
        case .ifccThreshold: self = .driverDisabledIfcc
        case .miscabled: self = .driverDisabledMiscabled
        case .cuirQuiesced: self = .driverDisabledCuir
        }
    }

    package init(_ state: VaryState) { self = state == .online ? .online : .offline }

    package init(_ fault: PathFault) {
        switch fault {
        case .permanentError: self = .permanentError
        case .temporaryError: self = .temporaryError
        case .recovered: self = .recovered
        }
    }

    /// The change a configure request makes; nil for states a client cannot request.
    package init?(_ state: ConfigureState) {
        switch state {
        case .configured: self = .configured
        case .standby: self = .standby
        default: return nil
        }
    }

    /// Whether this kind tells what a change did to devices' redundancy (`redundancyLost`,
    /// `lastPathLost`) rather than what happened to the path: such a change reaches no guest
    /// (the masks went with the change it follows) and coalesces only with its own kind.
    package var isRedundancyLoss: Bool { self == .redundancyLost || self == .lastPathLost }
}
