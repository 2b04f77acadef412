// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// Every guest and its devices, on top of a host channel subsystem that is passed in to each
/// operation (this model does not own it). Pure and deterministic, like the host model.
///
/// Costs: a host path change costs O(affected subchannels) here (a hash lookup each, to find
/// the guest device bound to it); guest STSCH and STCRW are O(1).
public struct Guests: Sendable {
    public private(set) var guests: [String: Guest] = [:]
    /// Host subchannel -> (guest, guest subchannel): a host subchannel is passed through once.
    private var bindings: [SubchannelID: Binding] = [:]

    struct Binding: Hashable, Sendable {
        let guest: String
        let id: SubchannelID
    }

    /// The guest css vfio devices land in when none is asked for: QEMU puts every device in the
    /// virtual css 0xfe unless the guest uses multiple css (hence the seed's chpid clash).
    public static let defaultPassthroughCSS: UInt8 = 0xfe

    public init() {}

    public var names: [String] { guests.keys.sorted() }

    public func guest(_ name: String) throws(VfioError) -> Guest {
        guard let guest = guests[name] else { throw .unknownGuest(name) }
        return guest
    }

    /// The guest device a host subchannel is passed through as, if any.
    public func binding(of host: SubchannelID) -> (guest: String, id: SubchannelID)? {
        bindings[host].map { ($0.guest, $0.id) }
    }

    // MARK: Guests and devices

