// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// Every guest and its devices, on top of a host channel subsystem that is passed in to each
/// operation (this model does not own it). Pure and deterministic, like the host model.
///
/// Costs: a host path change costs O(affected subchannels) here (a hash lookup each, to find
/// the guest device bound to it, and its counters; the new masks come with the change); attach, detach and guest STSCH are O(1)
/// amortised; guest STCRW is O(devices of the guest) when it tells the guest of a chpid.
package struct Guests: Sendable {
    package internal(set) var guests: [String: Guest] = [:]
    /// Host subchannel -> (guest, guest subchannel): a host subchannel is passed through once.
    var bindings: [SubchannelID: Binding] = [:]

    struct Binding: Hashable, Sendable {
        let guest: String
        let id: SubchannelID
    }

    /// The guest css vfio devices land in when none is asked for: QEMU puts every device in the
    /// virtual css 0xfe unless the guest uses multiple css (hence the seed's chpid clash).
    package static let defaultPassthroughCSS: UInt8 = 0xfe

    package init() {}

    package var names: [String] { guests.keys.sorted() }

    package func guest(_ name: String) throws(VFIOError) -> Guest {
        guard let guest = guests[name] else { throw .unknownGuest(name) }
        return guest
    }

    /// The guest device a host subchannel is passed through as, if any.
    package func binding(of host: SubchannelID) -> (guest: String, id: SubchannelID)? {
        bindings[host].map { ($0.guest, $0.id) }
    }

    // MARK: Guests and devices

    package mutating func addGuest(_ name: String, strategy: PathEventStrategy = .crw, crwCapacity: Int = 64)
        throws(VFIOError)
    {
        let allowed = name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7a) || byte == 0x2d
                || byte == 0x5f || byte == 0x2e
        }
        guard allowed, (1...64).contains(name.utf8.count) else { throw .invalidName(name) }
        guard guests[name] == nil else { throw .duplicateGuest(name) }
        guests[name] = Guest(name: name, strategy: strategy, crwCapacity: max(2, crwCapacity))
    }

    package mutating func setStrategy(_ strategy: PathEventStrategy, of name: String) throws(VFIOError) {
        guard guests[name] != nil else { throw .unknownGuest(name) }
        guests[name]!.strategy = strategy
    }

    /// Adds a virtio-ccw device on the virtual channel path fe.00.
    /// - Parameters:
    ///   - id: its guest subchannel (css fe); default the first free one in fe.0.
    ///   - devno: default the subchannel number.
    @discardableResult
    package mutating func addVirtio(to name: String, id: SubchannelID? = nil, devno: UInt16? = nil, cuModel: UInt8)
        throws(VFIOError) -> GuestDevice
    {
        guard guests[name] != nil else { throw .unknownGuest(name) }
        // In place: a guest may hold 65,536 devices, which a copy would duplicate.
        return try guests[name]!.addVirtio(id: id, devno: devno, cuModel: cuModel)
    }

    /// Passes host subchannel `host` through to a guest.
    /// - Parameters:
    ///   - guestSubchannel: default the first free subchannel in css fe, ssid 0.
    ///   - guestChpids: one per installed host path, in slot order; default the host chpid
    ///     numbers in the guest subchannel's css (identity).
    /// - Throws: `VFIOError`; nothing changes then. A subchannel with the QDIO facility (PMCW
    ///   QF: OSA, HiperSockets, FCP) is refused, as Linux's `vfio_ccw_sch_probe` refuses to
    ///   bind it (`.qdioSubchannel`). A path landing on the virtual chpid of the guest's virtio
    ///   devices is refused with a proposal of a free chpid and a free css.
    @discardableResult
    package mutating func attachPassthrough(
        to name: String, host hostID: SubchannelID, guestSubchannel: SubchannelID? = nil,
        guestChpids: [ChannelPathID]? = nil, in host: Subsystem
    ) throws(VFIOError) -> GuestDevice {
        guard guests[name] != nil else { throw .unknownGuest(name) }
        guard let hostSubchannel = host.subchannel(hostID) else { throw .unknownHostSubchannel(hostID) }
        guard !hostSubchannel.schib.pmcw.hasQDIOFacility else { throw .qdioSubchannel(hostID) }
        if let bound = bindings[hostID] { throw .alreadyPassedThrough(hostID, guest: bound.guest, as: bound.id) }
        let device = try guests[name]!.attach(
            hostSubchannel, guestSubchannel: guestSubchannel, guestChpids: guestChpids,
            defaultCSS: Self.defaultPassthroughCSS)
        bindings[hostID] = Binding(guest: name, id: device.id)
        return device
    }

    /// Ends a passthrough. Events already queued for the guest stay (its CRWs are the
    /// machine's reports, like a real one's); chpid mappings no device uses any more go.
    @discardableResult
    package mutating func detachPassthrough(from name: String, guestSubchannel id: SubchannelID) throws(VFIOError)
        -> GuestDevice
    {
        guard guests[name] != nil else { throw .unknownGuest(name) }
        let device = try guests[name]!.detach(id)
        bindings[device.host!] = nil
        return device
    }

    // MARK: Host path events

    /// Carries a host path change to every guest with a device on that path, each the way its
    /// strategy says. Call it after the host model changed. The devices' new host masks come
    /// with the change (`PathChange.affected`): no SCHIB is read from the host.
    ///
    /// A reset (RCHP) reaches no guest: it changes no mask, and its report is solicited, the
    /// answer to the host's own request, which no guest made.
    /// - Parameters:
    ///   - change: the host change, as the host model (or an observation) reported it.
    ///   - kind: what happened, carried into each guest change for its event.
    /// - Returns: one entry per guest and guest chpid reached, in guest-name order, then guest
    ///   chpid order. Cost: O(affected subchannels), a hash lookup each.
    package mutating func hostPathChanged(_ change: PathChange, as kind: PathEventChange) -> [GuestPathChange] {
        // Nor does a drift: the host's own record of intent, no change a guest could see.
        // Nor a purge: the subchannels are gone from the host, which their removal tells.
        // Nor a device added or removed: no guest has a new one, and a removed one passed
        // through is refused before it goes (remove-device).
        guard
            kind != .reset && kind != .drift && kind != .subchannelsPurged && kind != .subchannelAdded
                && kind != .subchannelRemoved
        else { return [] }
        var reached: [String: [ReachedDevice]] = [:]
        for (index, affected) in change.affected.enumerated() {
            if let binding = bindings[affected.id] {
                reached[binding.guest, default: []].append(ReachedDevice(id: binding.id, affected: Int32(index)))
            }
        }
        // A report on a path can reach a guest whose devices' masks did not change.
        if !change.crws.isEmpty {
            for (name, guest) in guests where reached[name] == nil && guest.chpidMap.values.contains(change.chpid) {
                reached[name] = []
            }
        }
        var out: [GuestPathChange] = []
        for name in reached.keys.sorted() {
            out += guests[name]!.hostPathChanged(change, as: kind, devices: reached[name]!)
        }
        return out
    }

    // MARK: The guest's instructions

    /// Guest STSCH: the guest's SCHIB (guest devno and chpids, the host's pam/pom/pnom/lpum as
    /// the strategy last brought them in, the guest's own lpm), or cc 3 for no such subchannel.
    package mutating func storeSubchannel(of name: String, _ id: SubchannelID, host: Subsystem) throws(VFIOError)
        -> StoreSubchannelResult
    {
        guard guests[name] != nil else { throw .unknownGuest(name) }
        return guests[name]!.storeSubchannel(id, host: host)
    }

    /// Guest STCRW: pops the guest's CRW queue (cc 1 and a zero word when it is empty).
    package mutating func storeCRW(of name: String) throws(VFIOError) -> StoreCRWResult {
        guard guests[name] != nil else { throw .unknownGuest(name) }
        return guests[name]!.storeCRW()
    }
}

