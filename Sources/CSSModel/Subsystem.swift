// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// The channel subsystem model: every css, channel path and subchannel of a machine, the CRW
/// queue, and the instructions and management operations on them.
///
/// A value type without I/O or clocks, so that it is deterministic and can be copied for a
/// what-if or a test. The layout is chosen for scale (hundreds of thousands of subchannels
/// sharing a few dozen chpids):
/// - subchannels are one flat array of `Subchannel` records in subchannel-id order, so paging
///   in id order is a binary search plus a slice;
/// - lookups by subchannel id and by device number go through hash indexes: O(1);
/// - each channel path keeps the list of (record, slot) pairs using it, in id order, so a
///   per-chpid operation touches exactly the subchannels on that chpid.
package struct Subsystem: Sendable {
    /// All subchannels, sorted by id.
    var records: [Subchannel]
    /// Subchannel id -> index in `records`.
    var recordIndex: [UInt32: Int32]
    /// Device id (cssid, ssid, devno) -> index in `records`.
    var deviceIndex: [UInt32: Int32]
    /// All channel paths, sorted by id.
    var paths: [ChannelPath]
    /// Channel path id -> index in `paths`.
    var pathIndex: [UInt16: Int]
    /// Per path (same order as `paths`): record index << 3 | slot, ascending.
    var members: [[UInt32]]
    /// Channel subsystem ids, ascending.
    package private(set) var cssids: [UInt8]
    /// CRWs lost per css.
    var lostByCSS: [UInt8: Int] = [:]
    /// Per css: I/O subchannels with no operational path (`PMCW.hasOperationalPathOrIsNotIO` false). Kept
    /// up to date by every operation that changes a mask, so that reading it costs O(1) at
    /// any size (a metrics scrape must not walk 262,144 subchannels); the tests check it
    /// against a full recount after random operations.
    var withoutOperationalPath: [UInt8: Int] = [:]
    /// Devices in use on one operational path and on none, per path and per css, kept up to
    /// date the same way (Subsystem+Redundancy.swift).
    var redundancy = RedundancyCounts()
    /// The DASD driver's own state per model DASD (subchannel id), only for devices whose state
    /// differs from the default (Subsystem+DASD.swift): a topology of DASDs costs nothing here
    /// until faults are injected.
    var dasdDrivers: [UInt32: DASDDriverState] = [:]
    /// The devices added and removed since the model was built from its topology
    /// (Subsystem+Devices.swift), which a runtime state records so that a restart on the same
    /// topology comes back with them.
    package internal(set) var deviceDelta = DeviceDelta()

    /// The machine's CRW queue.
    package internal(set) var crwQueue: CRWQueue
    /// MCSSE: channel-path reports are chained with a second word carrying the cssid.
    package var multipleCSSEnabled: Bool

    /// Builds the model from a topology, in its initial state: every installed path in PIM;
    /// PAM holds the configured paths, LPM the online ones, POM is 0xff, PNOM 0.
    /// - Parameters:
    ///   - topology: the description; it is validated first.
    ///   - crwCapacity: how many CRWs the machine queues before losing reports.
    /// - Throws: `TopologyError` from `Topology.validate()`.
    package init(topology: Topology, crwCapacity: Int = 256) throws(TopologyError) {
        try topology.validate()
        crwQueue = CRWQueue(capacity: crwCapacity)
        multipleCSSEnabled = topology.resolvedMultipleCSSEnabled
        cssids = topology.channelSubsystems.map { UInt8($0.cssid) }.sorted()

        paths = topology.channelPaths.map { path in
            ChannelPath(
                id: path.id, type: UInt8(path.type), shared: path.shared, pchid: path.pchid.map { UInt16($0) },
                vary: path.vary, configure: path.configure)
        }
        paths.sort { $0.id < $1.id }
        pathIndex = Dictionary(uniqueKeysWithValues: paths.enumerated().map { ($1.id.rawValue, $0) })
        // Per-css lookup table chpid -> path index, so building does not hash 8 times per subchannel.
        var pathTable = [Int32](repeating: -1, count: 0x10000)
        for (index, path) in paths.enumerated() { pathTable[Int(path.id.rawValue)] = Int32(index) }

        // Records in id order: sort the descriptions' order once (usually already sorted).
        let described = topology.subchannels
        var order = Array(0..<described.count)
        var sorted = true
        for position in described.indices.dropFirst() where !(described[position - 1].id < described[position].id) {
            sorted = false
            break
        }
        if !sorted {
            order.sort { described[$0].id < described[$1].id }
        }

        var records: [Subchannel] = []
        records.reserveCapacity(described.count)
        var recordIndex: [UInt32: Int32] = [:]
        recordIndex.reserveCapacity(described.count)
        var deviceIndex: [UInt32: Int32] = [:]
        deviceIndex.reserveCapacity(described.count)
        var memberCounts = [Int](repeating: 0, count: paths.count)
        for position in order {
            for chpid in described[position].chpids { memberCounts[Int(pathTable[Int(chpid.rawValue)])] += 1 }
        }
        var members: [[UInt32]] = memberCounts.map { count in
            var list: [UInt32] = []
            list.reserveCapacity(count)
            return list
        }

        // Per path number: whether it goes into PAM and into LPM, read once per path.
        let available = paths.map(\.isAvailable)
        let online = paths.map { $0.vary == .online }
        for position in order {
            let sch = described[position]
            let index = records.count
            var pmcw = PMCW(pom: 0xff)
            pmcw.chars |= UInt32(sch.type.rawValue) << 21  // st
            pmcw.isEnabled = sch.enabled
            pmcw.isc = UInt8(sch.isc)
            pmcw.hasQDIOFacility = sch.type == .io && sch.hasQDIO
            if let devno = sch.devno {
                pmcw.devno = UInt16(devno)
                pmcw.deviceNumberValid = true
                deviceIndex[DeviceID(cssid: sch.id.cssid, ssid: sch.id.ssid, devno: UInt16(devno)).rawValue] =
                    Int32(index)
            }
            var pim: UInt8 = 0
            var pam: UInt8 = 0
            var lpm: UInt8 = 0
            var slots: UInt64 = 0
            let chpids = sch.chpids
            for slot in 0..<chpids.count {
                let chpid = chpids[slot]
                let bit: UInt8 = 0x80 >> UInt8(slot)
                let pathNumber = Int(pathTable[Int(chpid.rawValue)])
                slots |= UInt64(chpid.chpid) << UInt64(56 - 8 * slot)
                pim |= bit
                if available[pathNumber] { pam |= bit }
                if online[pathNumber] { lpm |= bit }
                members[pathNumber].append(UInt32(index) << 3 | UInt32(slot))
            }
            pmcw.pim = pim
            pmcw.pam = pam
            pmcw.lpm = lpm
            pmcw.chpids = ChannelPathSlots(rawValue: slots)
            var record = Subchannel(
                id: sch.id, devType: UInt16(sch.devType), devModel: UInt8(sch.devModel),
                cuType: UInt16(sch.cuType), cuModel: UInt8(sch.cuModel), schib: SCHIB(pmcw: pmcw))
            record.isOnline = sch.online
            records.append(record)
            recordIndex[sch.id.rawValue] = Int32(index)
        }
        for index in paths.indices { paths[index].subchannelCount = members[index].count }
        for record in records where !record.schib.pmcw.hasOperationalPathOrIsNotIO {
            withoutOperationalPath[record.id.cssid, default: 0] += 1
        }
        self.records = records
        self.recordIndex = recordIndex
        self.deviceIndex = deviceIndex
        self.members = members
        redundancy = RedundancyCounts(records: records, paths: paths)
    }

    // MARK: Lookups

    /// All subchannels in subchannel-id order.
    package var subchannels: [Subchannel] { records }

    /// The subchannel with this id, in O(1).
    package func subchannel(_ id: SubchannelID) -> Subchannel? {
        recordIndex[id.rawValue].map { records[Int($0)] }
    }

    /// The subchannel whose device has this bus id, in O(1).
    package func subchannel(device: DeviceID) -> Subchannel? {
        deviceIndex[device.rawValue].map { records[Int($0)] }
    }

    /// The position in `subchannels` of the first subchannel whose id is `id` or later: where
    /// a page that starts at `id` begins. O(log n).
    package func subchannelIndex(atOrAfter id: SubchannelID) -> Int {
        var low = 0
        var high = records.count
        while low < high {
            let mid = (low + high) / 2
            if records[mid].id < id { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// All channel paths in id order.
    package var channelPaths: [ChannelPath] { paths }

    /// The channel path with this id, in O(1).
    package func channelPath(_ id: ChannelPathID) -> ChannelPath? {
        pathIndex[id.rawValue].map { paths[$0] }
    }

    /// The subchannels that have `chpid` installed, in id order; empty for an unknown chpid.
    package func subchannels(using chpid: ChannelPathID) -> PathMembers {
        guard let path = pathIndex[chpid.rawValue] else { return PathMembers(records: records, entries: []) }
        return PathMembers(records: records, entries: members[path])
    }

    /// Counts for one css (QMP `query-css`).
    package func summary(cssid: UInt8) -> CSSSummary {
        let first = subchannelIndex(atOrAfter: SubchannelID(cssid: cssid, ssid: 0, schno: 0))
        let end =
            cssid == 0xff
            ? records.count : subchannelIndex(atOrAfter: SubchannelID(cssid: cssid + 1, ssid: 0, schno: 0))
        return CSSSummary(
            cssid: cssid, subchannels: end - first, channelPaths: paths.count { $0.id.cssid == cssid },
            crwsQueued: crwQueue.pendingCount(cssid: cssid), crwsLost: lostByCSS[cssid, default: 0])
    }

    /// The subchannels of css `cssid` that have no operational path left: no bit set in
    /// PIM & PAM & POM & LPM, the condition that takes a DASD down. O(1): maintained by the
    /// operations that change masks (the initial count is taken when the model is built).
    package func subchannelsWithoutOperationalPath(cssid: UInt8) -> Int {
        withoutOperationalPath[cssid, default: 0]
    }

    /// Counts the subchannels without an operational path by walking every one: O(subchannels).
    /// The reference the maintained count (`subchannelsWithoutOperationalPath`) is tested against.
    package func recountSubchannelsWithoutOperationalPath(cssid: UInt8) -> Int {
        records.count { $0.id.cssid == cssid && !$0.schib.pmcw.hasOperationalPathOrIsNotIO }
    }

    /// Records that a subchannel of `cssid` went from having an operational path (`before`)
    /// to `after`.
    @inline(__always)
    mutating func noteOperationalPath(cssid: UInt8, before: Bool, after: Bool) {
        guard before != after else { return }
        withoutOperationalPath[cssid, default: 0] += after ? -1 : 1
    }

    /// An estimate of the heap bytes the model's storage takes (records, indexes, member
    /// lists, channel paths), from capacities and strides; the CRW queue is not counted.
    /// Used to hold the 256-bytes-per-subchannel budget in tests and benchmarks.
    package var storageBytes: Int {
        // Native dictionaries keep buckets at most 3/4 full, in a power-of-two table, plus
        // one metadata bit per bucket.
        func dictionaryBytes<K, V>(_ dictionary: [K: V]) -> Int {
            guard dictionary.capacity > 0 else { return 0 }
            var buckets = 1
            while buckets * 3 / 4 < dictionary.capacity { buckets *= 2 }
            return buckets * (MemoryLayout<K>.stride + MemoryLayout<V>.stride) + buckets / 8
        }
        return records.capacity * MemoryLayout<Subchannel>.stride
            + dictionaryBytes(recordIndex) + dictionaryBytes(deviceIndex) + dictionaryBytes(pathIndex)
            + paths.capacity * MemoryLayout<ChannelPath>.stride
            + members.reduce(members.capacity * MemoryLayout<[UInt32]>.stride) { $0 + 32 + $1.capacity * 4 }
            + redundancy.storageBytes
    }

    // MARK: Instructions

    /// STSCH: cc 0 and the SCHIB, or cc 3 (not operational) for a subchannel that does not exist.
    package func storeSubchannel(_ id: SubchannelID) -> StoreSubchannelResult {
        guard let index = recordIndex[id.rawValue] else { return StoreSubchannelResult(cc: 3, schib: nil) }
        return StoreSubchannelResult(cc: 0, schib: records[Int(index)].schib)
    }

    /// MSCH: copies the program-modifiable fields of `schib` into the subchannel.
    ///
    /// Checks in the architected order (as QEMU's ioinst_handle_msch and css_do_msch do):
    /// reserved bits (PMCW flags 0xc300, characteristics 0xff1ffff8) are an operand exception;
    /// then no such subchannel -> cc 3; DNV = 0 -> cc 0 with nothing changed; status pending ->
    /// cc 1; a start/halt/clear function in progress -> cc 2. Otherwise cc 0 and intparm,
    /// ISC, ENA, LM, MME, MP, LPM, MBI, POM, MBFC, CSENSE and MBA take the operand's values.
    /// LPM bits of paths that are not installed are dropped: they could never select a path.
    ///
    /// QF (0x8000, the QDIO facility) is the machine's and never changes. The PoP lists bit 0
    /// among the bits that must be zero, and so it is for a subchannel without QDIO; but Linux
    /// enables a QDIO subchannel (qeth, zfcp) by passing the PMCW it stored, QF included, back to
    /// MSCH (`cio_commit_config`), so for a subchannel that has the facility QF in the operand
    /// is accepted and ignored. Clearing it in the operand does not remove the facility either.
    /// - Throws: `ProgramInterruption.operand` for reserved bits.
    package mutating func modifySubchannel(_ id: SubchannelID, schib: SCHIB) throws(ProgramInterruption)
        -> ModifySubchannelResult
    {
        let flags = schib.pmcw.flags
        let hasQDIO = recordIndex[id.rawValue].map { records[Int($0)].schib.pmcw.hasQDIOFacility } ?? false
        let reserved = hasQDIO ? PMCW.Flags.reservedForModify & ~PMCW.Flags.qdio : PMCW.Flags.reservedForModify
        if flags & reserved != 0 {
            throw .operand(reason: "reserved PMCW flag bits 0x\(Hex.string(flags & reserved, width: 4)) are set")
        }
        if schib.pmcw.chars & PMCW.Characteristics.reserved != 0 {
            let bits = Hex.string(schib.pmcw.chars & PMCW.Characteristics.reserved, width: 8)
            throw .operand(reason: "reserved PMCW characteristics bits 0x\(bits) are set")
        }
        guard let index = recordIndex[id.rawValue].map({ Int($0) }) else {
            return ModifySubchannelResult(cc: 3, changed: false)
        }
        let current = records[index].schib
        let paths = records[index].operationalPaths
        guard current.pmcw.deviceNumberValid else { return ModifySubchannelResult(cc: 0, changed: false) }
        if current.scsw.isStatusPending { return ModifySubchannelResult(cc: 1, changed: false) }
        if current.scsw.isBusy { return ModifySubchannelResult(cc: 2, changed: false) }

        var updated = current
        updated.pmcw.intparm = schib.pmcw.intparm
        updated.pmcw.flags = current.pmcw.flags & ~PMCW.Flags.modifiable | flags & PMCW.Flags.modifiable
        updated.pmcw.lpm = schib.pmcw.lpm & current.pmcw.pim
        updated.pmcw.mbi = schib.pmcw.mbi
        updated.pmcw.pom = schib.pmcw.pom
        updated.pmcw.chars =
            current.pmcw.chars & ~PMCW.Characteristics.modifiable | schib.pmcw.chars & PMCW.Characteristics.modifiable
        updated.mba = schib.mba
        records[index].schib = updated
        redundancy.move(records[index], from: paths, to: records[index].operationalPaths)
        noteOperationalPath(
            cssid: id.cssid, before: current.pmcw.hasOperationalPathOrIsNotIO,
            after: updated.pmcw.hasOperationalPathOrIsNotIO)
        return ModifySubchannelResult(cc: 0, changed: updated != current)
    }

    /// STCRW: the oldest pending CRW (cc 0), or a zero word (cc 1) when none is pending.
    package mutating func storeChannelReportWord() -> StoreCRWResult { crwQueue.store() }

    /// Sets a subchannel's SCSW, standing in for the I/O activity this model does not perform
    /// (a start function in progress, status pending), so that MSCH's cc 1 and cc 2 and a
    /// later I/O layer can be exercised. The PNO bit is kept: it belongs to path handling.
    /// - Throws: `ModelError.unknownSubchannel`.
    package mutating func setStatus(_ scsw: SCSW, of id: SubchannelID) throws(ModelError) {
        guard let index = recordIndex[id.rawValue].map({ Int($0) }) else { throw .unknownSubchannel(id) }
        let pno = records[index].schib.scsw.pathNotOperational
        records[index].schib.scsw = scsw
        records[index].schib.scsw.pathNotOperational = pno
    }

    /// Queues a report, counting it as lost for its css if it does not fit.
    /// - Returns: the CRWs queued (empty if lost).
    mutating func queueReport(_ report: [CRW], cssid: UInt8) -> [CRW] {
        if crwQueue.enqueue(report, cssid: cssid) { return report }
        lostByCSS[cssid, default: 0] += report.count
        return []
    }
}

/// What STSCH returns: cc 0 and the SCHIB, or cc 3 and no SCHIB.
package struct StoreSubchannelResult: Hashable, Sendable {
    package let cc: Int
    package let schib: SCHIB?

    package init(cc: Int, schib: SCHIB?) {
        self.cc = cc
        self.schib = schib
    }
}

/// What MSCH returns when it does not raise a program exception.
package struct ModifySubchannelResult: Hashable, Sendable {
    package let cc: Int
    /// Whether any field of the SCHIB changed.
    package let changed: Bool
}

/// Per-css counts (QMP `query-css`).
package struct CSSSummary: Hashable, Sendable {
    package let cssid: UInt8
    package let subchannels: Int
    package let channelPaths: Int
    /// CRWs pending in the queue that report on this css.
    package let crwsQueued: Int
    /// CRWs about this css lost to queue overflow.
    package let crwsLost: Int
}

/// The subchannels using one channel path, in id order, without copying them: a view over
/// the model's arrays (copy-on-write keeps it stable if the model changes afterwards).
package struct PathMembers: RandomAccessCollection, Sendable {
    let records: [Subchannel]
    let entries: [UInt32]

    package var startIndex: Int { 0 }
    package var endIndex: Int { entries.count }
    package subscript(position: Int) -> Subchannel { records[Int(entries[position] >> 3)] }

    /// The slot the path occupies in the subchannel at `position`.
    package func slot(at position: Int) -> Int { Int(entries[position] & 7) }

    /// The subchannel at `position` as an index into `Subsystem.subchannels`, in O(1) (what
    /// `subchannelIndex(atOrAfter:)` would find by searching).
    package func recordIndex(at position: Int) -> Int { Int(entries[position] >> 3) }

    /// The position of the first member whose id is `id` or later. O(log n).
    package func index(atOrAfter id: SubchannelID) -> Int {
        var low = 0
        var high = entries.count
        while low < high {
            let mid = (low + high) / 2
            if records[Int(entries[mid] >> 3)].id < id { low = mid + 1 } else { high = mid }
        }
        return low
    }
}
