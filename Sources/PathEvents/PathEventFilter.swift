// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// Which events a subscription wants: chpid events, subchannel events, or both.
package enum PathEventGranularity: String, CaseIterable, Hashable, Sendable {
    case chpid, subchannel, both
    /// GUEST_PATH_CHANGED: one per guest reached (vfio-ccw), under the guest's chpid.
    case guest

    var wantsChannelPath: Bool { self == .chpid || self == .both }
    var wantsSubchannel: Bool { self == .subchannel || self == .both }
    var wantsGuest: Bool { self == .guest }
}

/// A subscription's filter. Every given criterion must hold; an absent one matches all.
package struct PathEventFilter: Hashable, Sendable {
    package let granularity: PathEventGranularity
    /// Only these chpids, as requested.
    package let chpids: Set<ChannelPathID>?
    /// Only these subchannels, as requested (chpid events: only for their paths).
    package let subchannels: Set<SubchannelID>?
    package let cssid: UInt8?
    package let changes: Set<PathEventChange>?
    /// Only these guests (granularity guest).
    package let guests: Set<String>?
    /// The chpids whose events can match: `chpids`, narrowed to the installed paths of
    /// `subchannels` when given (as they were at subscription: a device added later, with
    /// `add-device`, is not in it).
    package let scope: Set<ChannelPathID>?
    /// Also tell when a chpid's utilization crosses this threshold (CHANNEL_PATH_UTILIZATION),
    /// for the chpids the other criteria admit (the change kinds aside), at any granularity.
    package let utilization: UtilizationThreshold?
    /// One bit per `PathEventChange` case (`bit`): 32 leave room for the kinds to come.
    private let changeMask: UInt32

    /// - Parameter pathsOfSubchannels: the chpids installed in `subchannels` (required with it).
    package init(
        granularity: PathEventGranularity, chpids: Set<ChannelPathID>? = nil,
        subchannels: Set<SubchannelID>? = nil, pathsOfSubchannels: Set<ChannelPathID> = [],
        cssid: UInt8? = nil, changes: Set<PathEventChange>? = nil, guests: Set<String>? = nil,
        utilization: UtilizationThreshold? = nil
    ) {
        self.utilization = utilization
        self.granularity = granularity
        self.chpids = chpids
        self.subchannels = subchannels
        self.cssid = cssid
        self.changes = changes
        self.guests = guests
        var scope = chpids
        if subchannels != nil { scope = scope.map { $0.intersection(pathsOfSubchannels) } ?? pathsOfSubchannels }
        if let cssid { scope = scope?.filter { $0.cssid == cssid } }
        self.scope = scope
        self.changeMask = changes?.reduce(0) { $0 | $1.bit } ?? UInt32.max
    }

    /// Whether a change of `chpid` can produce events for this subscription at all.
    func admits(_ chpid: ChannelPathID, _ change: PathEventChange) -> Bool {
        changeMask & change.bit != 0 && (cssid == nil || chpid.cssid == cssid)
            && (scope == nil || scope!.contains(chpid))
    }

    /// Whether `chpid`'s utilization is this subscription's business (its chpids, subchannels'
    /// paths and css; the change kinds do not apply).
    func admitsUtilization(of chpid: ChannelPathID) -> Bool {
        (cssid == nil || chpid.cssid == cssid) && (scope == nil || scope!.contains(chpid))
    }

    func admits(guest: String) -> Bool {
        guests == nil || guests!.contains(guest)
    }

    func admits(_ subchannel: SubchannelID) -> Bool {
        subchannels == nil || subchannels!.contains(subchannel)
    }
}

extension PathEventChange {
    /// The change's bit in a filter's change mask.
    var bit: UInt32 { 1 << UInt32(Self.allCases.firstIndex(of: self)!) }
}
