// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// What-if questions about losing channel paths, answered without changing the model: which
/// devices would lose their last operational path, which would drop to exactly one. The
/// query-path-impact command and the last-path interlock of vary-path, configure-chpid and
/// modify-subchannel both ask them.
///
/// "Operational" is `OperationalPaths`: a path bit in PIM & PAM & POM & LPM, as Linux's cio
/// keeps `sch->lpm`. Varying a path offline clears its LPM bit, configuring it to standby its
/// PAM bit; either way the bit leaves the operational mask, so the answer is the same for both
/// actions (a path already out of the mask, varied off or in standby or failed, takes nothing).
///
/// Cost: O(members of the named chpids) for a path loss (plus one byte per subchannel when
/// the chpids hold more than an eighth of the machine), O(subchannels named) for a
/// per-subchannel one; `currentRedundancy` walks every subchannel once.
extension Subsystem {
    /// The devices that would lose their last operational path, or drop to one, if every path
    /// in `chpids` left the operational mask of every subchannel that has it installed (a vary
    /// offline or a configure to standby of those chpids).
    /// - Parameters:
    ///   - chpids: the paths to take away; repeats count once.
    ///   - listing: how many devices each list keeps and which are always kept (the counts
    ///     cover every device either way).
    /// - Returns: the impact, devices in subchannel-id order.
    /// - Throws: `ModelError.unknownChannelPath` for the first chpid the model does not have.
    package func impactOfRemoving(chpids: [ChannelPathID], listing: ImpactListing = .all) throws(ModelError)
        -> PathImpact
    {
        var lists: [Int] = []
        for chpid in chpids {
            guard let path = pathIndex[chpid.rawValue] else { throw .unknownChannelPath(chpid) }
            if !lists.contains(path) { lists.append(path) }
        }
        let total = lists.reduce(0) { $0 + members[$1].count }
        if lists.count == 1 {
            // One member list is already in record order: no sorting, no table.
            return impact(
                removing: members[lists[0]].lazy.map { (Int($0 >> 3), pathMaskBit(slot: Int($0 & 7))) },
                listing: listing)
        }
        if total * 8 < records.count {
            // A few small paths: sort their entries (record << 3 | slot sorts by record).
            let entries = lists.flatMap { members[$0] }.sorted()
            var pairs: [(Int, UInt8)] = []
            pairs.reserveCapacity(entries.count)
            for entry in entries {
                let index = Int(entry >> 3)
                let bit = pathMaskBit(slot: Int(entry & 7))
                if let last = pairs.last, last.0 == index {
                    pairs[pairs.count - 1].1 |= bit
                } else {
                    pairs.append((index, bit))
                }
            }
            return impact(removing: pairs, listing: listing)
        }
        // Many paths: one byte per subchannel, then one pass in record order.
        var table = [UInt8](repeating: 0, count: records.count)
        for path in lists {
            for entry in members[path] { table[Int(entry >> 3)] |= pathMaskBit(slot: Int(entry & 7)) }
        }
        return impact(removing: table.indices.lazy.filter { table[$0] != 0 }.map { ($0, table[$0]) }, listing: listing)
    }

    /// The devices that would lose their last operational path, or drop to one, if the paths
    /// in `chpids` left the operational mask of the subchannels in `subchannels` only (Linux's
    /// per-device vary, `vary-path` with a subchannel). A chpid a subchannel does not have
    /// installed takes nothing from it.
    /// - Throws: `ModelError.unknownChannelPath` or `.unknownSubchannel` for the first id the
    ///   model does not have (chpids first).
    package func impactOfRemoving(
        chpids: [ChannelPathID], from subchannels: [SubchannelID], listing: ImpactListing = .all
    ) throws(ModelError) -> PathImpact {
        try impact(of: PathRemoval(perSubchannel: [(chpids, subchannels)]), listing: listing)
    }

