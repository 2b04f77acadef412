// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// Redundancy of the devices in use: how many run on a single operational path and how many
/// on none, per channel path and per css, and which lost their redundancy or their last path
/// in a change.
///
/// "Operational" and "in use" are `Subchannel.operationalPaths`' (PIM & PAM & POM & LPM; an
/// online device that is there), the definitions the impact query and the last-path interlock
/// use. The counts are kept up to date by every operation that changes a mask or a device's
/// presence, like `subchannelsWithoutOperationalPath`, so that reading them costs O(1) at any
/// size: a scrape reads O(chpids) numbers, and a change costs O(1) more per subchannel it
/// already touches (nothing for a device that keeps two or more paths). The tests check them
/// against `recountRedundancy()` after random operations.
package struct RedundancyCounts: Hashable, Sendable {
    /// Per channel path (the model's path order): devices in use whose only operational path
    /// it is, the devices its loss would take down.
    var singlePath: [Int32] = []
    /// Per channel path: of `singlePath`, the devices that have two or more paths installed
    /// (PIM): they had redundancy and lost it (a device installed with one path never had any).
    var redundancyLost: [Int32] = []
    /// Per channel path: devices in use that have it installed and no operational path.
    var withoutPath: [Int32] = []
    /// Per cssid (index = cssid): devices in use on exactly one operational path.
    var singlePathByCSS = [Int32](repeating: 0, count: 256)
    /// Per cssid: of those, the devices with two or more paths installed.
    var redundancyLostByCSS = [Int32](repeating: 0, count: 256)
    /// Per cssid: devices in use without an operational path.
    var withoutPathByCSS = [Int32](repeating: 0, count: 256)
    /// cssid -> first entry of its 256 chpids in `pathByChpid`, -1 for a css without paths: a
    /// slot's channel path in two array reads rather than a hash lookup per device.
    var blockByCSS = [Int32](repeating: -1, count: 256)
    /// Per (css block, chpid): the path's index in the model's paths, -1 for none.
    var pathByChpid: [Int32] = []

    init() {}

    /// Counts every subchannel of a model: O(subchannels), once, when it is built or restored.
    init(records: [Subchannel], paths: [ChannelPath]) {
        singlePath = [Int32](repeating: 0, count: paths.count)
        redundancyLost = [Int32](repeating: 0, count: paths.count)
        withoutPath = [Int32](repeating: 0, count: paths.count)
        for (index, path) in paths.enumerated() {
            let cssid = Int(path.id.cssid)
            if blockByCSS[cssid] < 0 {
                blockByCSS[cssid] = Int32(pathByChpid.count)
                pathByChpid += [Int32](repeating: -1, count: 256)
            }
            pathByChpid[Int(blockByCSS[cssid]) + Int(path.id.chpid)] = Int32(index)
        }
        for record in records {
            let pmcw = record.schib.pmcw
            let mask = pmcw.pim & pmcw.pam & pmcw.pom & pmcw.lpm
            // Two or more operational paths: nothing to count (most subchannels).
            if mask & (mask &- 1) != 0 { continue }
            add(record, record.operationalPaths, 1)
        }
    }

    /// The channel path (index in the model's paths) in `slot` of `record`, -1 if unknown.
    @inline(__always)
    func path(of record: Subchannel, slot: Int) -> Int {
        let block = blockByCSS[Int(record.id.cssid)]
        guard block >= 0 else { return -1 }
        return Int(pathByChpid[Int(block) + Int(record.schib.pmcw.chpids[slot])])
    }

    /// Whether a subchannel in state `paths` counts at all: a device in use on fewer than two
    /// operational paths.
    @inline(__always)
    static func counts(_ paths: OperationalPaths) -> Bool { paths.inUse && paths.mask & (paths.mask &- 1) == 0 }

    /// Records that `record` (its installed paths as they are now) went from `before` to
    /// `after`. O(1) for a device that keeps two or more paths, O(paths installed) otherwise.
    @inline(__always)
    mutating func move(_ record: Subchannel, from before: OperationalPaths, to after: OperationalPaths) {
        let was = Self.counts(before)
        let now = Self.counts(after)
        guard was || now, !(was && now && before.mask == after.mask) else { return }
        if was { add(record, before, -1) }
        if now { add(record, after, 1) }
    }

    /// Adds (`sign` 1) or removes (-1) the contribution of `record` in state `paths`.
    private mutating func add(_ record: Subchannel, _ paths: OperationalPaths, _ sign: Int32) {
        guard Self.counts(paths) else { return }
        let cssid = Int(record.id.cssid)
        let pim = record.schib.pmcw.pim
        if paths.mask != 0 {
            let slot = paths.mask.leadingZeroBitCount
            let path = path(of: record, slot: slot)
            let lost: Int32 = pim & (pim &- 1) != 0 ? sign : 0
            if path >= 0 {
                singlePath[path] += sign
                redundancyLost[path] += lost
            }
            singlePathByCSS[cssid] += sign
            redundancyLostByCSS[cssid] += lost
            return
        }
        for slot in 0..<8 where pim & pathMaskBit(slot: slot) != 0 {
            let path = path(of: record, slot: slot)
            if path >= 0 { withoutPath[path] += sign }
        }
        withoutPathByCSS[cssid] += sign
    }

    func summary(path index: Int) -> RedundancySummary {
        RedundancySummary(
            singlePath: Int(singlePath[index]), redundancyLost: Int(redundancyLost[index]),
            withoutPath: Int(withoutPath[index]))
    }

    func summary(cssid: UInt8) -> RedundancySummary {
        let css = Int(cssid)
        return RedundancySummary(
            singlePath: Int(singlePathByCSS[css]), redundancyLost: Int(redundancyLostByCSS[css]),
            withoutPath: Int(withoutPathByCSS[css]))
    }

    /// Heap bytes of the tables (for `Subsystem.storageBytes`).
    var storageBytes: Int {
        (singlePath.capacity + redundancyLost.capacity + withoutPath.capacity + singlePathByCSS.capacity
            + redundancyLostByCSS.capacity + withoutPathByCSS.capacity + blockByCSS.capacity + pathByChpid.capacity)
            * 4 + 8 * 32
    }
}

