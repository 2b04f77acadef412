// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

// Pure value conversions of the model's runtime state to bytes and back, for the state dir
// (`--state-dir`, API/resume.md): the snapshot that compaction writes, and the journal rows.
// No I/O here: StateStore reads and writes the bytes.

/// Bytes that cannot be decoded back into a value: truncated, an unknown tag, or a state of
/// another topology. The message names what was wrong.
package struct StateCodingError: Error, CustomStringConvertible, Equatable, Sendable {
    package let description: String

    package init(_ description: String) { self.description = description }
}

/// Appends big-endian integers, flags and short strings.
package struct StateWriter: Sendable {
    package private(set) var bytes: [UInt8] = []

    package init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    package mutating func put<T: FixedWidthInteger>(_ value: T) {
        var shift = T.bitWidth - 8
        while shift >= 0 {
            bytes.append(UInt8(truncatingIfNeeded: value >> shift))
            shift -= 8
        }
    }

    package mutating func put(_ flag: Bool) { bytes.append(flag ? 1 : 0) }

    package mutating func put(_ byte: UInt8) { bytes.append(byte) }

    /// A string of at most 65,535 UTF-8 bytes, after its length.
    package mutating func put(_ text: String) {
        let utf8 = Array(text.utf8.prefix(0xffff))
        put(UInt16(utf8.count))
        bytes += utf8
    }

    package mutating func put(_ raw: [UInt8]) { bytes += raw }
}

/// Reads what `StateWriter` wrote; every read is bounds-checked (corrupt bytes throw, never trap).
package struct StateReader {
    private let bytes: [UInt8]
    package private(set) var offset = 0

    package init(_ bytes: [UInt8]) { self.bytes = bytes }

    package var isAtEnd: Bool { offset == bytes.count }

    package mutating func get<T: FixedWidthInteger>(_: T.Type = T.self) throws(StateCodingError) -> T {
        let width = T.bitWidth / 8
        guard bytes.count - offset >= width else {
            throw StateCodingError("truncated at byte \(offset) of \(bytes.count)")
        }
        var value: T = 0
        for index in offset..<(offset + width) { value = value << 8 | T(bytes[index]) }
        offset += width
        return value
    }

    package mutating func flag() throws(StateCodingError) -> Bool {
        let byte: UInt8 = try get()
        guard byte <= 1 else { throw StateCodingError("byte \(offset - 1) is \(byte), not a flag") }
        return byte == 1
    }

    package mutating func string() throws(StateCodingError) -> String {
        let count = Int(try get(UInt16.self))
        return String(decoding: try raw(count), as: UTF8.self)
    }

    package mutating func raw(_ count: Int) throws(StateCodingError) -> ArraySlice<UInt8> {
        guard count >= 0, bytes.count - offset >= count else {
            throw StateCodingError("truncated at byte \(offset) of \(bytes.count)")
        }
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }

    package mutating func subchannelID() throws(StateCodingError) -> SubchannelID {
        let raw: UInt32 = try get()
        return SubchannelID(
            cssid: UInt8(raw >> 24), ssid: UInt8(truncatingIfNeeded: raw >> 16), schno: UInt16(truncatingIfNeeded: raw))
    }

    package mutating func channelPathID() throws(StateCodingError) -> ChannelPathID {
        let raw: UInt16 = try get()
        return ChannelPathID(cssid: UInt8(raw >> 8), chpid: UInt8(truncatingIfNeeded: raw))
    }

    /// A count of items that each take at least `minimum` bytes, checked against what is left,
    /// so that a corrupt count cannot make a reader reserve gigabytes.
    package mutating func count(each minimum: Int) throws(StateCodingError) -> Int {
        let count = Int(try get(UInt32.self))
        guard count * max(minimum, 1) <= bytes.count - offset else {
            throw StateCodingError("a count of \(count) at byte \(offset - 4) exceeds the \(bytes.count) bytes")
        }
        return count
    }
}

/// FNV-1a, 64 bits: the checksum a snapshot is stored with (a torn or edited blob is refused).
package func stateChecksum(_ bytes: [UInt8]) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
        hash ^= UInt64(byte)
        hash = hash &* 0x0000_0100_0000_01b3
    }
    return hash
}

extension AffectedSubchannel {
    /// The slot, the six masks and PNO: 8 bytes. No temporary arrays: a change of a chpid
    /// shared by 65,536 subchannels writes this inside the commit its reply waits for.
    func writeMasks(to writer: inout StateWriter) {
        writer.put(UInt8(slot))
        writer.put(pim)
        writer.put(lpm)
        writer.put(pam)
        writer.put(pom)
        writer.put(pnom)
        writer.put(lpum)
        writer.put(pathNotOperational)
    }

