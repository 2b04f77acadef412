// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// The outcome of one operation on a channel path (vary, configure, fault, reset), precise
/// enough for a path-event layer to emit one event for the chpid and one per affected
/// subchannel, and for the guests above (vfio-ccw) to take the new masks, without looking at
/// the model again.
package struct PathChange: Hashable, Sendable {
    /// The path as it was before the operation.
    package let before: ChannelPath
    /// The path as it is now.
    package let after: ChannelPath
    /// Subchannels whose masks changed, in id order, with their new masks.
    package let affected: [AffectedSubchannel]
    /// The CRWs the machine queued for this change, in order (empty for a vary, which the
    /// machine never hears of).
    package let crws: [CRW]
    /// CRWs the machine made for this change that were lost to queue overflow.
    package let crwsLost: Int
    /// The devices in use among `affected` that lost their redundancy or their last path in
    /// this change (set by the model's operations and observations; empty when made by hand).
    /// The pipeline publishes them as changes of their own (`redundancy-lost`,
    /// `last-path-lost`) and journals this change without them.
    package var losses = RedundancyLosses()

    package init(before: ChannelPath, after: ChannelPath, affected: [AffectedSubchannel], crws: [CRW], crwsLost: Int) {
        self.before = before
        self.after = after
        self.affected = affected
        self.crws = crws
        self.crwsLost = crwsLost
    }

    /// A reset channel path (RCHP cc 0) as a change: the path's state and every mask stay,
    /// the solicited report is what happened.
    /// - Parameters:
    ///   - path: the path, as it is (and was).
    ///   - crws: the CRWs RCHP queued (empty when they were lost to overflow).
    package init(resetOf path: ChannelPath, crws: [CRW]) {
        self.init(before: path, after: path, affected: [], crws: crws, crwsLost: 0)
    }

    package var chpid: ChannelPathID { after.id }
    /// Whether the path's own state (vary, configure, condition) changed.
    package var pathChanged: Bool { before != after }
    /// Nothing happened: no path state, no mask and no CRW changed (a repeated vary, a
    /// configure to the current state). Such a change is not published, unless it is a reset,
    /// whose report is the point.
    package var altersNothing: Bool { !pathChanged && affected.isEmpty && crws.isEmpty }
}

/// A subchannel's path masks after a path operation changed at least one of them: everything
/// the SCHIB's PMCW says about paths, so that nobody has to store the subchannel again.
package struct AffectedSubchannel: Hashable, Sendable {

    package let id: SubchannelID
    /// The device number, nil when DNV is 0.
    package let device: DeviceID?
    /// The slot of the changed path in this subchannel (its mask bit is 0x80 >> slot).
    package let slot: Int
    package let pim: UInt8
    package let lpm: UInt8
    package let pam: UInt8
    package let pom: UInt8
    package let pnom: UInt8
    /// The last path used (not changed by path operations; carried because vfio-ccw copies it
    /// into the guest's SCHIB with pam, pom and pnom, as QEMU's vfio_ccw_handle_schib does).
    package let lpum: UInt8
    /// The SCSW's PNO bit.
    package let pathNotOperational: Bool
}

extension AffectedSubchannel {
    /// `subchannel`'s masks as they are, for the path in `slot` (a change that is not the
    /// subchannel's own, such as the DASD driver disabling a path).
    package init(current subchannel: Subchannel, slot: Int) {
        let pmcw = subchannel.schib.pmcw
        self.init(
            id: subchannel.id, device: subchannel.deviceID, slot: slot, pim: pmcw.pim, lpm: pmcw.lpm, pam: pmcw.pam,
            pom: pmcw.pom, pnom: pmcw.pnom, lpum: pmcw.lpum,
            pathNotOperational: subchannel.schib.scsw.pathNotOperational)
    }
}

/// What RCHP returns: cc 0 and the solicited CRWs queued, or cc 3 (path not operational).
package struct ResetChannelPathResult: Hashable, Sendable {
    package let cc: Int
    /// The CRWs queued (one, or a chained pair under MCSSE); empty for cc 3 or if they were lost.
    package let crws: [CRW]
}
