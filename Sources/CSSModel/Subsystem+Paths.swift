// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// Channel-path operations. Each costs O(subchannels on that chpid): it walks the path's
/// member list, whose entries carry the record index and the slot, so no search is needed.
///
/// How a path's state maps onto the masks of every subchannel that has it installed:
/// - LPM bit: the path is varied online (the OS's view; vary never reaches the machine),
/// - PAM bit: the path is configured and not permanently failed,
/// - POM bit: no fault is outstanding; PNOM bit: the reverse; PNO in the SCSW: PNOM is not 0.
extension Subsystem {
    /// Varies a path online or offline for every subchannel using it: sets or clears the
    /// path's LPM bit. The machine is not involved, so no CRW is queued. Repeating a vary is
    /// accepted and changes nothing (as sysfs `status` does).
    /// - Returns: the subchannels whose LPM changed.
    /// - Throws: `ModelError.unknownChannelPath`.
    @discardableResult
    package mutating func varyPath(_ id: ChannelPathID, to state: VaryState) throws(ModelError) -> PathChange {
        guard let path = pathIndex[id.rawValue] else { throw .unknownChannelPath(id) }
        let before = paths[path]
        paths[path].vary = state
        let (affected, losses) = applyToMembers(of: path, MaskUpdate(lpm: state == .online))
        var change = PathChange(before: before, after: paths[path], affected: affected, crws: [], crwsLost: 0)
        change.losses = losses
        return change
    }

    /// Varies a path for one subchannel only (Linux's per-device vary): its LPM bit changes,
    /// the path's own vary state does not.
    /// - Throws: `ModelError.unknownChannelPath`, `.unknownSubchannel`, or `.pathNotInstalled`.
    @discardableResult
    package mutating func varyPath(_ id: ChannelPathID, to state: VaryState, subchannel: SubchannelID)
        throws(ModelError) -> PathChange
    {
        guard let path = pathIndex[id.rawValue] else { throw .unknownChannelPath(id) }
        guard let index = recordIndex[subchannel.rawValue].map({ Int($0) }) else {
            throw .unknownSubchannel(subchannel)
        }
        guard let slot = records[index].slot(of: id) else { throw .pathNotInstalled(id, subchannel) }
        var affected: [AffectedSubchannel] = []
        var losses = PathChange.RedundancyLosses()
        if let (change, loss) = apply(MaskUpdate(lpm: state == .online), toRecord: index, slot: slot) {
            losses.note(loss, at: affected.count)
            affected.append(change)
        }
        var change = PathChange(before: paths[path], after: paths[path], affected: affected, crws: [], crwsLost: 0)
        change.losses = losses
        return change
    }

    /// Configures a path (SCLP configure / deconfigure, sysfs `configure` 1 / 0). Going to
    /// standby removes the path from every PAM and the machine reports "path gone" (CRW RSC 4
    /// ERC 6); coming back adds it and reports "path come" (ERC 2). A path that is
    /// permanently failed was already gone, so neither is reported for it. Requesting the
    /// current state changes nothing.
    /// - Parameter state: `.configured` or `.standby`.
    /// - Throws: `ModelError.invalidConfigureTarget` for other states,
    ///   `.unknownChannelPath`, `.notConfigurable` for a reserved or not-recognized path.
    @discardableResult
    package mutating func configurePath(_ id: ChannelPathID, to state: ConfigureState) throws(ModelError) -> PathChange
    {
        guard state == .configured || state == .standby else { throw .invalidConfigureTarget(state) }
        guard let path = pathIndex[id.rawValue] else { throw .unknownChannelPath(id) }
        let current = paths[path].configure
        guard current == .configured || current == .standby else { throw .notConfigurable(id, current) }
        var after = paths[path]
        after.configure = state
        return transition(path, to: after)
    }

