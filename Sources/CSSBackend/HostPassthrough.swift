// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// vfio-ccw passthrough as a Linux host shows it (linux-sysfs; the model's guests are
/// `VFIOCCW.Guests`): the subchannels bound to `vfio_ccw`, each one's mediated device and the
/// guest that holds it. Sources: the kernel's vfio-ccw documentation (Documentation/arch/s390/
/// vfio-ccw.rst), the mdev core's sysfs layout, libvirt's domain status files and procfs.
/// What the host cannot know (the guest's own device number and chpids, which live in QEMU)
/// is not here.
package struct HostPassthroughView: Sendable, Equatable {
    /// Per subchannel bound to `vfio_ccw` (its `driver` link), in id order.
    package var subchannels: [HostPassthrough]

    package init(subchannels: [HostPassthrough] = []) {
        self.subchannels = subchannels
    }

    /// The guests named by `.libvirt` or `.process` holders, with their subchannels, by name.
    package var guests: [(name: String, subchannels: [HostPassthrough])] {
        var byName: [String: [HostPassthrough]] = [:]
        for sch in subchannels {
            guard let name = sch.mdev?.holder.guestName else { continue }
            byName[name, default: []].append(sch)
        }
        return byName.keys.sorted().map { ($0, byName[$0]!) }
    }

    /// Whether subchannel `id` is passed through and a guest may be driving it: it has a
    /// mediated device that a process holds, or whose holder cannot be told (the last-path
    /// interlock then errs on the side of the guest).
    package func isHeld(_ id: SubchannelID) -> Bool {
        guard let mdev = passthrough(id)?.mdev else { return false }
        if case .none = mdev.holder { return false }
        return true
    }

    /// The entry of subchannel `id`: a binary search of `subchannels` (in id order), as the
    /// interlock asks it per device a vary would take down (a linear search made a vary at
    /// 65,536 subchannels with 1,024 passed through cost 67 million comparisons).
    package func passthrough(_ id: SubchannelID) -> HostPassthrough? {
        var low = 0
        var high = subchannels.count
        while low < high {
            let middle = (low + high) / 2
            if subchannels[middle].subchannel < id { low = middle + 1 } else { high = middle }
        }
        return low < subchannels.count && subchannels[low].subchannel == id ? subchannels[low] : nil
    }
}

/// One subchannel bound to `vfio_ccw`.
package struct HostPassthrough: Sendable, Equatable {
    package var subchannel: SubchannelID
    /// `driver_override` (driverctl's persistent binding); nil when unset (`(null)`) or unreadable.
    package var driverOverride: String?
    /// `mdev_supported_types/vfio_ccw-io/available_instances`: 1 without an mdev, 0 with one;
    /// nil when unreadable.
    package var availableInstances: Int?
    /// The mediated device: the subchannel directory's first child named like a UUID, as
    /// lscss --vfio takes it (s390-tools zconf/css/lscss.c `fill_vfio_devid`); nil: none.
    package var mdev: MediatedDevice?

    package init(
        subchannel: SubchannelID, driverOverride: String? = nil, availableInstances: Int? = nil,
        mdev: MediatedDevice? = nil
    ) {
        self.subchannel = subchannel
        self.driverOverride = driverOverride
        self.availableInstances = availableInstances
        self.mdev = mdev
    }
}

/// A vfio-ccw mediated device (`css0/0.S.XXXX/<uuid>/`).
package struct MediatedDevice: Sendable, Equatable {
    /// Lower-case UUID, as the directory is named.
    package var uuid: String
    package var state: State
    /// The IOMMU group (`iommu_group` link's name, the N of `/dev/vfio/N`); nil when the
    /// directory has no such link (then no process can be found through it).
    package var iommuGroup: Int?
    package var holder: GuestHolder

    package enum State: String, Sendable, Equatable {
        /// Registered: `/sys/bus/mdev/devices/<uuid>` exists.
        case active
        /// A removal blocked because a process holds the device: gone from `/sys/bus/mdev/devices`
        /// while the directory under the subchannel remains (with `iommu_group`, `vfio-dev/`)
        /// until the holder lets go.
        case removalPending = "removal-pending"
    }

    package init(uuid: String, state: State, iommuGroup: Int?, holder: GuestHolder) {
        self.uuid = uuid
        self.state = state
        self.iommuGroup = iommuGroup
        self.holder = holder
    }
}

/// Who holds a mediated device, and how cssd knows it.
package enum GuestHolder: Sendable, Equatable {
    /// No process holds the IOMMU group open (procfs fully visible, every entry read).
    case none
    /// libvirt's status file `/run/libvirt/qemu/<domain>.xml` names the mdev as a hostdev of a
    /// running domain; `pid` is its QEMU's (`domstatus pid`), nil when absent.
    case libvirt(domain: String, pid: Int?)
    /// The process holding `/dev/vfio/<group>` open (its `/proc/PID/fd` links); its guest name
    /// from QEMU's `-name guest=NAME` (or `-name NAME`), nil without one.
    case process(guest: String?, pid: Int)
    /// Cannot be told, with the reason (unreadable entries, procfs hiding other processes, no
    /// IOMMU group).
    case unknown(reason: String)

    /// The guest's name when known.
    package var guestName: String? {
        switch self {
        case .libvirt(let domain, _): domain
        case .process(let guest, _): guest
        case .none, .unknown: nil
        }
    }

    /// The holder's process id when known.
    package var pid: Int? {
        switch self {
        case .libvirt(_, let pid): pid
        case .process(_, let pid): pid
        case .none, .unknown: nil
        }
    }

    /// `libvirt`, `process`, `none` or `unknown`: where the attribution came from.
    package var source: String {
        switch self {
        case .libvirt: "libvirt"
        case .process: "process"
        case .none: "none"
        case .unknown: "unknown"
        }
    }
}
