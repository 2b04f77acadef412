// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

// The guests as bytes and back, for the state dir's snapshot (API/resume.md "Compaction").
// Pure value conversions: StateStore does the I/O.

extension Guests {
    static let stateVersion: UInt8 = 1

    /// Every guest with its strategy, chpid map, devices (with their masks, counters and the
    /// host masks they last heard of), CRW queue, pending reports and counters. The indexes
    /// (device numbers, css and chpid use, the host bindings) are rebuilt from the devices.
    package var state: [UInt8] {
        var writer = StateWriter(capacity: 256)
        writer.put(Self.stateVersion)
        writer.put(UInt32(guests.count))
        for name in names { guests[name]!.write(to: &writer) }
        return writer.bytes
    }

    /// The guests `state` gave.
    /// - Throws: `StateCodingError` for bytes that are not such a state (the guests are then
    ///   unchanged).
    package init(state bytes: [UInt8]) throws(StateCodingError) {
        var reader = StateReader(bytes)
        let version: UInt8 = try reader.get()
        guard version == Self.stateVersion else { throw StateCodingError("guest state version \(version)") }
        var restored = Guests()
        for _ in 0..<(try reader.count(each: 8)) {
            let guest = try Guest(from: &reader)
            guard restored.guests[guest.name] == nil else { throw StateCodingError("guest \(guest.name) twice") }
            for device in guest.devices.values {
                guard let host = device.host else { continue }
                guard restored.bindings[host] == nil else {
                    throw StateCodingError("host subchannel \(host) passed through twice")
                }
                restored.bindings[host] = Binding(guest: guest.name, id: device.id)
            }
            restored.guests[guest.name] = guest
        }
        guard reader.isAtEnd else { throw StateCodingError("\(bytes.count - reader.offset) bytes after the guests") }
        self = restored
    }
}

extension Guest {
    func write(to writer: inout StateWriter) {
        writer.put(name)
        writer.put(strategy.rawValue)
        let map = chpidMap.sorted { $0.key < $1.key }
        writer.put(UInt32(map.count))
        for (guestChpid, hostChpid) in map {
            writer.put(guestChpid.rawValue)
            writer.put(hostChpid.rawValue)
        }
        writer.put(UInt32(devices.count))
        for device in sortedDevices { device.write(to: &writer) }
        crwQueue.write(to: &writer)
        writer.put(UInt32(reports.count))
        for report in reports {
            writer.put(report.chpid.rawValue)
            writer.put(UInt32(clamping: report.words))
            writer.put(UInt32(clamping: report.left))
        }
        for counter in [
            stats.hostEvents, stats.notifications, stats.crwsQueued, stats.crwsLost, stats.schibRefreshes,
            stats.guestStoreSubchannels, stats.guestStoreCRWs,
        ] {
            writer.put(UInt64(clamping: counter))
        }
    }

    init(from reader: inout StateReader) throws(StateCodingError) {
        let name = try reader.string()
        let strategyName = try reader.string()
        guard let strategy = PathEventStrategy(rawValue: strategyName) else {
            throw StateCodingError("guest \(name): strategy '\(strategyName)'")
        }
        self.init(name: name, strategy: strategy, crwCapacity: 2)
        for _ in 0..<(try reader.count(each: 4)) {
            let guestChpid = try reader.channelPathID()
            chpidMap[guestChpid] = try reader.channelPathID()
        }
        for _ in 0..<(try reader.count(each: 20)) {
            let device = try GuestDevice(from: &reader)
            guard devices[device.id] == nil else { throw StateCodingError("guest \(name): \(device.id) twice") }
            insert(device)
        }
        crwQueue = try CRWQueue(from: &reader)
        for _ in 0..<(try reader.count(each: 10)) {
            let chpid = try reader.channelPathID()
            reports.append((chpid, Int(try reader.get(UInt32.self)), Int(try reader.get(UInt32.self))))
        }
        var counters: [Int] = []
        for _ in 0..<7 { counters.append(Int(clamping: try reader.get(UInt64.self))) }
        stats.hostEvents = counters[0]
        stats.notifications = counters[1]
        stats.crwsQueued = counters[2]
        stats.crwsLost = counters[3]
        stats.schibRefreshes = counters[4]
        stats.guestStoreSubchannels = counters[5]
        stats.guestStoreCRWs = counters[6]
    }
}

extension GuestDevice {
    func write(to writer: inout StateWriter) {
        writer.put(id.rawValue)
        writer.put(devno)
        switch kind {
        case .virtio(let cuModel):
            writer.put(UInt8(0))
            writer.put(UInt32(cuModel))
        case .passthrough(let host):
            writer.put(UInt8(1))
            writer.put(host.rawValue)
        }
        writer.put(UInt8(chpids.count))
        for chpid in chpids { writer.put(chpid.rawValue) }
        for mask in [pam, pom, pnom, lpum, lpm, hostSeen.pam, hostSeen.pom, hostSeen.pnom] { writer.put(mask) }
        writer.put(UInt64(clamping: unobserved))
        writer.put(UInt64(clamping: untold))
    }

    init(from reader: inout StateReader) throws(StateCodingError) {
        let id = try reader.subchannelID()
        let devno: UInt16 = try reader.get()
        let tag: UInt8 = try reader.get()
        let kind: Kind
        switch tag {
        case 0: kind = .virtio(cuModel: UInt8(truncatingIfNeeded: try reader.get(UInt32.self)))
        case 1: kind = .passthrough(host: try reader.subchannelID())
        default: throw StateCodingError("guest device \(id): kind \(tag)")
        }
        let count: UInt8 = try reader.get()
        guard count <= 8 else { throw StateCodingError("guest device \(id): \(count) chpids") }
        var chpids: [ChannelPathID] = []
        for _ in 0..<count { chpids.append(try reader.channelPathID()) }
        var masks: [UInt8] = []
        for _ in 0..<8 { masks.append(try reader.get()) }
        self.init(
            id: id, devno: devno, kind: kind, chpids: chpids, pam: masks[0], pom: masks[1], pnom: masks[2],
            lpum: masks[3], lpm: masks[4])
        hostSeen.pam = masks[5]
        hostSeen.pom = masks[6]
        hostSeen.pnom = masks[7]
        unobserved = Int(clamping: try reader.get(UInt64.self))
        untold = Int(clamping: try reader.get(UInt64.self))
    }
}
