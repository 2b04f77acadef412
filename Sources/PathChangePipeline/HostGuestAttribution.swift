// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import PathEvents

extension HostPassthroughView {
    /// What a host path change did to each guest holding vfio-ccw mdevs here (linux-sysfs):
    /// one `HostGuestPathChange` per guest with a passthrough device among `change.affected`,
    /// however many of its devices share the path. Pure: the view is the backend's last reading
    /// (`ChannelSubsystemBackend.hostPassthrough`), passed in.
    ///
    /// A reset, a drift and a purge reach no guest (as for the model's guests,
    /// `Guests.hostPathChanged`), nor does a redundancy loss (its change went out just before).
    /// A device whose mdev's holder is not a named guest (`none`, `unknown`, a process without
    /// `-name`) is in no guest's event.
    /// - Returns: in guest-name order; each guest's devices in subchannel order. Cost:
    ///   O(affected + passthrough subchannels), a hash lookup each.
    package func guestChanges(_ change: PathChange, as kind: PathEventChange) -> [HostGuestPathChange] {
        guard !subchannels.isEmpty, !change.affected.isEmpty, !kind.isReport, !kind.isRedundancyLoss,
            kind != .subchannelsPurged
        else {
            return []
        }
        var held: [SubchannelID: (guest: String, pid: Int?, mdev: String)] = [:]
        for sch in subchannels {
            guard let mdev = sch.mdev, let guest = mdev.holder.guestName else { continue }
            held[sch.subchannel] = (guest, mdev.holder.pid, mdev.uuid)
        }
        guard !held.isEmpty else { return [] }
        var byGuest: [String: (pid: Int?, devices: [HostGuestDevice])] = [:]
        for affected in change.affected {
            guard let holder = held[affected.id] else { continue }
            let device = HostGuestDevice(
                subchannel: affected.id, mdev: holder.mdev, pim: affected.pim, pam: affected.pam, pom: affected.pom,
                lpm: affected.lpm, pnom: affected.pnom)
            byGuest[holder.guest, default: (holder.pid, [])].devices.append(device)
        }
        return byGuest.keys.sorted().map { name in
            let entry = byGuest[name]!
            let devices = entry.devices.sorted { $0.subchannel < $1.subchannel }
            return HostGuestPathChange(
                guest: name, pid: entry.pid, hostChpid: change.chpid, change: kind, devices: devices,
                withoutPath: devices.count { $0.hasNoPath })
        }
    }
}
