// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// How a host path event reaches a guest: the three ways the vfio-ccw design discussion
/// weighs (see API/vfio-ccw.md for the measured trade-off).
package enum PathEventStrategy: String, CaseIterable, Hashable, Sendable {
    /// The 2018 RFC: every affected passthrough device raises its own notification and its
    /// SCHIB region is read into the guest's SCHIB at once (N notifications for N devices).
    /// The guest's program is not interrupted; its next STSCH sees the new masks.
    case perDevice = "per-device"
    /// The machine's channel-path CRW is forwarded, with the guest's chpid, into the guest's
    /// own CRW queue: one per chpid event, however many devices use the path; lost (R bit)
    /// when the guest does not drain its queue. The guest then stores its subchannels, and
    /// STSCH is passed through to the host.
    case crw
    /// Nothing is pushed: the guest's next STSCH is passed through and sees fresh masks.
    case lazy
}

/// One device of a guest: a virtio-ccw device on the virtual channel path, or a host
/// subchannel passed through (vfio-ccw).
package struct GuestDevice: Hashable, Sendable {
    package enum Kind: Hashable, Sendable {
        /// virtio-ccw: control unit 3832 with this model (1 net, 2 block, ...).
        case virtio(cuModel: UInt8)
        /// vfio-ccw: bound to this host subchannel.
        case passthrough(host: SubchannelID)
    }

    /// The guest's subchannel id.
    package let id: SubchannelID
    /// The guest's device number (in the guest subchannel's css and ssid).
    package let devno: UInt16
    package let kind: Kind
    /// The guest's chpids, slot 0 first (the installed paths).
    package let chpids: [ChannelPathID]
    /// What the guest's SCHIB shows of the host's masks (QEMU copies pam, pom, pnom, lpum).
    package internal(set) var pam: UInt8
    package internal(set) var pom: UInt8
    package internal(set) var pnom: UInt8
    package internal(set) var lpum: UInt8
    /// The guest's own logical path mask.
    package internal(set) var lpm: UInt8
    /// Guest-visible host changes (pam, pom, pnom) the guest has not read by STSCH yet.
    package internal(set) var unobserved = 0
    /// Of those, the ones nothing has told the guest about (no CRW naming one of its paths).
    package internal(set) var untold = 0
    /// The host masks at the last host event (what "changed" is measured against).
    var hostSeen = HostMasks()

    package var pim: UInt8 { UInt8(truncatingIfNeeded: 0xff00 >> chpids.count) }
    package var host: SubchannelID? {
        if case .passthrough(let host) = kind { return host }
        return nil
    }
}

/// The counters of one guest: what each strategy costs and how far behind the guest is.
package struct PathEventStats: Hashable, Sendable {
    /// Host path changes that altered a passthrough device of this guest (one per chpid change).
    package internal(set) var hostEvents = 0
    /// Per-device notifications raised (per-device strategy).
    package internal(set) var notifications = 0
    /// CRWs put in the guest's queue, and those lost to its overflow (crw strategy).
    package internal(set) var crwsQueued = 0
    package internal(set) var crwsLost = 0
    /// Host SCHIB reads done for the guest: region reads on notification, passthrough STSCH.
    package internal(set) var schibRefreshes = 0
    /// Guest STSCH and STCRW executed.
    package internal(set) var guestStoreSubchannels = 0
    package internal(set) var guestStoreCRWs = 0
}

