// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// A device added to or removed from the running model, as dynamic I/O reconfiguration (or a
/// hot-plug in QEMU) adds or removes one: its subchannel appears with its installed paths, or
/// goes, and the machine queues a subchannel report about it. Described completely, so that
/// nobody reads the model again: the subchannel as it is (added) or was (removed), the CRWs,
/// and one `PathChange` per installed chpid for the path-event layer.
package struct DeviceChange: Hashable, Sendable {
    /// Whether the device came or went.
    package enum Kind: String, Hashable, Sendable {
        case added, removed
    }

    package let kind: Kind
    /// The subchannel as it is after an addition, or as it was just before a removal.
    package let subchannel: Subchannel
    /// The CRWs the machine queued (one, or a chained pair: `CRW.subchannelReport`); empty
    /// when they were lost to queue overflow.
    package let crws: [CRW]
    /// CRWs of this report lost to queue overflow.
    package let crwsLost: Int
    /// One change per installed chpid, in slot order: the path before and after (only its
    /// `subchannelCount` differs), this subchannel as the one affected with its masks; the
    /// report's CRWs ride on the first (a device has one report, not one per path).
    package let pathChanges: [PathChange]

    /// The device's bus id (an added or removed subchannel always has one).
    package var device: DeviceID { subchannel.deviceID! }
}

/// How a running model's devices differ from its topology's: the topology subchannels removed
/// and the subchannels added (with their descriptions), both by subchannel id. A subchannel
/// of the topology removed and then added again is in both; one added and then removed is in
/// neither.
package struct DeviceDelta: Hashable, Sendable {
    /// Subchannel ids (raw) of the topology whose devices were removed.
    package internal(set) var removed: Set<UInt32> = []
    /// Subchannel id (raw) -> the description it was added with.
    package internal(set) var added: [UInt32: Topology.Subchannel] = [:]

    package init() {}

    package var isEmpty: Bool { removed.isEmpty && added.isEmpty }
}

extension CRW {
    /// The words a subchannel report takes: RSC 3 (subchannel), ERC 2 ("installed parameters
    /// initialized", IPI), rsid = the subchannel number; chained to a second word whose rsid
    /// carries cssid << 8 | ssid << 4 when `chained`. This is what QEMU's `css_generate_sch_crws`
    /// queues for a hot-plugged and for an unplugged subchannel alike (chained when multiple
    /// css or multiple subchannel sets are enabled), and what Linux's `css_process_crw` reads:
    /// it takes the ssid from the second word's rsid (`(crw1->rsid >> 4) & 3`) and, since "we
    /// are always presented with IPI in the CRW", looks at the ERC only for "parameters
    /// modified" and otherwise STSCHes the subchannel (`css_evaluate_subchannel`) to learn
    /// whether it came (cc 0, DNV 1: registered) or went (cc 3: unregistered).
    package static func subchannelReport(_ id: SubchannelID, chained: Bool) -> [CRW] {
        let first = CRW(chained: chained, source: .subchannel, erc: .initialized, rsid: id.schno)
        guard chained else { return [first] }
        let second = CRW(source: .subchannel, erc: .initialized, rsid: UInt16(id.cssid) << 8 | UInt16(id.ssid & 3) << 4)
        return [first, second]
    }
}