    init(id: SubchannelID, device: DeviceID?, masksFrom reader: inout StateReader) throws(StateCodingError) {
        let slot: UInt8 = try reader.get()
        guard slot < 8 else { throw StateCodingError("slot \(slot) of subchannel \(id)") }
        self.init(
            id: id, device: device, slot: Int(slot), pim: try reader.get(), lpm: try reader.get(),
            pam: try reader.get(), pom: try reader.get(), pnom: try reader.get(), lpum: try reader.get(),
            pathNotOperational: try reader.flag())
    }
}

extension ChannelPath {
    package func write(to writer: inout StateWriter) {
        writer.put(id.rawValue)
        writer.put(type)
        writer.put(shared)
        writer.put(pchid != nil)
        writer.put(pchid ?? 0)
        writer.put(vary == .online)
        writer.put(UInt8(configure.rawValue))
        writer.put(UInt8(PathCondition.allCases.firstIndex(of: condition)!))
        writer.put(UInt32(clamping: subchannelCount))
    }

    package init(from reader: inout StateReader) throws(StateCodingError) {
        let id = try reader.channelPathID()
        let type: UInt8 = try reader.get()
        let shared = try reader.flag()
        let hasPCHID = try reader.flag()
        let pchid: UInt16 = try reader.get()
        let online = try reader.flag()
        let configureRaw: UInt8 = try reader.get()
        let conditionIndex: UInt8 = try reader.get()
        let count: UInt32 = try reader.get()
        guard let configure = ConfigureState(rawValue: Int(configureRaw)),
            Int(conditionIndex) < PathCondition.allCases.count
        else { throw StateCodingError("channel path \(id): state \(configureRaw)/\(conditionIndex) unknown") }
        self.init(
            id: id, type: type, shared: shared, pchid: hasPCHID ? pchid : nil, vary: online ? .online : .offline,
            configure: configure, condition: PathCondition.allCases[Int(conditionIndex)], subchannelCount: Int(count))
    }
}

extension PathChange {
    /// Flags of an encoded affected subchannel: what the previous entry predicts.
    static let nextID: UInt8 = 0x01
    static let nextDevice: UInt8 = 0x02
    static let noDevice: UInt8 = 0x04
    static let sameMasks: UInt8 = 0x08

    package func write(to writer: inout StateWriter) {
        before.write(to: &writer)
        after.write(to: &writer)
        writer.put(UInt32(affected.count))
        // Each entry after a flags byte, with what the previous entry predicts left out: a
        // vary of a chpid shared by 65,536 consecutive subchannels on consecutive devices, all
        // with the same masks, takes 1 byte a subchannel instead of 17.
        var previous: AffectedSubchannel?
        for subchannel in affected {
            var flags: UInt8 = 0
            if let previous {
                if subchannel.id.rawValue == previous.id.rawValue &+ 1 { flags |= Self.nextID }
                if let device = subchannel.device, let before = previous.device,
                    device.rawValue == before.rawValue &+ 1
                {
                    flags |= Self.nextDevice
                }
                if subchannel.slot == previous.slot && subchannel.pim == previous.pim && subchannel.lpm == previous.lpm
                    && subchannel.pam == previous.pam && subchannel.pom == previous.pom
                    && subchannel.pnom == previous.pnom && subchannel.lpum == previous.lpum
                    && subchannel.pathNotOperational == previous.pathNotOperational
                {
                    flags |= Self.sameMasks
                }
            }
            if subchannel.device == nil { flags |= Self.noDevice }
            writer.put(flags)
            if flags & Self.nextID == 0 { writer.put(subchannel.id.rawValue) }
            if flags & (Self.nextDevice | Self.noDevice) == 0 { writer.put(subchannel.device!.rawValue) }
            if flags & Self.sameMasks == 0 { subchannel.writeMasks(to: &writer) }
            previous = subchannel
        }
        writer.put(UInt32(crws.count))
        for crw in crws { writer.put(crw.rawValue) }
        writer.put(UInt32(clamping: crwsLost))
    }