/// Devices in use by redundancy: on exactly one operational path, and on none.
package struct RedundancySummary: Hashable, Sendable {
    /// Devices in use on exactly one operational path (per chpid: whose only path it is).
    package let singlePath: Int
    /// Of `singlePath`, those with two or more paths installed: they lost their redundancy.
    package let redundancyLost: Int
    /// Devices in use without an operational path (per chpid: those that have it installed).
    package let withoutPath: Int

    package init(singlePath: Int, redundancyLost: Int, withoutPath: Int) {
        self.singlePath = singlePath
        self.redundancyLost = redundancyLost
        self.withoutPath = withoutPath
    }
}

/// What one change did to a device's redundancy.
package enum RedundancyLoss: Hashable, Sendable {
    /// It ran on two or more operational paths and now runs on exactly one.
    case redundancy
    /// It had an operational path and now has none.
    case lastPath

    /// The loss of a device that went from `before` to `after`, nil when it lost neither (or
    /// was not in use before: a device nobody uses loses nothing an operator acts on).
    @inline(__always)
    package init?(from before: OperationalPaths, to after: OperationalPaths) {
        guard before.inUse, before.mask != 0 else { return nil }
        if after.mask == 0 {
            self = .lastPath
        } else if after.mask & (after.mask &- 1) == 0 && before.mask & (before.mask &- 1) != 0 {
            self = .redundancy
        } else {
            return nil
        }
    }
}

extension Subsystem {
    /// Devices in use on one operational path and on none, in channel subsystem `cssid`. O(1).
    package func redundancy(cssid: UInt8) -> RedundancySummary {
        redundancy.summary(cssid: cssid)
    }

    /// For the channel path at `index` in `channelPaths`: devices in use whose only
    /// operational path it is (its loss takes them down), and devices in use that have it
    /// installed and no operational path. O(1).
    package func redundancy(ofPathAt index: Int) -> RedundancySummary {
        redundancy.summary(path: index)
    }

    /// `redundancy(ofPathAt:)` by chpid; nil for an unknown one. O(1).
    package func redundancy(of chpid: ChannelPathID) -> RedundancySummary? {
        pathIndex[chpid.rawValue].map { redundancy(ofPathAt: $0) }
    }

    /// The counts found by walking every subchannel: O(subchannels). The reference the
    /// maintained counts are tested against; per path in `channelPaths` order, then per css
    /// in `cssids` order.
    package func recountRedundancy() -> (paths: [RedundancySummary], css: [RedundancySummary]) {
        let counted = RedundancyCounts(records: records, paths: paths)
        return (paths.indices.map { counted.summary(path: $0) }, cssids.map { counted.summary(cssid: $0) })
    }

    /// The counts as maintained, in `recountRedundancy()`'s shape.
    package func maintainedRedundancy() -> (paths: [RedundancySummary], css: [RedundancySummary]) {
        (paths.indices.map { redundancy(ofPathAt: $0) }, cssids.map { redundancy(cssid: $0) })
    }
}

extension PathChange {
    /// Positions in `affected` of the devices in use that this change left on exactly one
    /// operational path (`redundancyLost`) or on none (`lastPathLost`): each at most once per
    /// change, under the path of the lowest slot whose operational bit it lost.
    package struct RedundancyLosses: Hashable, Sendable {
        package var redundancyLost: [Int32] = []
        package var lastPathLost: [Int32] = []

        package init(redundancyLost: [Int32] = [], lastPathLost: [Int32] = []) {
            self.redundancyLost = redundancyLost
            self.lastPathLost = lastPathLost
        }

        package var isEmpty: Bool { redundancyLost.isEmpty && lastPathLost.isEmpty }

        @inline(__always)
        mutating func note(_ loss: RedundancyLoss?, at position: Int) {
            switch loss {
            case .redundancy?: redundancyLost.append(Int32(position))
            case .lastPath?: lastPathLost.append(Int32(position))
            case nil: break
            }
        }
    }

    /// The affected subchannels at `positions` (of `losses`).
    package func affected(at positions: [Int32]) -> [AffectedSubchannel] { positions.map { affected[Int($0)] } }
}
