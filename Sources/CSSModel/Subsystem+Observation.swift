// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// A model that mirrors a machine it does not run: a backend reads the machine's state (Linux
/// sysfs), builds a topology from it, then sets what it observed that a topology cannot say
/// (each subchannel's masks). Comparing two observations gives the path changes between them,
/// in the same form the model's own operations report, so path events need not know where a
/// change came from.
extension Subsystem {
    /// Sets a subchannel's path masks as observed (bit 0x80 = slot 0, as in the SCHIB). PNOM
    /// is what is installed but not operational, and PNO follows it. Nothing else changes: no
    /// CRW, no path state. `vpm`, when given, is the operating system's verified path mask
    /// (kept as `verifiedPathMask`, limited to PIM); nil leaves it unknown.
    /// - Throws: `ModelError.unknownSubchannel`.
    package mutating func setObservedMasks(
        _ id: SubchannelID, pam: UInt8, pom: UInt8, lpm: UInt8, vpm: UInt8? = nil
    ) throws(ModelError) {
        guard let index = recordIndex[id.rawValue].map({ Int($0) }) else { throw .unknownSubchannel(id) }
        var pmcw = records[index].schib.pmcw
        let before = pmcw.hasOperationalPathOrIsNotIO
        let paths = records[index].operationalPaths
        pmcw.pam = pam & pmcw.pim
        pmcw.pom = pom
        pmcw.lpm = lpm & pmcw.pim
        pmcw.pnom = pmcw.pim & ~pom
        records[index].schib.pmcw = pmcw
        records[index].schib.scsw.pathNotOperational = pmcw.pnom != 0
        noteOperationalPath(cssid: id.cssid, before: before, after: pmcw.hasOperationalPathOrIsNotIO)
        redundancy.move(records[index], from: paths, to: records[index].operationalPaths)
        records[index].verifiedPathMask = vpm.map { $0 & pmcw.pim }
    }

    /// Sets whether the device behind a subchannel is there (`Subchannel.hasDevice`), as
    /// observed. Nothing else changes.
    /// - Throws: `ModelError.unknownSubchannel`.
    package mutating func setObservedDevice(_ id: SubchannelID, present: Bool) throws(ModelError) {
        guard let index = recordIndex[id.rawValue].map({ Int($0) }) else { throw .unknownSubchannel(id) }
        let paths = records[index].operationalPaths
        records[index].hasDevice = present
        // A device that went away is no longer in use: it leaves the redundancy counts.
        redundancy.move(records[index], from: paths, to: records[index].operationalPaths)
    }

    /// Whether `other` describes the same subchannels with the same installed paths, so that
    /// `pathChanges(to:)` can compare them slot by slot.
    package func hasSameLayout(as other: Subsystem) -> Bool {
        guard records.count == other.records.count, paths.count == other.paths.count else { return false }
        for index in paths.indices where paths[index].id != other.paths[index].id { return false }
        for index in records.indices {
            let a = records[index]
            let b = other.records[index]
            guard a.id == b.id, a.schib.pmcw.pim == b.schib.pmcw.pim, a.schib.pmcw.chpids == b.schib.pmcw.chpids else {
                return false
            }
        }
        return true
    }

    /// The changes from this observation to `newer` (which must have the same layout): one
    /// per channel path whose state changed or on which some subchannel's masks changed, in
    /// chpid order, each with the affected subchannels in id order.
    package func pathChanges(to newer: Subsystem) -> [PathChange] {
        precondition(hasSameLayout(as: newer), "observations of different machines")
        var affectedByPath = [[AffectedSubchannel]](repeating: [], count: paths.count)
        var lossesByPath = [PathChange.RedundancyLosses](repeating: .init(), count: paths.count)
        for index in records.indices {
            let old = records[index].schib.pmcw
            let new = newer.records[index].schib.pmcw
            let changedBits = (old.lpm ^ new.lpm) | (old.pam ^ new.pam) | (old.pom ^ new.pom) | (old.pnom ^ new.pnom)
            guard changedBits != 0 else { continue }
            let record = newer.records[index]
            let (loss, lossSlot) = Self.redundancyLoss(from: records[index], to: record)
            for slot in 0..<8 where changedBits & pathMaskBit(slot: slot) != 0 {
                let chpid = ChannelPathID(cssid: record.id.cssid, chpid: new.chpids[slot])
                guard let path = pathIndex[chpid.rawValue] else { continue }
                if slot == lossSlot { lossesByPath[path].note(loss, at: affectedByPath[path].count) }
                affectedByPath[path].append(
                    AffectedSubchannel(
                        id: record.id, device: record.deviceID, slot: slot, pim: new.pim, lpm: new.lpm, pam: new.pam,
                        pom: new.pom, pnom: new.pnom, lpum: new.lpum, pathNotOperational: new.pnom != 0))
            }
        }
        var changes: [PathChange] = []
        for index in paths.indices where paths[index] != newer.paths[index] || !affectedByPath[index].isEmpty {
            var change = PathChange(
                before: paths[index], after: newer.paths[index], affected: affectedByPath[index], crws: [],
                crwsLost: 0)
            change.losses = lossesByPath[index]
            changes.append(change)
        }
        return changes
    }

    /// Sets a channel path's state as observed (vary, configure, type, shared, pchid). Nothing
    /// else changes: the masks of its subchannels are set by `setObservedMasks`. The condition
    /// is not `path`'s but follows the masks (`setObservedConditions(of:)`): it is kept, except
    /// that a path no longer configured is `operational` (`observedCondition(of:)`). A path
    /// configured again keeps its condition until its subchannels are read.
    /// - Throws: `ModelError.unknownChannelPath`.
    package mutating func setObservedPath(_ path: ChannelPath) throws(ModelError) {
        guard let index = pathIndex[path.id.rawValue] else { throw .unknownChannelPath(path.id) }
        var updated = path
        updated.subchannelCount = paths[index].subchannelCount
        updated.condition = path.configure == .configured ? paths[index].condition : .operational
        paths[index] = updated
    }