    /// Injects a path fault or its recovery:
    /// - `permanentError`: the path leaves PAM and POM, enters PNOM, PNO is set; a configured
    ///   path reports "path gone" (ERC 6);
    /// - `temporaryError`: the path leaves POM and enters PNOM, PNO is set, it stays available;
    ///   a configured path reports ERC 3. A temporary error on a failed path changes nothing;
    /// - `recovered`: the path is operational again (POM set, PNOM cleared, PAM restored if
    ///   configured); a configured path reports "path come" (ERC 2).
    /// A path in standby is not reported on: the machine does not use it for this partition.
    /// - Throws: `ModelError.unknownChannelPath`.
    @discardableResult
    package mutating func injectPathFault(_ id: ChannelPathID, _ fault: PathFault) throws(ModelError) -> PathChange {
        guard let path = pathIndex[id.rawValue] else { throw .unknownChannelPath(id) }
        var after = paths[path]
        switch fault {
        case .permanentError: after.condition = .permanentError
        case .temporaryError: if after.condition == .operational { after.condition = .temporaryError }
        case .recovered: after.condition = .operational
        }
        return transition(path, to: after)
    }

    /// RCHP: cc 0 and a solicited channel-path CRW with ERC 2 (initialized), chained with a
    /// cssid word under MCSSE (`0x54020000`, `0x4402fe00`); cc 3 when the path does not exist
    /// or is not configured (not operational for this partition).
    package mutating func resetChannelPath(_ id: ChannelPathID) -> ResetChannelPathResult {
        guard let path = pathIndex[id.rawValue], paths[path].configure == .configured else {
            return ResetChannelPathResult(cc: 3, crws: [])
        }
        let report = CRW.channelPathReport(id, erc: .initialized, solicited: true, multipleCSS: multipleCSSEnabled)
        return ResetChannelPathResult(cc: 0, crws: queueReport(report, cssid: id.cssid))
    }

    /// The unsolicited report the machine makes when a path goes from `before` to `after`,
    /// or nil when it makes none. Only paths configured to this partition (before or after)
    /// are reported on: losing availability is "path gone" (ERC 6), gaining it "path come"
    /// (ERC 2); while available, a temporary error is ERC 3 and its recovery ERC 2.
    package static func machineReport(from before: ChannelPath, to after: ChannelPath) -> ErrorRecoveryCode? {
        guard before.configure == .configured || after.configure == .configured else { return nil }
        switch (before.isAvailable, after.isAvailable) {
        case (true, false): return .permanentErrorNotInitialized
        case (false, true): return .initialized
        case (false, false): return nil
        case (true, true):
            switch (before.isOperational, after.isOperational) {
            case (true, false): return .temporaryError
            case (false, true): return .initialized
            default: return nil
            }
        }
    }

    // MARK: Internals

    /// Moves path `path` to `after`, updates the masks of its subchannels and queues the report.
    private mutating func transition(_ path: Int, to after: ChannelPath) -> PathChange {
        let before = paths[path]
        guard before != after else {
            return PathChange(before: before, after: before, affected: [], crws: [], crwsLost: 0)
        }
        paths[path] = after
        var update = MaskUpdate()
        if before.isAvailable != after.isAvailable { update.pam = after.isAvailable }
        if before.isOperational != after.isOperational {
            update.pom = after.isOperational
            update.pnom = !after.isOperational
        }
        let (affected, losses) = update.isEmpty ? ([], PathChange.RedundancyLosses()) : applyToMembers(of: path, update)
        var crws: [CRW] = []
        var lost = 0
        if let erc = Subsystem.machineReport(from: before, to: after) {
            let report = CRW.channelPathReport(after.id, erc: erc, solicited: false, multipleCSS: multipleCSSEnabled)
            crws = queueReport(report, cssid: after.id.cssid)
            if crws.isEmpty { lost = report.count }
        }
        var change = PathChange(before: before, after: after, affected: affected, crws: crws, crwsLost: lost)
        change.losses = losses
        return change
    }

