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
