// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import QMPWire
import VFIOCCW

/// The guest and vfio-ccw commands of API/vfio.json, over `ServerState.guests` and the
/// backend's subsystem (the host).
enum VFIOCommands {
    static func register(into registry: inout CommandRegistry) {
        registry.register("query-guests") { (_, context) throws(QMPError) in
            let guests = context.server.guests
            return .array(guests.names.map { guestInfo(guests.guests[$0]!) })
        }
        registry.register("query-guest-subchannels") { (arguments, context) throws(QMPError) in
            try queryGuestSubchannels(arguments, context.server)
        }
        registry.register("guest-store-subchannel") { (arguments, context) throws(QMPError) in
            let server = context.server
            let id = try CSSCommands.subchannelID(arguments.string("subchannel")!)
            let result = try vfio { () throws(VFIOError) in
                try server.guests.storeSubchannel(of: arguments.string("guest")!, id, host: server.subsystem)
            }
            guard let schib = result.schib else { return .object([("cc", .integer(result.cc))]) }
            return .object([
                ("cc", .integer(result.cc)), ("schib", CSSCommands.schibInfo(schib)), ("raw", .string(schib.hexString)),
            ])
        }
        registry.register("guest-store-crw") { (arguments, context) throws(QMPError) in
            let server = context.server
            let result = try vfio { () throws(VFIOError) in try server.guests.storeCRW(of: arguments.string("guest")!) }
            return .object([
                ("cc", .integer(result.cc)), ("crw", .integer(Int(result.crw.rawValue))),
                ("decoded", CSSCommands.crwInfo(result.crw)),
            ])
        }
        registry.register("attach-passthrough") { (arguments, context) throws(QMPError) in
            let server = context.server
            let name = arguments.string("guest")!
            let host = try CSSCommands.subchannelID(arguments.string("host-subchannel")!, argument: "host-subchannel")
            let guestSubchannel = try arguments.string("guest-subchannel").map { (text) throws(QMPError) in
                try CSSCommands.subchannelID(text, argument: "guest-subchannel")
            }
            var chpids: [ChannelPathID]?
            if let texts = arguments.strings("guest-chpids") {
                chpids = []
                for text in texts { chpids!.append(try CSSCommands.channelPathID(text, argument: "guest-chpids")) }
            }
            let device = try vfio { () throws(VFIOError) in
                try server.guests.attachPassthrough(
                    to: name, host: host, guestSubchannel: guestSubchannel, guestChpids: chpids, in: server.subsystem)
            }
            return subchannelInfo(device, map: server.guests.guests[name]!.chpidMap)
        }
        registry.register("detach-passthrough") { (arguments, context) throws(QMPError) in
            let server = context.server
            let id = try CSSCommands.subchannelID(arguments.string("guest-subchannel")!, argument: "guest-subchannel")
            try vfio { () throws(VFIOError) in
                try server.guests.detachPassthrough(from: arguments.string("guest")!, guestSubchannel: id)
            }
            return .emptyObject()
        }
        registry.register("set-path-event-strategy") { (arguments, context) throws(QMPError) in
            let server = context.server
            let strategy = PathEventStrategy(rawValue: arguments.string("strategy")!)!
            try vfio { () throws(VFIOError) in try server.guests.setStrategy(strategy, of: arguments.string("guest")!) }
            return .emptyObject()
        }
        registry.register("query-path-event-stats") { (arguments, context) throws(QMPError) in
            let guests = context.server.guests
            var names = guests.names
            if let name = arguments.string("guest") {
                guard guests.guests[name] != nil else { throw QMPError(.deviceNotFound, VFIOError.unknownGuest(name).description) }
                names = [name]
            }
            return .array(names.map { statsInfo(guests.guests[$0]!) })
        }
    }

    /// Runs a guest operation; unknown ids are DeviceNotFound, every other refusal GenericError.
    @discardableResult
    private static func vfio<T>(_ body: () throws(VFIOError) -> T) throws(QMPError) -> T {
        do throws(VFIOError) { return try body() } catch {
            throw QMPError(error.isNotFound ? .deviceNotFound : .genericError, error.description)
        }
    }

    // MARK: Values