extension Subsystem {
    /// Adds a device and its subchannel, described as a topology describes one (topology.md's
    /// subchannel fields; `devno` required): the subchannel appears with PIM = its installed
    /// paths, PAM = those configured and not permanently failed, LPM = those varied online,
    /// POM 0xff, PNOM 0, as `init(topology:)` builds one; the machine queues a subchannel report
    /// (`CRW.subchannelReport`, chained under MCSSE or for a subchannel set other than 0).
    ///
    /// The other subchannels keep their ids and their order; the indexes (by id, by device
    /// number, per chpid), the per-chpid subchannel counts, the subchannels without an
    /// operational path and the redundancy counts take the new one in.
    /// - Returns: the change (`DeviceChange`). Cost O(subchannels + installed paths): the
    ///   records after it move up one place.
    /// - Throws: `ModelError` `.invalidDevice` (no devno, not an I/O subchannel, a field out of
    ///   range, 0 or more than 8 paths, a chpid of another css or listed twice, a css the model
    ///   does not have), `.unknownChannelPath`, `.subchannelInUse`, `.deviceExists`; the model
    ///   is unchanged then.
    package mutating func addDevice(_ description: Topology.Subchannel) throws(ModelError) -> DeviceChange {
        let id = description.id
        guard let devno = description.devno, description.type == .io else {
            throw .invalidDevice(id, "a device needs a device number on an I/O subchannel")
        }
        guard cssids.contains(id.cssid) else {
            throw .invalidDevice(id, "channel subsystem \(Hex.string(id.cssid)) is not in the model")
        }
        for chpid in description.chpids where chpid.cssid == id.cssid && pathIndex[chpid.rawValue] == nil {
            throw .unknownChannelPath(chpid)
        }
        // The topology's own rules, on a topology of this one subchannel and the model's paths.
        let single = Topology(
            channelSubsystems: [Topology.ChannelSubsystem(cssid: Int(id.cssid))],
            channelPaths: paths.filter { $0.id.cssid == id.cssid }.map { Topology.ChannelPath(id: $0.id, type: 0) },
            subchannels: [description])
        do {
            try single.validate()
        } catch {
            throw .invalidDevice(id, error.reason)
        }
        guard recordIndex[id.rawValue] == nil else { throw .subchannelInUse(id) }
        let device = DeviceID(cssid: id.cssid, ssid: id.ssid, devno: UInt16(devno))
        guard deviceIndex[device.rawValue] == nil else { throw .deviceExists(device) }

        let record = makeRecord(description)
        let position = subchannelIndex(atOrAfter: id)
        shiftRecords(from: position, inserting: true)
        records.insert(record, at: position)
        recordIndex[id.rawValue] = Int32(position)
        deviceIndex[device.rawValue] = Int32(position)
        var pathChanges: [PathChange] = []
        for (slot, chpid) in description.chpids.enumerated() {
            let path = pathIndex[chpid.rawValue]!
            let entry = UInt32(position) << 3 | UInt32(slot)
            let at = firstMember(atOrAfter: entry, path: path)
            members[path].insert(entry, at: at)
            let before = paths[path]
            paths[path].subchannelCount += 1
            pathChanges.append(
                PathChange(
                    before: before, after: paths[path], affected: [AffectedSubchannel(current: record, slot: slot)],
                    crws: [], crwsLost: 0))
        }
        noteOperationalPath(cssid: id.cssid, before: true, after: record.schib.pmcw.hasOperationalPathOrIsNotIO)
        redundancy.move(record, from: Self.notCounted, to: record.operationalPaths)
        deviceDelta.added[id.rawValue] = description
        return report(.added, record, pathChanges)
    }

    /// Removes a device and its subchannel: STSCH of the subchannel gives cc 3 from now on (as
    /// after QEMU's unplug), which Linux's `css_evaluate_subchannel` takes as the subchannel
    /// gone and unregisters it; the machine queues a subchannel report (`CRW.subchannelReport`).
    /// The DASD driver state of the device goes with it. The other subchannels keep their ids
    /// and their order; every index and count lets it go.
    /// - Returns: the change (`DeviceChange`), with the subchannel's last state. Cost
    ///   O(subchannels + installed paths).
    /// - Throws: `ModelError.unknownDevice`; the model is unchanged then.
    package mutating func removeDevice(_ device: DeviceID) throws(ModelError) -> DeviceChange {
        guard let found = deviceIndex[device.rawValue] else { throw .unknownDevice(device) }
        let position = Int(found)
        let record = records[position]
        var pathChanges: [PathChange] = []
        for (slot, chpid) in record.channelPaths.enumerated() {
            guard let chpid, let path = pathIndex[chpid.rawValue] else { continue }
            let entry = UInt32(position) << 3 | UInt32(slot)
            let at = firstMember(atOrAfter: entry, path: path)
            if at < members[path].count, members[path][at] == entry { members[path].remove(at: at) }
            let before = paths[path]
            paths[path].subchannelCount -= 1
            pathChanges.append(
                PathChange(
                    before: before, after: paths[path], affected: [AffectedSubchannel(current: record, slot: slot)],
                    crws: [], crwsLost: 0))
        }
        redundancy.move(record, from: record.operationalPaths, to: Self.notCounted)
        noteOperationalPath(cssid: record.id.cssid, before: record.schib.pmcw.hasOperationalPathOrIsNotIO, after: true)
        records.remove(at: position)
        recordIndex[record.id.rawValue] = nil
        deviceIndex[device.rawValue] = nil
        shiftRecords(from: position, inserting: false)
        dasdDrivers[record.id.rawValue] = nil
        if deviceDelta.added.removeValue(forKey: record.id.rawValue) == nil {
            deviceDelta.removed.insert(record.id.rawValue)
        }
        return report(.removed, record, pathChanges)
    }

