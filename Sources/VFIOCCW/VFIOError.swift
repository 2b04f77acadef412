// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// Why a guest operation was refused; nothing changed. `isNotFound` cases are QMP's
/// DeviceNotFound, the others GenericError.
package enum VFIOError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownGuest(String)
    case duplicateGuest(String)
    case unknownHostSubchannel(SubchannelID)
    case unknownGuestSubchannel(guest: String, SubchannelID)
    case alreadyPassedThrough(SubchannelID, guest: String, as: SubchannelID)
    case guestSubchannelInUse(guest: String, SubchannelID)
    case guestDevnoInUse(guest: String, DeviceID)
    case guestSubchannelsExhausted(guest: String, cssid: UInt8)
    case noDeviceNumber(SubchannelID)
    /// The host subchannel's PMCW has the QDIO facility (OSA, HiperSockets, FCP), which vfio-ccw
    /// does not support (Linux `vfio_ccw_sch_probe` refuses to bind it).
    case qdioSubchannel(SubchannelID)
    case wrongChpidCount(given: Int, installed: Int, host: SubchannelID)
    case chpidOutsideCSS(ChannelPathID, cssid: UInt8)
    /// The guest chpid already shows another host chpid.
    case chpidMappedElsewhere(guestChpid: ChannelPathID, host: ChannelPathID, wanted: ChannelPathID)
    /// The host chpid already shows as another guest chpid in that guest css.
    case hostChpidMappedElsewhere(host: ChannelPathID, guestChpid: ChannelPathID, wanted: ChannelPathID)
    /// The seed's clash: a passthrough path lands on a virtual chpid (virtio's fe.00).
    case clashWithVirtualChpid(
        guestChpid: ChannelPathID, host: ChannelPathID, freeChpid: ChannelPathID?, freeCSS: UInt8?)
    case virtioOutsideVirtualCSS(SubchannelID)
    case invalidName(String)

    package var isNotFound: Bool {
        switch self {
        case .unknownGuest, .unknownHostSubchannel, .unknownGuestSubchannel: true
        default: false
        }
    }

    package var description: String {
        switch self {
        case .unknownGuest(let name): "guest '\(name)' does not exist"
        case .duplicateGuest(let name): "guest '\(name)' already exists"
        case .unknownHostSubchannel(let id): "host subchannel \(id) does not exist"
        case .unknownGuestSubchannel(let guest, let id): "guest '\(guest)' has no subchannel \(id)"
        case .alreadyPassedThrough(let host, let guest, let id):
            "host subchannel \(host) is already passed through to guest '\(guest)' as \(id)"
        case .guestSubchannelInUse(let guest, let id): "guest '\(guest)' already has a subchannel \(id)"
        case .guestDevnoInUse(let guest, let device): "guest '\(guest)' already has a device \(device)"
        case .guestSubchannelsExhausted(let guest, let cssid):
            "guest '\(guest)' has no free subchannel left in css \(Hex.string(cssid))"
        case .qdioSubchannel(let id):
            "host subchannel \(id) has the QDIO facility (an OSA, HiperSockets or FCP device): vfio-ccw does not "
                + "support QDIO, so it cannot be passed through (Linux: \"vfio: ccw: does not support QDIO: \(id)\")"
        case .noDeviceNumber(let id):
            "host subchannel \(id) has no valid device number (DNV 0): nothing to pass through"
        case .wrongChpidCount(let given, let installed, let host):
            "'guest-chpids' names \(given) chpids, but host subchannel \(host) has \(installed) installed paths"
        case .chpidOutsideCSS(let chpid, let cssid):
            "guest chpid \(chpid) is not in the guest subchannel's css \(Hex.string(cssid))"
        case .chpidMappedElsewhere(let guestChpid, let host, let wanted):
            "guest chpid \(guestChpid) already shows host chpid \(host), not \(wanted)"
        case .hostChpidMappedElsewhere(let host, let guestChpid, let wanted):
            "host chpid \(host) already shows as guest chpid \(guestChpid) in this css, not \(wanted)"
        case .clashWithVirtualChpid(let guestChpid, let host, let freeChpid, let freeCSS):
            "host chpid \(host) would show as guest chpid \(guestChpid), the virtual channel path of the guest's "
                + "virtio devices in the same css; map it to a free guest chpid"
                + (freeChpid.map { " (guest-chpids with \($0))" } ?? "")
                + " or attach the device in a separate guest css for vfio devices"
                + (freeCSS.map { " (guest-subchannel \(Hex.string($0)).0.xxxx, multiple css)" } ?? "")
        case .virtioOutsideVirtualCSS(let id): "virtio-ccw device \(id) must be in the virtual css fe"
        case .invalidName(let name): "guest name '\(name)' must be 1-64 characters of a-z, A-Z, 0-9, '-', '_', '.'"
        }
    }
}