/// A guest: its channel subsystem view, its devices, its chpid map and its CRW queue.
package struct Guest: Sendable {
    package let name: String
    package internal(set) var strategy: PathEventStrategy
    /// Guest chpid -> host chpid (identity numbers by default, in the device's guest css).
    package internal(set) var chpidMap: [ChannelPathID: ChannelPathID] = [:]
    /// Devices by guest subchannel id. Added and removed only through `insert` and `remove`,
    /// which keep the indexes below; a device's own fields change in place.
    package internal(set) var devices: [SubchannelID: GuestDevice] = [:]
    /// Device numbers in use, as DeviceID raw values.
    private var devnos: Set<UInt32> = []
    /// Devices per guest css.
    private var cssidCounts: [UInt8: Int] = [:]
    /// Virtio devices per virtual chpid, and passthrough devices per guest chpid.
    private var virtualUse: [ChannelPathID: Int] = [:]
    private var passthroughUse: [ChannelPathID: Int] = [:]
    /// Per (css, ssid): no free subchannel below this number (a hint, so that attaching N
    /// devices is not O(N²)).
    private var freeFrom: [UInt16: Int] = [:]
    /// The guest's CRW queue (crw strategy).
    package internal(set) var crwQueue: CRWQueue
    package internal(set) var stats = PathEventStats()
    /// The reports in `crwQueue`, oldest first, with how many words each has left to store,
    /// so that storing one tells which guest chpid the guest has now heard of.
    var reports: [(chpid: ChannelPathID, words: Int, left: Int)] = []

    /// The virtual channel path of virtio-ccw devices: css 0xfe, chpid 0x00, type 0x32.
    package static let virtualChannelPath = ChannelPathID(cssid: 0xfe, chpid: 0x00)

    init(name: String, strategy: PathEventStrategy, crwCapacity: Int) {
        self.name = name
        self.strategy = strategy
        self.crwQueue = CRWQueue(capacity: crwCapacity)
    }

    /// Guest css ids in use; more than one means the guest runs with MCSSE.
    package var cssids: Set<UInt8> { Set(cssidCounts.keys) }
    package var usesMultipleCSS: Bool { cssidCounts.count > 1 }

    /// Virtual chpids in use (by virtio devices).
    package var virtualChpids: Set<ChannelPathID> { Set(virtualUse.keys) }

    func isVirtual(_ chpid: ChannelPathID) -> Bool { virtualUse[chpid] != nil }
    func isUsedByPassthrough(_ chpid: ChannelPathID) -> Bool { passthroughUse[chpid] != nil }
    func hasDevno(_ device: DeviceID) -> Bool { devnos.contains(device.rawValue) }

    mutating func insert(_ device: GuestDevice) {
        devices[device.id] = device
        devnos.insert(DeviceID(cssid: device.id.cssid, ssid: device.id.ssid, devno: device.devno).rawValue)
        cssidCounts[device.id.cssid, default: 0] += 1
        for chpid in device.chpids {
            if device.host == nil { virtualUse[chpid, default: 0] += 1 } else { passthroughUse[chpid, default: 0] += 1 }
        }
    }

    mutating func remove(_ id: SubchannelID) {
        guard let device = devices.removeValue(forKey: id) else { return }
        devnos.remove(DeviceID(cssid: id.cssid, ssid: id.ssid, devno: device.devno).rawValue)
        Self.decrement(&cssidCounts, id.cssid)
        for chpid in device.chpids {
            if device.host == nil { Self.decrement(&virtualUse, chpid) } else { Self.decrement(&passthroughUse, chpid) }
        }
        let set = UInt16(id.cssid) << 8 | UInt16(id.ssid)
        freeFrom[set] = min(freeFrom[set] ?? 0, Int(id.schno))
    }

    private static func decrement<K: Hashable>(_ counts: inout [K: Int], _ key: K) {
        counts[key, default: 0] -= 1
        if counts[key] == 0 { counts[key] = nil }
    }

    /// The first free subchannel number in (css, ssid), from the hint on.
    mutating func firstFreeSubchannel(cssid: UInt8, ssid: UInt8) throws(VFIOError) -> SubchannelID {
        let set = UInt16(cssid) << 8 | UInt16(ssid)
        for schno in (freeFrom[set] ?? 0)...0xffff {
            let id = SubchannelID(cssid: cssid, ssid: ssid, schno: UInt16(schno))
            if devices[id] == nil {
                freeFrom[set] = schno
                return id
            }
        }
        throw .guestSubchannelsExhausted(guest: name, cssid: cssid)
    }

    /// The guest chpid that shows host chpid `host` (in guest css `cssid`), if mapped.
    package func guestChpid(for host: ChannelPathID, cssid: UInt8) -> ChannelPathID? {
        chpidMap.first { $0.key.cssid == cssid && $0.value == host }?.key
    }

    /// Devices in guest-subchannel order.
    package var sortedDevices: [GuestDevice] { devices.values.sorted { $0.id < $1.id } }
}
