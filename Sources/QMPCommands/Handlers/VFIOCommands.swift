// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import JSONValues
import QMPWire
import VFIOCCW

/// The guest and vfio-ccw commands of API/vfio.json, over `ServerState.guests` and the
/// backend's subsystem (the host). One static method per command, as the generated
/// `VFIOCommandsSchema` requires.
enum VFIOCommands {
    static func queryGuests(_ context: CommandContext) throws(QMPError) -> CommandOutcome {
        let guests = context.server.guests
        return .reply(.array(guests.names.map { guestInfo(guests.guests[$0]!) }))
    }

    static func guestStoreSubchannel(_ arguments: GuestStoreSubchannelArguments, _ context: CommandContext)
        throws(QMPError) -> CommandOutcome
    {
        let server = context.server
        let result = try vfio { () throws(VFIOError) in
            try server.guests.storeSubchannel(of: arguments.guest, arguments.subchannel, host: server.subsystem)
        }
        guard let schib = result.schib else { return .reply(.object([("cc", .integer(result.cc))])) }
        return .reply(
            .object([
                ("cc", .integer(result.cc)), ("schib", CSSCommands.schibInfo(schib)), ("raw", .string(schib.hexString)),
            ]))
    }

    static func guestStoreCRW(_ arguments: GuestStoreCRWArguments, _ context: CommandContext) throws(QMPError)
        -> CommandOutcome
    {
        let server = context.server
        let result = try vfio { () throws(VFIOError) in try server.guests.storeCRW(of: arguments.guest) }
        return .reply(
            .object([
                ("cc", .integer(result.cc)), ("crw", .integer(Int(result.crw.rawValue))),
                ("decoded", CSSCommands.crwInfo(result.crw)),
            ]))
    }

    static func attachPassthrough(_ arguments: AttachPassthroughArguments, _ context: CommandContext) throws(QMPError)
        -> CommandOutcome
    {
        let server = context.server
        let device = try vfio { () throws(VFIOError) in
            try server.guests.attachPassthrough(
                to: arguments.guest, host: arguments.hostSubchannel, guestSubchannel: arguments.guestSubchannel,
                guestChpids: arguments.guestChpids, in: server.subsystem)
        }
        return .reply(subchannelInfo(device, map: server.guests.guests[arguments.guest]!.chpidMap))
    }

    static func detachPassthrough(_ arguments: DetachPassthroughArguments, _ context: CommandContext) throws(QMPError)
        -> CommandOutcome
    {
        let server = context.server
        try vfio { () throws(VFIOError) in
            try server.guests.detachPassthrough(from: arguments.guest, guestSubchannel: arguments.guestSubchannel)
        }
        return .reply(.emptyObject())
    }

    static func setPathEventStrategy(_ arguments: SetPathEventStrategyArguments, _ context: CommandContext)
        throws(QMPError) -> CommandOutcome
    {
        let server = context.server
        try vfio { () throws(VFIOError) in try server.guests.setStrategy(arguments.strategy, of: arguments.guest) }
        return .reply(.emptyObject())
    }

    static func queryPathEventStats(_ arguments: QueryPathEventStatsArguments, _ context: CommandContext)
        throws(QMPError) -> CommandOutcome
    {
        let guests = context.server.guests
        var names = guests.names
        if let name = arguments.guest {
            guard guests.guests[name] != nil else {
                throw QMPError(.deviceNotFound, VFIOError.unknownGuest(name).description)
            }
            names = [name]
        }
        return .reply(.array(names.map { statsInfo(guests.guests[$0]!) }))
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
            (
                "chpid-map",
                .array(
                    guest.chpidMap.keys.sorted().map { guestChpid in
                        .object([
                            ("guest-chpid", .string(guestChpid.description)),
                            ("host-chpid", .string(guest.chpidMap[guestChpid]!.description)),
                        ])
                    })
            ),
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
            members += [
                ("kind", .string("virtio")), ("chpids", slots(device.chpids)), ("cu-model", .integer(Int(cuModel))),
            ]
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

    static func queryGuestSubchannels(_ arguments: QueryGuestSubchannelsArguments, _ context: CommandContext)
        throws(QMPError) -> CommandOutcome
    {
        let name = arguments.guest
        guard let guest = context.server.guests.guests[name] else {
            throw QMPError(.deviceNotFound, VFIOError.unknownGuest(name).description)
        }
        let (limit, start) = (arguments.limit, arguments.start)
        if let limit, !(1...CSSCommands.maxPage).contains(limit) {
            throw .generic("Parameter 'limit' expects 1..\(CSSCommands.maxPage)")
        }
        let (cssid, ssid) = (arguments.cssid, arguments.ssid)
        let matching = guest.sortedDevices.filter { device in
            (cssid == nil || device.id.cssid == cssid) && (ssid == nil || device.id.ssid == ssid)
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
        return .reply(.object(members))
    }
}