    /// The impact of giving subchannel `id` the logical path mask `lpm` (an MSCH through
    /// modify-subchannel): the paths whose LPM bits it clears leave the operational mask, and
    /// the installed, available paths whose bits it sets join it, so that swapping a device
    /// from one path to another (LPM 0x40 to 0x80 with both available) takes nothing.
    /// - Throws: `ModelError.unknownSubchannel`.
    package func impactOfSettingLPM(_ id: SubchannelID, to lpm: UInt8) throws(ModelError) -> PathImpact {
        try impact(of: PathRemoval(logicalPathMasks: [(id, lpm)]))
    }

    /// The impact of several removals at once (`PathRemoval`): what the last-path interlock
    /// asks when other removals are still in flight.
    /// - Throws: `ModelError.unknownChannelPath` or `.unknownSubchannel` for the first id the
    ///   model does not have (chpids first).
    package func impact(of removal: PathRemoval, listing: ImpactListing = .all) throws(ModelError) -> PathImpact {
        if removal.perSubchannel.isEmpty && removal.logicalPathMasks.isEmpty {
            return try impactOfRemoving(chpids: removal.chpids, listing: listing)
        }
        var removed: [Int: UInt8] = [:]
        for chpid in removal.chpids + removal.perSubchannel.flatMap(\.chpids) where pathIndex[chpid.rawValue] == nil {
            throw .unknownChannelPath(chpid)
        }
        for chpid in removal.chpids {
            for entry in members[pathIndex[chpid.rawValue]!] {
                removed[Int(entry >> 3), default: 0] |= pathMaskBit(slot: Int(entry & 7))
            }
        }
        for (chpids, subchannels) in removal.perSubchannel {
            for id in subchannels {
                guard let index = recordIndex[id.rawValue].map({ Int($0) }) else { throw .unknownSubchannel(id) }
                for chpid in chpids {
                    if let slot = records[index].slot(of: chpid) {
                        removed[index, default: 0] |= pathMaskBit(slot: slot)
                    }
                }
            }
        }
        var added: [Int: UInt8] = [:]
        for (id, lpm) in removal.logicalPathMasks {
            guard let index = recordIndex[id.rawValue].map({ Int($0) }) else { throw .unknownSubchannel(id) }
            let pmcw = records[index].schib.pmcw
            removed[index, default: 0] |= pmcw.lpm & ~lpm
            // Bits the new LPM sets become operational where the path is installed, available
            // and operational (PIM & PAM & POM), as `OperationalPaths.mask` would read after it.
            added[index, default: 0] |= lpm & ~pmcw.lpm & pmcw.pim & pmcw.pam & pmcw.pom
        }
        return impact(
            removing: removed.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, adding: added, listing: listing)
    }

    /// The current redundancy: every device running on exactly one operational path, and
    /// every chpid that is the only operational path of at least one device (whose loss would
    /// take a device down), with the devices behind it. O(subchannels).
    package func currentRedundancy() -> PathRedundancyReport {
        var single: [ImpactedDevice] = []
        var byChpid: [Int: [ImpactedDevice]] = [:]
        var without: [ImpactedDevice] = []
        for index in records.indices {
            let record = records[index]
            let paths = record.operationalPaths
            guard paths.isDevice else { continue }
            if paths.mask == 0 {
                without.append(ImpactedDevice(record, before: 0, after: 0))
            } else if paths.count == 1 {
                let device = ImpactedDevice(record, before: paths.mask, after: paths.mask)
                single.append(device)
                let slot = paths.mask.leadingZeroBitCount
                let chpid = ChannelPathID(cssid: record.id.cssid, chpid: record.schib.pmcw.chpids[slot])
                if let path = pathIndex[chpid.rawValue] { byChpid[path, default: []].append(device) }
            }
        }
        let critical = byChpid.keys.sorted().map { CriticalPath(chpid: paths[$0].id, devices: byChpid[$0]!) }
        return PathRedundancyReport(singlePath: single, withoutPath: without, criticalPaths: critical)
    }

