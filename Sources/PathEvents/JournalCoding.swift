// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import VFIOCCW

// A journaled change as bytes and back: one row of the state dir's `journal` table
// (API/resume.md). Pure value conversions: StateStore does the I/O.

extension JournaledPathChange {
    static let encodingVersion: UInt8 = 1

    /// The change, its sequence number, kind, time and guest changes: 1 to 17 bytes per affected
    /// subchannel plus about 60 bytes, and about 40 per guest change.
    package var encoded: [UInt8] {
        var writer = StateWriter(capacity: 96 + change.affected.count * 2)
        writer.put(Self.encodingVersion)
        writer.put(sequence)
        writer.put(Int64(time.seconds))
        writer.put(Int64(time.microseconds))
        writer.put(kind.rawValue)
        change.write(to: &writer)
        writer.put(UInt32(guests.count))
        for guest in guests {
            writer.put(guest.guest)
            writer.put(guest.guestChpid.rawValue)
            writer.put(guest.hostChpid.rawValue)
            writer.put(guest.change.rawValue)
            writer.put(guest.strategy.rawValue)
            writer.put(UInt32(clamping: guest.devices))
            writer.put(UInt32(clamping: guest.visible))
            writer.put(UInt32(clamping: guest.notifications))
            writer.put(guest.crw != nil)
            writer.put(guest.crw?.rawValue ?? 0)
            writer.put(guest.crwLost)
        }
        // Host guests (linux-sysfs), then the scenario step, and only when there are any: a
        // record written before they existed decodes as one without them (the host guests'
        // count is written, maybe 0, when a cause follows).
        if !hostGuests.isEmpty || cause != nil {
            writer.put(UInt32(hostGuests.count))
            for guest in hostGuests {
                writer.put(guest.guest)
                writer.put(Int64(guest.pid ?? -1))
                writer.put(guest.hostChpid.rawValue)
                writer.put(guest.change.rawValue)
                writer.put(UInt32(clamping: guest.withoutPath))
                writer.put(UInt32(guest.devices.count))
                for device in guest.devices {
                    writer.put(device.subchannel.rawValue)
                    writer.put(device.mdev)
                    for mask in [device.pim, device.pam, device.pom, device.lpm, device.pnom] { writer.put(mask) }
                }
            }
        }
        if let cause {
            writer.put(cause.scenario)
            writer.put(cause.step)
        }
        return writer.bytes
    }

    /// Decodes `encoded`.
    /// - Throws: `StateCodingError` for bytes that are not a journaled change.
    package init(encoded bytes: [UInt8]) throws(StateCodingError) {
        var reader = StateReader(bytes)
        let version: UInt8 = try reader.get()
        guard version == Self.encodingVersion else { throw StateCodingError("journal record version \(version)") }
        let sequence: UInt64 = try reader.get()
        let seconds = Int(try reader.get(Int64.self))
        let microseconds = Int(try reader.get(Int64.self))
        let kindName = try reader.string()
        guard let kind = PathEventChange(rawValue: kindName) else {
            throw StateCodingError("change \(sequence): kind '\(kindName)'")
        }
        let change = try PathChange(from: &reader)
        var guests: [GuestPathChange] = []
        for _ in 0..<(try reader.count(each: 30)) {
            let name = try reader.string()
            let guestChpid = try reader.channelPathID()
            let hostChpid = try reader.channelPathID()
            let changeName = try reader.string()
            let strategyName = try reader.string()
            guard let guestKind = PathEventChange(rawValue: changeName),
                let strategy = PathEventStrategy(rawValue: strategyName)
            else { throw StateCodingError("change \(sequence): guest \(name): '\(changeName)'/'\(strategyName)'") }
            let devices = Int(try reader.get(UInt32.self))
            let visible = Int(try reader.get(UInt32.self))
            let notifications = Int(try reader.get(UInt32.self))
            let hasCRW = try reader.flag()
            let crw: UInt32 = try reader.get()
            guests.append(
                GuestPathChange(
                    guest: name, guestChpid: guestChpid, hostChpid: hostChpid, change: guestKind, strategy: strategy,
                    devices: devices, visible: visible, notifications: notifications,
                    crw: hasCRW ? CRW(rawValue: crw) : nil, crwLost: try reader.flag()))
        }
        var hostGuests: [HostGuestPathChange] = []
        if !reader.isAtEnd {
            for _ in 0..<(try reader.count(each: 20)) {
                let name = try reader.string()
                let pid = Int(try reader.get(Int64.self))
                let hostChpid = try reader.channelPathID()
                let changeName = try reader.string()
                guard let guestKind = PathEventChange(rawValue: changeName) else {
                    throw StateCodingError("change \(sequence): host guest \(name): '\(changeName)'")
                }
                let withoutPath = Int(try reader.get(UInt32.self))
                var devices: [HostGuestDevice] = []
                for _ in 0..<(try reader.count(each: 14)) {
                    let subchannel = try reader.subchannelID()
                    let mdev = try reader.string()
                    let masks = try reader.raw(5)
                    let m = Array(masks)
                    devices.append(
                        HostGuestDevice(
                            subchannel: subchannel, mdev: mdev, pim: m[0], pam: m[1], pom: m[2], lpm: m[3], pnom: m[4]))
                }
                hostGuests.append(
                    HostGuestPathChange(
                        guest: name, pid: pid < 0 ? nil : pid, hostChpid: hostChpid, change: guestKind,
                        devices: devices, withoutPath: withoutPath))
            }
        }
        var cause: ScenarioCause?
        if !reader.isAtEnd {
            cause = ScenarioCause(scenario: try reader.string(), step: try reader.string())
        }
        guard reader.isAtEnd else { throw StateCodingError("change \(sequence): bytes after the record") }
        self.init(
            sequence: sequence, change: change, kind: kind,
            time: EventTime(seconds: seconds, microseconds: microseconds),
            guests: guests, hostGuests: hostGuests, cause: cause)
    }
}
