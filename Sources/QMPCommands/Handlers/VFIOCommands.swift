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
    /// The model's guests; on linux-sysfs, also the guests the host shows holding mdevs
    /// (`hostGuestInfo`), in one name order (a model guest of the same name wins).
    static func queryGuests(_ context: CommandContext) throws(QMPError) -> CommandOutcome {
        let guests = context.server.guests
        var entries = guests.names.map { (name: $0, info: guestInfo(guests.guests[$0]!)) }
        if let view = context.server.backend.hostPassthrough {
            let subsystem = context.server.subsystem
            for guest in view.guests where guests.guests[guest.name] == nil {
                entries.append((guest.name, hostGuestInfo(guest.name, guest.subchannels, subsystem)))
            }
            entries.sort { $0.name < $1.name }
        }
        return .reply(.array(entries.map(\.info)))
    }

    static func guestStoreSubchannel(_ arguments: GuestStoreSubchannelArguments, _ context: CommandContext)
        throws(QMPError) -> CommandOutcome
    {
        let server = context.server
        let result = try vfio { () throws(VFIOError) in
            try server.guests.storeSubchannel(of: arguments.guest, arguments.subchannel, host: server.subsystem)
        }
        return .reply(CSSCommands.storeResult(result).json)
    }

    static func guestStoreCRW(_ arguments: GuestStoreCRWArguments, _ context: CommandContext) throws(QMPError)
        -> CommandOutcome
    {
        let server = context.server
        let result = try vfio { () throws(VFIOError) in try server.guests.storeCRW(of: arguments.guest) }
        return .reply(CSSCommands.storeResult(result).json)
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
        return .reply(subchannelInfo(device, map: server.guests.guests[arguments.guest]!.chpidMap).json)
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
        var info = GuestInfoReply(name: guest.name, devices: devices.count, passthrough: passthrough)
        info.strategy = guest.strategy
        info.cssids = guest.cssids.sorted().map { Int($0) }
        info.virtio = devices.count - passthrough
        info.chpidMap = guest.chpidMap.keys.sorted().map { guestChpid in
            GuestChpidMappingReply(
                guestChpid: guestChpid.description, hostChpid: guest.chpidMap[guestChpid]!.description)
        }
        info.crwsPending = guest.crwQueue.count
        return info.json
    }

    private static func subchannelInfo(_ device: GuestDevice, map: [ChannelPathID: ChannelPathID])
        -> GuestSubchannelInfoReply
    {
        func slots(_ ids: [ChannelPathID]) -> [JSON] {
            (0..<8).map { $0 < ids.count ? .string(ids[$0].description) : .null }
        }
        var info = GuestSubchannelInfoReply(
            kind: "", pim: Int(device.pim), pam: Int(device.pam), pom: Int(device.pom), pnom: Int(device.pnom))
        info.subchannel = device.id.description
        info.devno = DeviceID(cssid: device.id.cssid, ssid: device.id.ssid, devno: device.devno).description
        info.chpids = slots(device.chpids)
        info.lpm = Int(device.lpm)
        info.unobserved = device.unobserved
        info.untold = device.untold
        switch device.kind {
        case .virtio(let cuModel):
            info.kind = "virtio"
            info.cuModel = Int(cuModel)
        case .passthrough(let host):
            info.kind = "passthrough"
            info.hostSubchannel = host.description
            info.hostChpids = slots(device.chpids.compactMap { map[$0] })
        }
        return info
    }

    private static func statsInfo(_ guest: Guest) -> JSON {
        let stats = guest.stats
        let devices = guest.devices.values
        return PathEventStatsInfoReply(
            guest: guest.name, strategy: guest.strategy, hostEvents: stats.hostEvents,
            notifications: stats.notifications, crwsQueued: stats.crwsQueued, crwsLost: stats.crwsLost,
            crwsPending: guest.crwQueue.count, schibRefreshes: stats.schibRefreshes,
            guestStsch: stats.guestStoreSubchannels, guestStcrw: stats.guestStoreCRWs,
            staleDevices: devices.count { $0.unobserved > 0 },
            unobservedEvents: devices.reduce(0) { $0 + $1.unobserved },
            untoldEvents: devices.reduce(0) { $0 + $1.untold }
        ).json
    }

    // MARK: query-guest-subchannels

    static func queryGuestSubchannels(_ arguments: QueryGuestSubchannelsArguments, _ context: CommandContext)
        throws(QMPError) -> CommandOutcome
    {
        let name = arguments.guest
        let (limit, start) = (arguments.limit, arguments.start)
        if let limit, !(1...CSSCommands.maxPage).contains(limit) {
            throw .generic("Parameter 'limit' expects 1..\(CSSCommands.maxPage)")
        }
        guard let guest = context.server.guests.guests[name] else {
            if let held = context.server.backend.hostPassthrough?.guests.first(where: { $0.name == name }) {
                return .reply(hostGuestSubchannels(held.subchannels, arguments, context.server.subsystem))
            }
            throw QMPError(.deviceNotFound, VFIOError.unknownGuest(name).description)
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
        return .reply(
            GuestSubchannelPageReply(
                subchannels: matching.prefix(capacity).map { subchannelInfo($0, map: guest.chpidMap) },
                next: matching.count > capacity ? matching[capacity].id.description : nil
            ).json)
    }
}