    /// A state no redundancy count includes (not in use), to add a record to the counts or take
    /// it out of them with `RedundancyCounts.move`.
    static let notCounted = OperationalPaths(mask: 0, inUse: false, isDevice: false)

    /// Queues the subchannel report of `record` and completes the change.
    private mutating func report(_ kind: DeviceChange.Kind, _ record: Subchannel, _ pathChanges: [PathChange])
        -> DeviceChange
    {
        let words = CRW.subchannelReport(record.id, chained: multipleCSSEnabled || record.id.ssid != 0)
        let queued = queueReport(words, cssid: record.id.cssid)
        var changes = pathChanges
        if let first = changes.first {
            changes[0] = PathChange(
                before: first.before, after: first.after, affected: first.affected, crws: queued,
                crwsLost: words.count - queued.count)
        }
        return DeviceChange(
            kind: kind, subchannel: record, crws: queued, crwsLost: words.count - queued.count, pathChanges: changes)
    }

    /// The subchannel record `description` gives on this model, as `init(topology:)` makes it.
    func makeRecord(_ description: Topology.Subchannel) -> Subchannel {
        var pmcw = PMCW(pom: 0xff)
        pmcw.chars |= UInt32(description.type.rawValue) << 21
        pmcw.isEnabled = description.enabled
        pmcw.isc = UInt8(description.isc)
        pmcw.hasQDIOFacility = description.hasQDIO
        if let devno = description.devno {
            pmcw.devno = UInt16(devno)
            pmcw.deviceNumberValid = true
        }
        var slots: UInt64 = 0
        for (slot, chpid) in description.chpids.enumerated() {
            let bit = pathMaskBit(slot: slot)
            let path = paths[pathIndex[chpid.rawValue]!]
            slots |= UInt64(chpid.chpid) << UInt64(56 - 8 * slot)
            pmcw.pim |= bit
            if path.isAvailable { pmcw.pam |= bit }
            if path.vary == .online { pmcw.lpm |= bit }
        }
        pmcw.chpids = ChannelPathSlots(rawValue: slots)
        var record = Subchannel(
            id: description.id, devType: UInt16(description.devType), devModel: UInt8(description.devModel),
            cuType: UInt16(description.cuType), cuModel: UInt8(description.cuModel), schib: SCHIB(pmcw: pmcw))
        record.isOnline = description.online
        return record
    }

    /// Moves the records from `position` on by one place in the indexes and the chpids'
    /// member lists: up (`inserting`, called before a record is inserted at `position`), or
    /// down (called after the record at `position` was removed, its member entries with it).
    /// O(records after `position` + member entries after it).
    private mutating func shiftRecords(from position: Int, inserting: Bool) {
        // Inserting, the records from `position` are about to move to index + 1; removing, they
        // already sit at their new index.
        let offset = inserting ? 1 : 0
        for index in position..<records.count {
            let record = records[index]
            recordIndex[record.id.rawValue] = Int32(index + offset)
            if let device = record.deviceID { deviceIndex[device.rawValue] = Int32(index + offset) }
        }
        let firstMoved = UInt32(inserting ? position : position + 1) << 3
        for path in members.indices {
            var at = firstMember(atOrAfter: firstMoved, path: path)
            while at < members[path].count {
                if inserting { members[path][at] += 8 } else { members[path][at] -= 8 }
                at += 1
            }
        }
    }

    /// The position in `members[path]` of the first entry not below `entry`. O(log n).
    private func firstMember(atOrAfter entry: UInt32, path: Int) -> Int {
        let list = members[path]
        var low = 0
        var high = list.count
        while low < high {
            let mid = (low + high) / 2
            if list[mid] < entry { low = mid + 1 } else { high = mid }
        }
        return low
    }
}