    /// The impact of taking the slot bits of each pair out of the operational mask of the
    /// record at its index, after adding the bits `added` has for it (a new LPM's); pairs in
    /// ascending record order, each record once (a record with bits to add has a pair, maybe
    /// with 0 to remove). Every device is counted; only the ones `listing` keeps are built
    /// (a what-if over the whole machine must not allocate an entry per device to reply with 16).
    private func impact(
        removing removed: some Sequence<(Int, UInt8)>, adding added: [Int: UInt8] = [:], listing: ImpactListing
    ) -> PathImpact {
        var impact = PathImpact()
        for (index, bits) in removed {
            let record = records[index]
            let paths = record.operationalPaths
            guard paths.isDevice else { continue }
            let after = (paths.mask | (added[index] ?? 0)) & ~bits
            // Losing a path: one of today's operational paths is not in `after` (a swap loses
            // one and gains another).
            guard paths.mask & ~after != 0 else { continue }
            impact.devicesLosingAPath += 1
            if paths.inUse { impact.inUseDevicesLosingAPath += 1 }
            let marked = listing.marked(record.id)
            if after == 0 {
                impact.lostLastPathCount += 1
                if paths.inUse { impact.inUseLostLastPathCount += 1 }
                if impact.lostLastPath.count < listing.limit {
                    impact.lostLastPath.append(ImpactedDevice(record, before: paths.mask, after: after))
                }
                if marked { impact.markedLostLastPath.append(record.id) }
            } else if after.nonzeroBitCount == 1 && paths.count > 1 {
                impact.droppedToOnePathCount += 1
                if impact.droppedToOnePath.count < listing.limit {
                    impact.droppedToOnePath.append(ImpactedDevice(record, before: paths.mask, after: after))
                }
                if marked { impact.markedDroppedToOnePath.append(record.id) }
            }
        }
        return impact
    }
}

/// Which devices an impact lists: the first `limit` of each list, by subchannel id; and which
/// subchannels it marks (the server's passed-through ones), whose ids it always collects.
package struct ImpactListing {
    /// Most devices `lostLastPath` and `droppedToOnePath` keep; the counts cover all.
    package var limit: Int
    /// Whether a subchannel is marked (its id collected whatever the limit).
    package var marked: (SubchannelID) -> Bool

    package init(limit: Int, marked: @escaping (SubchannelID) -> Bool = { _ in false }) {
        self.limit = limit
        self.marked = marked
    }

    /// Every device listed: what the model's tests and the interlock's "already gone" ask.
    package static var all: ImpactListing { ImpactListing(limit: .max) }
}

/// Paths leaving operational masks, for `Subsystem.impact(of:)`: chpids for every subchannel
/// that has them, chpids for some subchannels only, and new logical path masks.
package struct PathRemoval: Sendable {
    /// Paths that go for every subchannel (vary offline, configure standby).
    package var chpids: [ChannelPathID]
    /// Paths that go for the listed subchannels only (per-device vary).
    package var perSubchannel: [(chpids: [ChannelPathID], subchannels: [SubchannelID])]
    /// Subchannels given a new LPM (MSCH): the bits it clears go.
    package var logicalPathMasks: [(subchannel: SubchannelID, lpm: UInt8)]

    package init(
        chpids: [ChannelPathID] = [], perSubchannel: [(chpids: [ChannelPathID], subchannels: [SubchannelID])] = [],
        logicalPathMasks: [(subchannel: SubchannelID, lpm: UInt8)] = []
    ) {
        self.chpids = chpids
        self.perSubchannel = perSubchannel
        self.logicalPathMasks = logicalPathMasks
    }
}