    private static func guestInfo(_ guest: Guest) -> JSON {
        let devices = guest.devices.values
        let passthrough = devices.count { $0.host != nil }
        return .object([
            ("name", .string(guest.name)),
            ("strategy", .string(guest.strategy.rawValue)),
            ("cssids", .array(guest.cssids.sorted().map { .integer(Int($0)) })),
            ("devices", .integer(devices.count)),
            ("passthrough", .integer(passthrough)),
            ("virtio", .integer(devices.count - passthrough)),
            ("chpid-map", .array(guest.chpidMap.keys.sorted().map { guestChpid in
                .object([
                    ("guest-chpid", .string(guestChpid.description)),
                    ("host-chpid", .string(guest.chpidMap[guestChpid]!.description)),
                ])
            })),
            ("crws-pending", .integer(guest.crwQueue.count)),
        ])
    }

    private static func subchannelInfo(_ device: GuestDevice, map: [ChannelPathID: ChannelPathID]) -> JSON {
        func slots(_ ids: [ChannelPathID]) -> JSON {
            .array((0..<8).map { $0 < ids.count ? .string(ids[$0].description) : .null })
        }
        var members: [(String, JSON)] = [
            ("subchannel", .string(device.id.description)),
            ("devno", .string(DeviceID(cssid: device.id.cssid, ssid: device.id.ssid, devno: device.devno).description)),
        ]
        switch device.kind {
        case .virtio(let cuModel):
            members += [("kind", .string("virtio")), ("chpids", slots(device.chpids)), ("cu-model", .integer(Int(cuModel)))]
        case .passthrough(let host):
            members += [
                ("kind", .string("passthrough")), ("host-subchannel", .string(host.description)),
                ("chpids", slots(device.chpids)), ("host-chpids", slots(device.chpids.compactMap { map[$0] })),
            ]
        }
        members += [
            ("pim", .integer(Int(device.pim))), ("pam", .integer(Int(device.pam))), ("pom", .integer(Int(device.pom))),
            ("lpm", .integer(Int(device.lpm))), ("pnom", .integer(Int(device.pnom))),
            ("unobserved", .integer(device.unobserved)), ("untold", .integer(device.untold)),
        ]
        return .object(members)
    }

    private static func statsInfo(_ guest: Guest) -> JSON {
        let stats = guest.stats
        let devices = guest.devices.values
        return .object([
            ("guest", .string(guest.name)),
            ("strategy", .string(guest.strategy.rawValue)),
            ("host-events", .integer(stats.hostEvents)),
            ("notifications", .integer(stats.notifications)),
            ("crws-queued", .integer(stats.crwsQueued)),
            ("crws-lost", .integer(stats.crwsLost)),
            ("crws-pending", .integer(guest.crwQueue.count)),
            ("schib-refreshes", .integer(stats.schibRefreshes)),
            ("guest-stsch", .integer(stats.guestStoreSubchannels)),
            ("guest-stcrw", .integer(stats.guestStoreCRWs)),
            ("stale-devices", .integer(devices.count { $0.unobserved > 0 })),
            ("unobserved-events", .integer(devices.reduce(0) { $0 + $1.unobserved })),
            ("untold-events", .integer(devices.reduce(0) { $0 + $1.untold })),
        ])
    }

    // MARK: query-guest-subchannels

    private static func queryGuestSubchannels(_ arguments: Arguments, _ server: ServerState) throws(QMPError) -> JSON {
        let name = arguments.string("guest")!
        guard let guest = server.guests.guests[name] else {
            throw QMPError(.deviceNotFound, VFIOError.unknownGuest(name).description)
        }
        let limit = arguments.int("limit")
        if let limit, !(1...CSSCommands.maxPage).contains(limit) {
            throw .generic("Parameter 'limit' expects 1..\(CSSCommands.maxPage)")
        }
        let start = try arguments.string("start").map { (text) throws(QMPError) in
            try CSSCommands.subchannelID(text, argument: "start")
        }
        let cssid = arguments.int("cssid")
        let ssid = arguments.int("ssid")
        let matching = guest.sortedDevices.filter { device in
            (cssid == nil || Int(device.id.cssid) == cssid) && (ssid == nil || Int(device.id.ssid) == ssid)
                && (start == nil || device.id >= start!)
        }
        let capacity = limit ?? CSSCommands.maxPage
        if matching.count > capacity && limit == nil {
            throw .generic(
                "query-guest-subchannels: more than \(CSSCommands.maxPage) subchannels match; page with 'limit' "
                    + "(at most \(CSSCommands.maxPage)) and 'start' (the reply's 'next')")
        }
        var members: [(String, JSON)] = [
            ("subchannels", .array(matching.prefix(capacity).map { subchannelInfo($0, map: guest.chpidMap) }))
        ]
        if matching.count > capacity { members.append(("next", .string(matching[capacity].id.description))) }
        return .object(members)
    }
}