    /// A channel path's condition as its subchannels' masks show it, for a backend that cannot
    /// read the condition itself (Linux sysfs has no attribute for it; API/linux-sysfs.md,
    /// "Channel-path condition"). The channel subsystem takes a failed path out of the PAM of
    /// every subchannel it is installed in (in the model's own terms: CRW ERC 6 clears PAM and
    /// POM), so a *configured* path installed in at least one subchannel and in the PAM of none
    /// is `permanentError`; one in some PAM but in the POM of none of those is
    /// `temporaryError`; otherwise `operational`. A path not configured (standby, reserved, not
    /// recognized) is `operational`: configuration, not a fault, cleared its PAM bits, and its
    /// own state says so. A PAM bit cleared in only some subchannels is theirs (a device that
    /// cannot use the path), not the path's. Cost: O(subchannels using the path).
    package func observedCondition(of chpid: ChannelPathID) -> PathCondition {
        guard let index = pathIndex[chpid.rawValue], paths[index].configure == .configured else { return .operational }
        let entries = members[index]
        guard !entries.isEmpty else { return .operational }
        var available = false
        for entry in entries {
            let pmcw = records[Int(entry >> 3)].schib.pmcw
            let bit = pathMaskBit(slot: Int(entry & 7))
            guard pmcw.pam & bit != 0 else { continue }
            if pmcw.pom & bit != 0 { return .operational }
            available = true
        }
        return available ? .temporaryError : .permanentError
    }

    /// Sets the condition of each of `chpids` to `observedCondition(of:)`; unknown ids are
    /// skipped.
    /// - Returns: the paths whose condition changed, in the order given.
    /// - Cost: O(subchannels using the paths).
    @discardableResult
    package mutating func setObservedConditions(of chpids: some Sequence<ChannelPathID>) -> [ChannelPathID] {
        var changed: [ChannelPathID] = []
        for chpid in chpids {
            guard let index = pathIndex[chpid.rawValue] else { continue }
            let condition = observedCondition(of: chpid)
            guard paths[index].condition != condition else { continue }
            paths[index].condition = condition
            changed.append(chpid)
        }
        return changed
    }

    /// `pathChanges(to:)` for a reading that touched only some subchannels and paths: the
    /// same changes, found by comparing only `subchannels` and `paths` (the others are taken
    /// as unchanged), so that a targeted re-read costs what it read, not the machine's size.
    /// `newer` must have the same layout; ids it does not know are skipped.
    package func pathChanges(
        to newer: Subsystem, subchannels: some Sequence<SubchannelID>, paths changedPaths: some Sequence<ChannelPathID>
    ) -> [PathChange] {
        var affectedByPath: [Int: [AffectedSubchannel]] = [:]
        var lossesByPath: [Int: PathChange.RedundancyLosses] = [:]
        var indexes: [Int] = []
        for id in subchannels {
            guard let index = recordIndex[id.rawValue].map({ Int($0) }), newer.recordIndex[id.rawValue] == Int32(index)
            else { continue }
            indexes.append(index)
        }
        indexes.sort()
        var previous = -1
        for index in indexes where index != previous {
            previous = index
            let old = records[index].schib.pmcw
            let new = newer.records[index].schib.pmcw
            let changedBits = (old.lpm ^ new.lpm) | (old.pam ^ new.pam) | (old.pom ^ new.pom) | (old.pnom ^ new.pnom)
            guard changedBits != 0 else { continue }
            let record = newer.records[index]
            let (loss, lossSlot) = Self.redundancyLoss(from: records[index], to: record)
            for slot in 0..<8 where changedBits & pathMaskBit(slot: slot) != 0 {
                let chpid = ChannelPathID(cssid: record.id.cssid, chpid: new.chpids[slot])
                guard let path = pathIndex[chpid.rawValue] else { continue }
                if slot == lossSlot {
                    lossesByPath[path, default: .init()].note(loss, at: affectedByPath[path]?.count ?? 0)
                }
                affectedByPath[path, default: []].append(
                    AffectedSubchannel(
                        id: record.id, device: record.deviceID, slot: slot, pim: new.pim, lpm: new.lpm, pam: new.pam,
                        pom: new.pom, pnom: new.pnom, lpum: new.lpum, pathNotOperational: new.pnom != 0))
            }
        }
        var pathIndexes = Set(affectedByPath.keys)
        for id in changedPaths {
            if let index = pathIndex[id.rawValue], index < newer.paths.count, paths[index] != newer.paths[index] {
                pathIndexes.insert(index)
            }
        }
        return pathIndexes.sorted().map { index in
            var change = PathChange(
                before: paths[index], after: newer.paths[index], affected: affectedByPath[index] ?? [], crws: [],
                crwsLost: 0)
            change.losses = lossesByPath[index] ?? .init()
            return change
        }
    }

    /// What a device lost between two readings of it (same layout), and the slot it is told
    /// under: the lowest whose operational bit went (one event per device and change, even
    /// when a reading finds several paths gone at once); slot -1 when it lost nothing.
    static func redundancyLoss(from old: Subchannel, to new: Subchannel) -> (RedundancyLoss?, Int) {
        let before = old.operationalPaths
        guard let loss = RedundancyLoss(from: before, to: new.operationalPaths) else { return (nil, -1) }
        return (loss, (before.mask & ~new.operationalPaths.mask).leadingZeroBitCount)
    }
}