/// One device an impact names: its ids, types, whether it is in use, and its operational
/// masks before and after (bit 0x80 = slot 0).
package struct ImpactedDevice: Hashable, Sendable {
    package let subchannel: SubchannelID
    package let device: DeviceID
    package let devType: UInt16
    package let devModel: UInt8
    package let cuType: UInt16
    package let cuModel: UInt8
    /// Online and there (`OperationalPaths.inUse`).
    package let inUse: Bool
    /// Operational paths now and after the change (equal for a current-state report).
    package let before: UInt8
    package let after: UInt8

    init(_ record: Subchannel, before: UInt8, after: UInt8) {
        subchannel = record.id
        // Only devices (DNV 1) are named.
        device = record.deviceID!
        devType = record.devType
        devModel = record.devModel
        cuType = record.cuType
        cuModel = record.cuModel
        inUse = record.operationalPaths.inUse
        self.before = before
        self.after = after
    }
}

/// The answer to a what-if: which devices lose their last operational path, which drop to one,
/// and how the IBM Linux Health Checker would rate it.
package struct PathImpact: Hashable, Sendable {
    /// Devices whose operational mask would become 0, in subchannel-id order (the first
    /// `ImpactListing.limit`).
    package internal(set) var lostLastPath: [ImpactedDevice] = []
    /// Devices that would be left with exactly one operational path, in subchannel-id order
    /// (the first `ImpactListing.limit`).
    package internal(set) var droppedToOnePath: [ImpactedDevice] = []
    /// How many devices would lose their last path, listed or not.
    package internal(set) var lostLastPathCount = 0
    /// Of those, the devices in use.
    package internal(set) var inUseLostLastPathCount = 0
    /// How many devices would be left with one path, listed or not.
    package internal(set) var droppedToOnePathCount = 0
    /// Devices that would lose at least one operational path.
    package internal(set) var devicesLosingAPath = 0
    /// Of those, the devices in use.
    package internal(set) var inUseDevicesLosingAPath = 0
    /// The marked subchannels (`ImpactListing.marked`) that would lose their last path, and
    /// that would drop to one, every one of them, in subchannel-id order.
    package internal(set) var markedLostLastPath: [SubchannelID] = []
    package internal(set) var markedDroppedToOnePath: [SubchannelID] = []

    /// Whether a list was cut by the listing's limit.
    package var truncated: Bool {
        lostLastPath.count < lostLastPathCount || droppedToOnePath.count < droppedToOnePathCount
    }

    /// The Health Checker's rating (lnxhc `css_ccw_chpid_status`: `used_*` exceptions, online
    /// devices behind the chpid, are high; `unused_*`, none online, are low): `.high` when a
    /// device in use loses a path, `.low` when only devices not in use do, `.unaffected` when
    /// no device loses one.
    package var severity: ImpactSeverity {
        inUseDevicesLosingAPath > 0 ? .high : devicesLosingAPath > 0 ? .low : .unaffected
    }
}

/// A rating in the IBM Linux Health Checker's terms (`severity = high | low` of the
/// css_ccw_chpid_status exceptions), plus `unaffected` for an action that takes no device's
/// path (not `none`, which an optional's `.none` would shadow).
package enum ImpactSeverity: String, Hashable, Sendable {
    case high
    case low
    case unaffected
}

/// A chpid that is the only operational path of some devices.
package struct CriticalPath: Hashable, Sendable {
    package let chpid: ChannelPathID
    /// The devices running on it alone, in subchannel-id order.
    package let devices: [ImpactedDevice]
}

/// The machine's redundancy as it is (`Subsystem.currentRedundancy`).
package struct PathRedundancyReport: Hashable, Sendable {
    /// Devices on exactly one operational path, in subchannel-id order.
    package let singlePath: [ImpactedDevice]
    /// Devices without any operational path, in subchannel-id order.
    package let withoutPath: [ImpactedDevice]
    /// Chpids whose loss would take a device down, in chpid order.
    package let criticalPaths: [CriticalPath]
}
