// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// `HOST_GUEST_PATH_CHANGED`: what one host path change did to one guest that holds vfio-ccw
/// mediated devices on a Linux host (linux-sysfs; the model's guests get `GuestPathChange`).
/// One per guest per change, however many of its devices share the path: the host knows the
/// guest (libvirt's status file or the holding process), its mdevs and their host subchannels,
/// not the guest's own chpids, device numbers or strategy (they live in QEMU).
package struct HostGuestPathChange: Hashable, Sendable {
    /// The guest's name (libvirt's domain, or QEMU's `-name guest=`).
    package let guest: String
    /// Its QEMU's process id, when known.
    package let pid: Int?
    package let hostChpid: ChannelPathID
    /// What happened to the host path.
    package let change: PathEventChange
    /// The guest's passthrough devices whose host masks the change altered, in subchannel order.
    package let devices: [HostGuestDevice]
    /// Of those, how many have no operational path left (pim & pam & pom & lpm = 0).
    package let withoutPath: Int

    package init(
        guest: String, pid: Int?, hostChpid: ChannelPathID, change: PathEventChange, devices: [HostGuestDevice],
        withoutPath: Int
    ) {
        self.guest = guest
        self.pid = pid
        self.hostChpid = hostChpid
        self.change = change
        self.devices = devices
        self.withoutPath = withoutPath
    }
}

/// One passthrough device of a `HostGuestPathChange`: the host subchannel and its mdev, with the
/// subchannel's masks after the change (the per-subchannel detail).
package struct HostGuestDevice: Hashable, Sendable {
    package let subchannel: SubchannelID
    /// The mdev's UUID (lower case, as its directory is named).
    package let mdev: String
    package let pim, pam, pom, lpm, pnom: UInt8

    package init(subchannel: SubchannelID, mdev: String, pim: UInt8, pam: UInt8, pom: UInt8, lpm: UInt8, pnom: UInt8) {
        self.subchannel = subchannel
        self.mdev = mdev
        self.pim = pim
        self.pam = pam
        self.pom = pom
        self.lpm = lpm
        self.pnom = pnom
    }

    /// Whether no path is left to it: no bit in pim & pam & pom & lpm.
    package var hasNoPath: Bool { pim & pam & pom & lpm == 0 }
}