/// What one host path change did to one guest: the GUEST_PATH_CHANGED event's content
/// (PathEvents queues this very value), and what sinks of published changes see per guest.
package struct GuestPathChange: Hashable, Sendable {
    package let guest: String
    package let guestChpid: ChannelPathID
    package let hostChpid: ChannelPathID
    /// What happened to the host path.
    package let change: PathEventChange
    package let strategy: PathEventStrategy
    /// Passthrough devices on the path whose host masks changed.
    package let devices: Int
    /// Of those, how many changed what the guest's SCHIB shows (pam, pom, pnom).
    package let visible: Int
    /// Per-device notifications raised for it.
    package let notifications: Int
    /// The CRW put in the guest's queue (first word), or nil; `crwLost` when it did not fit.
    package let crw: CRW?
    package let crwLost: Bool

    package init(
        guest: String, guestChpid: ChannelPathID, hostChpid: ChannelPathID, change: PathEventChange,
        strategy: PathEventStrategy, devices: Int, visible: Int, notifications: Int, crw: CRW?, crwLost: Bool
    ) {
        self.guest = guest
        self.guestChpid = guestChpid
        self.hostChpid = hostChpid
        self.change = change
        self.strategy = strategy
        self.devices = devices
        self.visible = visible
        self.notifications = notifications
        self.crw = crw
        self.crwLost = crwLost
    }
}

/// A guest device a host change reached, and where the host subchannel's new masks are in
/// the change (`PathChange.affected[affected]`; an index keeps the lists of reached devices
/// small: 8 bytes a device).
struct ReachedDevice {
    let id: SubchannelID
    let affected: Int32
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
    init(_ affected: AffectedSubchannel) {
        pam = affected.pam
        pom = affected.pom
        pnom = affected.pnom
    }
}