    package init(from reader: inout StateReader) throws(StateCodingError) {
        let before = try ChannelPath(from: &reader)
        let after = try ChannelPath(from: &reader)
        guard before.id == after.id else { throw StateCodingError("a change of \(before.id) ends on \(after.id)") }
        let affectedCount = try reader.count(each: 1)
        var affected: [AffectedSubchannel] = []
        affected.reserveCapacity(affectedCount)
        for _ in 0..<affectedCount {
            let flags: UInt8 = try reader.get()
            let previous = affected.last
            guard flags & ~(Self.nextID | Self.nextDevice | Self.sameMasks | Self.noDevice) == 0,
                previous != nil || flags & (Self.nextID | Self.nextDevice | Self.sameMasks) == 0,
                flags & Self.nextDevice == 0 || (flags & Self.noDevice == 0 && previous?.device != nil)
            else { throw StateCodingError("affected subchannel \(affected.count): flags \(flags)") }
            let id: SubchannelID
            if flags & Self.nextID != 0 {
                let raw = previous!.id.rawValue &+ 1
                id = SubchannelID(
                    cssid: UInt8(raw >> 24), ssid: UInt8(truncatingIfNeeded: raw >> 16),
                    schno: UInt16(truncatingIfNeeded: raw))
            } else {
                id = try reader.subchannelID()
            }
            var device: DeviceID?
            if flags & Self.noDevice == 0 {
                let raw = flags & Self.nextDevice != 0 ? previous!.device!.rawValue &+ 1 : try reader.get(UInt32.self)
                device = DeviceID(
                    cssid: UInt8(raw >> 24), ssid: UInt8(truncatingIfNeeded: raw >> 16),
                    devno: UInt16(truncatingIfNeeded: raw))
            }
            if flags & Self.sameMasks != 0 {
                let p = previous!
                affected.append(
                    AffectedSubchannel(
                        id: id, device: device, slot: p.slot, pim: p.pim, lpm: p.lpm, pam: p.pam, pom: p.pom,
                        pnom: p.pnom, lpum: p.lpum, pathNotOperational: p.pathNotOperational))
            } else {
                affected.append(try AffectedSubchannel(id: id, device: device, masksFrom: &reader))
            }
        }
        let crwCount = try reader.count(each: 4)
        var crws: [CRW] = []
        for _ in 0..<crwCount { crws.append(CRW(rawValue: try reader.get())) }
        let lost: UInt32 = try reader.get()
        self.init(before: before, after: after, affected: affected, crws: crws, crwsLost: Int(lost))
    }
}

extension CRWQueue {
    package func write(to writer: inout StateWriter) {
        writer.put(UInt32(clamping: capacity))
        writer.put(UInt32(count))
        for entry in entries[head...] {
            writer.put(entry.crw.rawValue)
            writer.put(entry.cssid)
        }
        writer.put(overflowPending)
        writer.put(UInt64(lostCount))
    }

    package init(from reader: inout StateReader) throws(StateCodingError) {
        let capacity = Int(try reader.get(UInt32.self))
        guard capacity >= 2 else { throw StateCodingError("a CRW queue of capacity \(capacity)") }
        self.init(capacity: capacity)
        let count = try reader.count(each: 5)
        guard count <= capacity else { throw StateCodingError("\(count) CRWs in a queue of \(capacity)") }
        for _ in 0..<count { entries.append(Entry(crw: CRW(rawValue: try reader.get()), cssid: try reader.get())) }
        overflowPending = try reader.flag()
        lostCount = Int(try reader.get(UInt64.self))
    }
}

extension Subsystem {
    /// Snapshot format of `runtimeState`: 2 adds the DASD driver states after the lost
    /// counts; 3 the devices added and removed (`deviceDelta`) right after the version, before
    /// the layout they change. Versions 1 and 2 (no such devices) are still read.
    static let runtimeStateVersion: UInt8 = 3

    /// Everything operations change in this model, as bytes: each channel path's state, each
    /// subchannel's SCHIB (52 bytes) and observed fields, the CRW queue, lost-report counts and
    /// MCSSE, and the DASD driver states that differ from the default. The layout (which subchannels, paths and slots exist) is the topology's and is
    /// not stored beyond what `restoreRuntimeState` checks. About 62 bytes per subchannel.
    package var runtimeState: [UInt8] {
        var writer = StateWriter(capacity: 64 + paths.count * 16 + records.count * 62)
        writer.put(Self.runtimeStateVersion)
        deviceDelta.write(to: &writer)
        writer.put(multipleCSSEnabled)
        writer.put(UInt32(paths.count))
        for path in paths { path.write(to: &writer) }
        writer.put(UInt32(records.count))
        for record in records {
            writer.put(record.id.rawValue)
            writer.put(record.schib.bytes)
            writer.put(record.verifiedPathMask != nil)
            writer.put(record.verifiedPathMask ?? 0)
            writer.put(record.hasDevice)
        }
        crwQueue.write(to: &writer)
        let lost = lostByCSS.sorted { $0.key < $1.key }
        writer.put(UInt32(lost.count))
        for (cssid, count) in lost {
            writer.put(cssid)
            writer.put(UInt64(count))
        }
        let dasd = dasdDrivers.sorted { $0.key < $1.key }
        writer.put(UInt32(dasd.count))
        for (id, state) in dasd {
            writer.put(id)
            for mask in [state.nppm, state.cablepm, state.cuirpm, state.hpfpm, state.ifccpm] { writer.put(mask) }
            writer.put(state.autodisable)
            writer.put(state.threshold)
            writer.put(state.interval)
            for slot in 0..<8 {
                writer.put(state.errorCounts[slot])
                writer.put(state.lastErrorAt[slot] != nil)
                writer.put(state.lastErrorAt[slot] ?? 0)
            }
        }
        return writer.bytes
    }

