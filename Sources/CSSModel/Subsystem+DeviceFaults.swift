// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// Faults a failure scenario makes that no QMP command makes (API/scenarios.md): a path that
/// fails for one device only, and several chpids failing as one incident.
extension Subsystem {
    /// A path fault or its recovery for one device only: the link from a switch to one control
    /// unit's port, while the channel path and the other devices on it keep working.
    /// - `permanentError`: the path leaves this subchannel's PAM and POM, enters its PNOM, PNO is
    ///   set;
    /// - `temporaryError`: the path leaves its POM and enters its PNOM, PNO is set;
    /// - `recovered`: POM set, PNOM cleared, PAM restored if the channel path itself is
    ///   available.
    /// No CRW: the channel path did not change, so the machine makes no channel-path report;
    /// the program learns of it from the subchannel (PNO in the SCSW, PNOM), as Linux's cio
    /// does on its next I/O to the device. A later fault or recovery of the whole chpid sets
    /// the bits of every subchannel on it, this one included.
    /// - Returns: the change, with the path as it is (unchanged) and this subchannel as the only
    ///   one affected (none when its masks already were so). Cost O(1).
    /// - Throws: `ModelError.unknownDevice`, `.unknownChannelPath`, `.pathNotInstalled`.
    @discardableResult
    package mutating func injectDevicePathFault(_ device: DeviceID, _ id: ChannelPathID, _ fault: PathFault)
        throws(ModelError) -> PathChange
    {
        guard let index = deviceIndex[device.rawValue].map({ Int($0) }) else { throw .unknownDevice(device) }
        guard let path = pathIndex[id.rawValue] else { throw .unknownChannelPath(id) }
        guard let slot = records[index].slot(of: id) else { throw .pathNotInstalled(id, records[index].id) }
        let update: MaskUpdate
        switch fault {
        case .permanentError: update = MaskUpdate(pam: false, pom: false, pnom: true)
        case .temporaryError: update = MaskUpdate(pom: false, pnom: true)
        case .recovered: update = MaskUpdate(pam: paths[path].isAvailable, pom: true, pnom: false)
        }
        var affected: [AffectedSubchannel] = []
        var losses = PathChange.RedundancyLosses()
        if let (change, loss) = apply(update, toRecord: index, slot: slot) {
            losses.note(loss, at: 0)
            affected.append(change)
        }
        var change = PathChange(before: paths[path], after: paths[path], affected: affected, crws: [], crwsLost: 0)
        change.losses = losses
        return change
    }

    /// Several chpids failing (or recovering) at once as one incident, a switch or a storage
    /// port: each path changes as `injectPathFault` changes it, in the order given, and the
    /// machine reports each with a channel-path CRW of its own, as hardware does (there is no
    /// CRW for a group).
    /// - Returns: one change per chpid, in the order given. Cost: the sum of the single faults.
    /// - Throws: `ModelError.unknownChannelPath` for the first unknown chpid, before anything
    ///   changes.
    package mutating func injectPathFaults(_ ids: [ChannelPathID], _ fault: PathFault) throws(ModelError)
        -> [PathChange]
    {
        for id in ids where pathIndex[id.rawValue] == nil { throw .unknownChannelPath(id) }
        var changes: [PathChange] = []
        changes.reserveCapacity(ids.count)
        for id in ids { changes.append(try injectPathFault(id, fault)) }
        return changes
    }
}