    public mutating func addGuest(_ name: String, strategy: PathEventStrategy = .crw, crwCapacity: Int = 64)
        throws(VfioError)
    {
        let allowed = name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7a) || byte == 0x2d
                || byte == 0x5f || byte == 0x2e
        }
        guard allowed, (1...64).contains(name.utf8.count) else { throw .invalidName(name) }
        guard guests[name] == nil else { throw .duplicateGuest(name) }
        guests[name] = Guest(name: name, strategy: strategy, crwCapacity: max(2, crwCapacity))
    }

    public mutating func setStrategy(_ strategy: PathEventStrategy, of name: String) throws(VfioError) {
        guard guests[name] != nil else { throw .unknownGuest(name) }
        guests[name]!.strategy = strategy
    }

    /// Adds a virtio-ccw device on the virtual channel path fe.00.
    /// - Parameters:
    ///   - id: its guest subchannel (css fe); default the first free one in fe.0.
    ///   - devno: default the subchannel number.
    @discardableResult
    public mutating func addVirtio(to name: String, id: SubchannelID? = nil, devno: UInt16? = nil, cuModel: UInt8)
        throws(VfioError) -> GuestDevice
    {
        var guest = try guest(name)
        let chpid = Guest.virtualChannelPath
        if let id, id.cssid != chpid.cssid { throw .virtioOutsideVirtualCSS(id) }
        // A passthrough path already showing as fe.00 is the same clash, the other way round.
        if let host = guest.chpidMap[chpid] {
            throw .clashWithVirtualChpid(
                guestChpid: chpid, host: host, freeChpid: nil, freeCSS: nil)
        }
        var subchannel = SubchannelID(cssid: chpid.cssid, ssid: 0, schno: 0)
        if let id { subchannel = id } else { subchannel = try guest.firstFreeSubchannel(cssid: chpid.cssid, ssid: 0) }
        try guest.checkFree(subchannel, devno: devno ?? subchannel.schno)
        let device = GuestDevice(
            id: subchannel, devno: devno ?? subchannel.schno, kind: .virtio(cuModel: cuModel), chpids: [chpid],
            pam: 0x80, pom: 0xff, pnom: 0, lpum: 0, lpm: 0x80)
        guest.devices[subchannel] = device
        guests[name] = guest
        return device
    }

    /// Passes host subchannel `host` through to a guest.
    /// - Parameters:
    ///   - guestSubchannel: default the first free subchannel in css fe, ssid 0.
    ///   - guestChpids: one per installed host path, in slot order; default the host chpid
    ///     numbers in the guest subchannel's css (identity).
    /// - Throws: `VfioError`; nothing changes then. A path landing on the virtual chpid of the
    ///   guest's virtio devices is refused with a proposal of a free chpid and a free css.
    @discardableResult
    public mutating func attachPassthrough(
        to name: String, host hostID: SubchannelID, guestSubchannel: SubchannelID? = nil,
        guestChpids: [ChannelPathID]? = nil, in host: Subsystem
    ) throws(VfioError) -> GuestDevice {
        var guest = try guest(name)
        guard let hostSubchannel = host.subchannel(hostID) else { throw .unknownHostSubchannel(hostID) }
        if let bound = bindings[hostID] { throw .alreadyPassedThrough(hostID, guest: bound.guest, as: bound.id) }
        guard let hostDevice = hostSubchannel.deviceID else { throw .noDeviceNumber(hostID) }
        var id = SubchannelID(cssid: Self.defaultPassthroughCSS, ssid: 0, schno: 0)
        if let guestSubchannel {
            id = guestSubchannel
        } else {
            id = try guest.firstFreeSubchannel(cssid: Self.defaultPassthroughCSS, ssid: 0)
        }
        try guest.checkFree(id, devno: hostDevice.devno)

        let hostChpids = hostSubchannel.channelPaths.compactMap { $0 }
        let chpids = guestChpids ?? hostChpids.map { ChannelPathID(cssid: id.cssid, chpid: $0.chpid) }
        guard chpids.count == hostChpids.count else {
            throw .wrongChpidCount(given: chpids.count, installed: hostChpids.count, host: hostID)
        }
        let virtual = guest.virtualChpids
        for (guestChpid, hostChpid) in zip(chpids, hostChpids) {
            guard guestChpid.cssid == id.cssid else { throw .chpidOutsideCSS(guestChpid, cssid: id.cssid) }
            if virtual.contains(guestChpid) {
                throw .clashWithVirtualChpid(
                    guestChpid: guestChpid, host: hostChpid,
                    freeChpid: guest.firstFreeChpid(cssid: id.cssid, avoiding: Set(chpids)),
                    freeCSS: guest.firstCSSWithoutVirtio())
            }
            if let mapped = guest.chpidMap[guestChpid], mapped != hostChpid {
                throw .chpidMappedElsewhere(guestChpid: guestChpid, host: mapped, wanted: hostChpid)
            }
            if let shown = guest.guestChpid(for: hostChpid, cssid: id.cssid), shown != guestChpid {
                throw .hostChpidMappedElsewhere(host: hostChpid, guestChpid: shown, wanted: guestChpid)
            }
        }
        for (guestChpid, hostChpid) in zip(chpids, hostChpids) { guest.chpidMap[guestChpid] = hostChpid }
        let pmcw = hostSubchannel.schib.pmcw
        var device = GuestDevice(
            id: id, devno: hostDevice.devno, kind: .passthrough(host: hostID), chpids: chpids,
            pam: pmcw.pam, pom: pmcw.pom, pnom: pmcw.pnom, lpum: pmcw.lpum, lpm: 0)
        device.lpm = device.pim
        device.hostSeen = HostMasks(pmcw)
        guest.devices[id] = device
        guests[name] = guest
        bindings[hostID] = Binding(guest: name, id: id)
        return device
    }

    /// Ends a passthrough. Events already queued for the guest stay (its CRWs are the
    /// machine's reports, like a real one's); chpid mappings no device uses any more go.
    @discardableResult
    public mutating func detachPassthrough(from name: String, guestSubchannel id: SubchannelID) throws(VfioError)
        -> GuestDevice
    {
        var guest = try guest(name)
        guard let device = guest.devices[id], let host = device.host else { throw .unknownGuestSubchannel(guest: name, id) }
        guest.devices[id] = nil
        let used = Set(guest.devices.values.filter { $0.host != nil }.flatMap(\.chpids))
        for chpid in device.chpids where !used.contains(chpid) { guest.chpidMap[chpid] = nil }
        guests[name] = guest
        bindings[host] = nil
        return device
    }

    // MARK: Host path events

    /// Carries a host path change to every guest with a device on that path, each the way its
    /// strategy says. Call it after the host model changed (`host` is the new state).
    /// - Returns: one entry per guest and guest chpid reached, in guest-name order.
    public mutating func hostPathChanged(_ change: PathChange, host: Subsystem) -> [GuestPathChange] {
        var reached: [String: [SubchannelID]] = [:]
        for affected in change.affected {
            if let binding = bindings[affected.id] { reached[binding.guest, default: []].append(binding.id) }
        }
        // A report on a path can reach a guest whose devices' masks did not change.
        if !change.crws.isEmpty {
            for (name, guest) in guests where reached[name] == nil && guest.chpidMap.values.contains(change.chpid) {
                reached[name] = []
            }
        }
        var out: [GuestPathChange] = []
        for name in reached.keys.sorted() {
            var guest = guests[name]!
            out += guest.hostPathChanged(change, devices: reached[name]!, host: host, bindings: bindings)
            guests[name] = guest
        }
        return out
    }

    // MARK: The guest's instructions

    /// Guest STSCH: the guest's SCHIB (guest devno and chpids, the host's pam/pom/pnom/lpum as
    /// the strategy last brought them in, the guest's own lpm), or cc 3 for no such subchannel.
    public mutating func storeSubchannel(of name: String, _ id: SubchannelID, host: Subsystem) throws(VfioError)
        -> StoreSubchannelResult
    {
        guard guests[name] != nil else { throw .unknownGuest(name) }
        return guests[name]!.storeSubchannel(id, host: host)
    }

    /// Guest STCRW: pops the guest's CRW queue (cc 1 and a zero word when it is empty).
    public mutating func storeCRW(of name: String) throws(VfioError) -> StoreCRWResult {
        guard guests[name] != nil else { throw .unknownGuest(name) }
        return guests[name]!.storeCRW()
    }
}

/// What one host path change did to one guest, for the GUEST_PATH_CHANGED event and stats.
public struct GuestPathChange: Hashable, Sendable {
    public let guest: String
    public let guestChpid: ChannelPathID
    public let hostChpid: ChannelPathID
    public let strategy: PathEventStrategy
    /// Passthrough devices on the path whose host masks changed.
    public let devices: Int
    /// Of those, how many changed what the guest's SCHIB shows (pam, pom, pnom).
    public let visible: Int
    /// Per-device notifications raised for it.
    public let notifications: Int
    /// The CRW put in the guest's queue (first word), or nil; `crwLost` when it did not fit.
    public let crw: CRW?
    public let crwLost: Bool
}

/// The host masks a guest device last heard of.
struct HostMasks: Hashable, Sendable {
    var pam: UInt8 = 0
    var pom: UInt8 = 0
    var pnom: UInt8 = 0

    init() {}
    init(_ pmcw: PMCW) {
        pam = pmcw.pam
        pom = pmcw.pom
        pnom = pmcw.pnom
    }
}