    /// Sets the runtime state `runtimeState` gave, on a model of the same topology as built
    /// from it (no device added or removed yet): the devices the state says were added and
    /// removed are added and removed first (version 3), then every subchannel is checked
    /// against the state's.
    /// - Throws: `StateCodingError` for bytes that are not such a state, or that describe
    ///   other channel paths, subchannels or installed paths; the model is unchanged then.
    package mutating func restoreRuntimeState(_ bytes: [UInt8]) throws(StateCodingError) {
        var reader = StateReader(bytes)
        let version: UInt8 = try reader.get()
        guard (1...Self.runtimeStateVersion).contains(version) else {
            throw StateCodingError("model state version \(version)")
        }
        var restored = self
        if version >= 3 {
            guard deviceDelta.isEmpty else {
                throw StateCodingError("a state with added or removed devices restored on a model that has some")
            }
            try restored.apply(try DeviceDelta(from: &reader))
        }
        let paths = restored.paths
        let records = restored.records
        restored.multipleCSSEnabled = try reader.flag()
        guard try reader.count(each: 1) == paths.count else {
            throw StateCodingError("the model state has another number of channel paths than the topology")
        }
        for index in paths.indices {
            let path = try ChannelPath(from: &reader)
            guard path.id == paths[index].id, path.subchannelCount == paths[index].subchannelCount else {
                throw StateCodingError("channel path \(path.id) is not the topology's \(paths[index].id)")
            }
            restored.paths[index] = path
        }
        guard try reader.count(each: 1) == records.count else {
            throw StateCodingError("the model state has another number of subchannels than the topology")
        }
        for index in records.indices {
            let id = try reader.subchannelID()
            let schib: SCHIB
            do {
                schib = try SCHIB(bytes: try reader.raw(SCHIB.size))
            } catch let error as ControlBlockSizeError {
                throw StateCodingError(error.description)
            } catch {
                throw StateCodingError("subchannel \(id): \(error)")
            }
            let old = records[index].schib.pmcw
            guard id == records[index].id, schib.pmcw.pim == old.pim, schib.pmcw.chpids == old.chpids else {
                throw StateCodingError("subchannel \(id) is not the topology's \(records[index].id) with its paths")
            }
            restored.records[index].schib = schib
            let hasVPM = try reader.flag()
            let vpm: UInt8 = try reader.get()
            restored.records[index].verifiedPathMask = hasVPM ? vpm : nil
            restored.records[index].hasDevice = try reader.flag()
        }
        restored.crwQueue = try CRWQueue(from: &reader)
        restored.lostByCSS = [:]
        for _ in 0..<(try reader.count(each: 9)) {
            let cssid: UInt8 = try reader.get()
            restored.lostByCSS[cssid] = Int(try reader.get(UInt64.self))
        }
        restored.dasdDrivers = [:]
        if version >= 2 {
            for _ in 0..<(try reader.count(each: 122)) {
                let id = try reader.subchannelID()
                guard restored.subchannel(id)?.modelDASDDriver != nil else {
                    throw StateCodingError("DASD driver state for \(id), which is not a DASD of the topology")
                }
                var state = DASDDriverState()
                state.nppm = try reader.get()
                state.cablepm = try reader.get()
                state.cuirpm = try reader.get()
                state.hpfpm = try reader.get()
                state.ifccpm = try reader.get()
                state.autodisable = try reader.flag()
                state.threshold = try reader.get()
                state.interval = try reader.get()
                for slot in 0..<8 {
                    state.errorCounts[slot] = try reader.get()
                    let has = try reader.flag()
                    let time: Int64 = try reader.get()
                    state.lastErrorAt[slot] = has ? time : nil
                }
                restored.dasdDrivers[id.rawValue] = state
            }
        }
        guard reader.isAtEnd else { throw StateCodingError("\(bytes.count - reader.offset) bytes after the state") }
        restored.withoutOperationalPath = [:]
        for record in restored.records where !record.schib.pmcw.hasOperationalPathOrIsNotIO {
            restored.withoutOperationalPath[record.id.cssid, default: 0] += 1
        }
        restored.redundancy = RedundancyCounts(records: restored.records, paths: restored.paths)
        self = restored
    }
}
