// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import JSONValues
import QMPWire

/// `query-host-passthrough` (API/vfio.json): the host's vfio-ccw passthrough as linux-sysfs
/// reads it (`ChannelSubsystemBackend.hostPassthrough`), with each subchannel's host paths.
extension VFIOCommands {
    static func queryHostPassthrough(_ arguments: QueryHostPassthroughArguments, _ context: CommandContext)
        throws(QMPError) -> CommandOutcome
    {
        let backend = context.server.backend
        guard let view = backend.hostPassthrough else {
            throw QMPError(
                .genericError,
                "query-host-passthrough: the \(backend.name) backend has no host passthrough to read; "
                    + "its guests are query-guests")
        }
        let subsystem = context.server.subsystem
        let selected = view.subchannels.filter {
            arguments.guest == nil || $0.mdev?.holder.guestName == arguments.guest
        }
        return .reply(.array(selected.map { hostPassthroughInfo($0, subsystem.subchannel($0.subchannel)).json }))
    }

    static func hostPassthroughInfo(_ sch: HostPassthrough, _ host: Subchannel?) -> HostPassthroughInfoReply {
        let pmcw = host?.schib.pmcw
        var info = HostPassthroughInfoReply(
            subchannel: sch.subchannel.description, chpids: host?.channelPaths.compactMap { $0?.description } ?? [],
            pim: Int(pmcw?.pim ?? 0), pam: Int(pmcw?.pam ?? 0), pom: Int(pmcw?.pom ?? 0),
            operational: (host?.operationalPaths.mask ?? 0) != 0)
        if let pmcw, pmcw.deviceNumberValid {
            info.devno =
                DeviceID(cssid: sch.subchannel.cssid, ssid: sch.subchannel.ssid, devno: pmcw.devno).description
        }
        info.driverOverride = sch.driverOverride
        info.availableInstances = sch.availableInstances
        if let mdev = sch.mdev {
            info.mdev = mdev.uuid
            info.mdevState = mdev.state.rawValue
            info.iommuGroup = mdev.iommuGroup
            info.holder = mdev.holder.source
            info.guest = mdev.holder.guestName
            info.pid = mdev.holder.pid
            if case .unknown(let reason) = mdev.holder { info.holderProblem = reason }
        }
        return info
    }
}

/// query-guests and query-guest-subchannels on linux-sysfs (API/vfio.json): a guest as the host
/// shows it, from `HostPassthroughView.guests`. What lives in QEMU (the guest's subchannel ids,
/// device numbers, chpids, lpm; its CRW queue; virtio devices) and cssd's model notions (the
/// strategy) are absent, as the schema says.
extension VFIOCommands {
    static func hostGuestInfo(_ name: String, _ held: [HostPassthrough], _ subsystem: Subsystem) -> JSON {
        var info = GuestInfoReply(name: name, devices: held.count, passthrough: held.count)
        let holder = held.first?.mdev?.holder
        info.pid = holder?.pid
        info.attribution = holder?.source
        info.mdevs = held.compactMap { $0.mdev?.uuid }
        info.withoutPath = held.count { subsystem.subchannel($0.subchannel)?.operationalPaths.mask ?? 0 == 0 }
        return info.json
    }

    /// A page of `held` (in host subchannel order), filtered and paged by host subchannel id.
    static func hostGuestSubchannels(
        _ held: [HostPassthrough], _ arguments: QueryGuestSubchannelsArguments, _ subsystem: Subsystem
    ) -> JSON {
        let (cssid, ssid, start) = (arguments.cssid, arguments.ssid, arguments.start)
        let matching = held.filter { sch in
            (cssid == nil || sch.subchannel.cssid == cssid) && (ssid == nil || sch.subchannel.ssid == ssid)
                && (start == nil || sch.subchannel >= start!)
        }
        // A guest holds at most a host's subchannels; without 'limit' every one is listed.
        let capacity = arguments.limit ?? max(matching.count, 1)
        return GuestSubchannelPageReply(
            subchannels: matching.prefix(capacity).map { hostSubchannelInfo($0, subsystem.subchannel($0.subchannel)) },
            next: matching.count > capacity ? matching[capacity].subchannel.description : nil
        ).json
    }

    static func hostSubchannelInfo(_ sch: HostPassthrough, _ host: Subchannel?) -> GuestSubchannelInfoReply {
        let pmcw = host?.schib.pmcw
        var info = GuestSubchannelInfoReply(
            kind: "passthrough", pim: Int(pmcw?.pim ?? 0), pam: Int(pmcw?.pam ?? 0), pom: Int(pmcw?.pom ?? 0),
            pnom: Int(pmcw?.pnom ?? 0))
        info.hostSubchannel = sch.subchannel.description
        let paths = host?.channelPaths ?? Array(repeating: nil, count: 8)
        info.hostChpids = paths.map { $0.map { .string($0.description) } ?? .null }
        info.mdev = sch.mdev?.uuid
        info.mdevState = sch.mdev?.state.rawValue
        return info
    }
}