    /// Applies `update` to the path's bit in every member subchannel; returns the members whose
    /// masks changed and which of them lost their redundancy or last path.
    private mutating func applyToMembers(of path: Int, _ update: MaskUpdate)
        -> ([AffectedSubchannel], PathChange.RedundancyLosses)
    {
        let list = members[path]
        var affected: [AffectedSubchannel] = []
        affected.reserveCapacity(list.count)
        var losses = PathChange.RedundancyLosses()
        // Every member of a path is in the path's css: one count to adjust.
        var lostOperational = 0
        // Taken out for the loop (the records are borrowed mutably in it) and put back.
        var counts = RedundancyCounts()
        swap(&counts, &redundancy)
        records.withUnsafeMutableBufferPointer { records in
            for entry in list {
                let index = Int(entry >> 3)
                let old = records[index].schib.pmcw
                guard let change = update.apply(to: &records[index], slot: Int(entry & 7)) else { continue }
                let position = affected.count
                affected.append(change)
                // A subchannel with two or more operational paths before and after (most of
                // them, on a machine with redundant paths) changes no count: two mask
                // computations and nothing else.
                let oldMask = old.pim & old.pam & old.pom & old.lpm
                let newMask = change.pim & change.pam & change.pom & change.lpm
                if oldMask & (oldMask &- 1) != 0 && newMask & (newMask &- 1) != 0 { continue }
                // A mask update changes neither the subchannel type, the device number nor
                // the device's presence: "before" differs from "after" in the mask only.
                let isIO = old.chars & PMCW.Characteristics.subchannelType == 0
                let after = records[index].operationalPaths
                let before = OperationalPaths(mask: isIO ? oldMask : 0, inUse: after.inUse, isDevice: after.isDevice)
                losses.note(RedundancyLoss(from: before, to: after), at: position)
                counts.move(records[index], from: before, to: after)
                if isIO && (oldMask == 0) != (newMask == 0) { lostOperational += newMask == 0 ? 1 : -1 }
            }
        }
        swap(&counts, &redundancy)
        if lostOperational != 0 { withoutOperationalPath[paths[path].id.cssid, default: 0] += lostOperational }
        return (affected, losses)
    }

    /// Applies `update` to one subchannel's path in `slot`, keeping the counts (also the
    /// per-device fault's, Subsystem+DeviceFaults.swift).
    mutating func apply(_ update: MaskUpdate, toRecord index: Int, slot: Int)
        -> (AffectedSubchannel, RedundancyLoss?)?
    {
        let before = records[index].operationalPaths
        let hadOperational = records[index].schib.pmcw.hasOperationalPathOrIsNotIO
        guard let change = update.apply(to: &records[index], slot: slot) else { return nil }
        let after = records[index].operationalPaths
        redundancy.move(records[index], from: before, to: after)
        noteOperationalPath(
            cssid: records[index].id.cssid, before: hadOperational,
            after: records[index].schib.pmcw.hasOperationalPathOrIsNotIO)
        return (change, RedundancyLoss(from: before, to: after))
    }
}

/// Which of a path's mask bits to set (true), clear (false) or keep (nil).
struct MaskUpdate {
    var lpm: Bool?
    var pam: Bool?
    var pom: Bool?
    var pnom: Bool?

    var isEmpty: Bool { lpm == nil && pam == nil && pom == nil && pnom == nil }

    /// Updates one subchannel; returns its new masks if any changed.
    @inline(__always)
    func apply(to record: inout Subchannel, slot: Int) -> AffectedSubchannel? {
        let bit = pathMaskBit(slot: slot)
        var pmcw = record.schib.pmcw
        let old = (pmcw.lpm, pmcw.pam, pmcw.pom, pmcw.pnom)
        if let on = lpm { pmcw.lpm = on ? pmcw.lpm | bit : pmcw.lpm & ~bit }
        if let on = pam { pmcw.pam = on ? pmcw.pam | bit : pmcw.pam & ~bit }
        if let on = pom { pmcw.pom = on ? pmcw.pom | bit : pmcw.pom & ~bit }
        if let on = pnom { pmcw.pnom = on ? pmcw.pnom | bit : pmcw.pnom & ~bit }
        guard old != (pmcw.lpm, pmcw.pam, pmcw.pom, pmcw.pnom) else { return nil }
        record.schib.pmcw = pmcw
        record.schib.scsw.pathNotOperational = pmcw.pnom != 0
        return AffectedSubchannel(
            id: record.id, device: record.deviceID, slot: slot, pim: pmcw.pim, lpm: pmcw.lpm, pam: pmcw.pam,
            pom: pmcw.pom, pnom: pmcw.pnom,
            lpum: pmcw.lpum, pathNotOperational: pmcw.pnom != 0)
    }
}
