// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// The outcome of one operation on a channel path (vary, configure, fault), precise enough for
/// a path-event layer to emit one event for the chpid and one per affected subchannel without
/// looking at the model again.
public struct PathChange: Hashable, Sendable {
    /// The path as it was before the operation.
    public let before: ChannelPath
    /// The path as it is now.
    public let after: ChannelPath
    /// Subchannels whose masks changed, in id order, with their new masks.
    public let affected: [AffectedSubchannel]
    /// The CRWs the machine queued for this change, in order (empty for a vary, which the
    /// machine never hears of).
    public let crws: [CRW]
    /// CRWs the machine made for this change that were lost to queue overflow.
    public let crwsLost: Int

    public init(before: ChannelPath, after: ChannelPath, affected: [AffectedSubchannel], crws: [CRW], crwsLost: Int) {
        self.before = before
        self.after = after
        self.affected = affected
        self.crws = crws
        self.crwsLost = crwsLost
    }

    public var chpid: ChannelPathID { after.id }
    /// Whether the path's own state (vary, configure, condition) changed.
    public var pathChanged: Bool { before != after }
}

/// A subchannel's path masks after a path operation changed at least one of them.
public struct AffectedSubchannel: Hashable, Sendable {
    public let id: SubchannelID
    /// The device number, nil when DNV is 0.
    public let device: DeviceID?
    /// The slot of the changed path in this subchannel (its mask bit is 0x80 >> slot).
    public let slot: Int
    public let pim: UInt8
    public let lpm: UInt8
    public let pam: UInt8
    public let pom: UInt8
    public let pnom: UInt8
    /// The SCSW's PNO bit.
    public let pathNotOperational: Bool
}

/// What RCHP returns: cc 0 and the solicited CRWs queued, or cc 3 (path not operational).
public struct ResetChannelPathResult: Hashable, Sendable {
    public let cc: Int
    /// The CRWs queued (one, or a chained pair under MCSSE); empty for cc 3 or if they were lost.
    public let crws: [CRW]
}
