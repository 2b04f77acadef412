// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import JSONValues
import QMPWire

/// The DASD path-health commands of API/dasd.json (issue 22), over `ServerState.backend`'s
/// `dasdPathHealth` (what the DASD driver says about each device's paths; the model has none).
/// One static method per command, as the generated `DASDCommandsSchema` requires.
enum DASDCommands {
    static func queryDasdPaths(_ arguments: QueryDasdPathsArguments, _ context: CommandContext) throws(QMPError)
        -> CommandOutcome
    {
        let backend = context.server.backend
        let subsystem = backend.subsystem
        var selected: [SubchannelID]
        if let device = arguments.devno {
            guard let sch = subsystem.subchannel(device: device) else {
                throw QMPError(.deviceNotFound, ModelError.unknownDevice(device).description)
            }
            selected = [sch.id]
        } else {
            selected = backend.dasdPathHealth.keys.sorted()
        }
        if let chpid = arguments.chpid {
            guard subsystem.channelPath(chpid) != nil else {
                throw QMPError(.deviceNotFound, ModelError.unknownChannelPath(chpid).description)
            }
            let health = backend.dasdPathHealth
            selected = selected.filter { health[$0]?.slots.contains(chpid) == true }
        }
        return .reply(
            .array(
                selected.compactMap { id in
                    backend.dasdPathHealth[id].flatMap { dasdInfo(id, $0, subsystem)?.json }
                }))
    }

    static func dasdPathReset(_ arguments: DasdPathResetArguments, _ context: CommandContext) throws(QMPError)
        -> CommandOutcome
    {
        let server = context.server
        let backend = server.backend
        let device = arguments.devno
        // An empty list wrote 00 to path_reset and answered ok: nothing was reset.
        if let chpids = arguments.chpids, chpids.isEmpty {
            throw .generic("Parameter 'chpids' expects at least one chpid (omit it for every path the driver disabled)")
        }
        // The model resets at once (no reading comes back): its driver-enabled events come
        // from the health before and after; a host's come with the write's re-read.
        let before = backend.subsystem.subchannel(device: device).flatMap { backend.dasdPathHealth[$0.id] }
        let perform = try CSSCommands.backendCall { () throws(BackendError) in
            try backend.planDASDPathReset(device, chpids: arguments.chpids)
        }
        // A sysfs write: off the event loop; its re-read of the device comes back with it.
        return .deferred(
            DeferredWork(blocking: perform) { (outcome) throws(QMPError) in
                let reading = try CSSCommands.backendCall { () throws(BackendError) in try outcome.get() }
                if let reading { server.applyObserved(reading) }
                let subsystem = backend.subsystem
                guard let sch = subsystem.subchannel(device: device), let health = backend.dasdPathHealth[sch.id],
                    let info = dasdInfo(sch.id, health, subsystem)
                else {
                    throw .generic(
                        "dasd-path-reset: device \(device) was written, but it is no longer a DASD cssd sees")
                }
                if reading == nil {
                    let enabled = DASDPathEnabling.between(before, health, subchannel: sch.id)
                    publishDriverChanges(enabled.map { ($0.chpid, $0.subchannel, .driverEnabled) }, context)
                }
                return info.json
            })
    }

    /// Model only: a fault the DASD driver sees (`Subsystem.injectDASDPathFault`) at the
    /// command's time (recorded and replayed with it, so the IFCC counts come back the same);
    /// each path the driver stops using is a `driver-disabled-*` path event, as on linux-sysfs.
    static func injectDasdPathFault(_ arguments: InjectDasdPathFaultArguments, _ context: CommandContext)
        throws(QMPError) -> CommandOutcome
    {
        if arguments.count != nil && arguments.fault != .ifcc {
            throw .generic("Parameter 'count' is only for fault 'ifcc'")
        }
        let count = arguments.count ?? 1
        guard (1...Int(UInt32.max)).contains(count) else {
            throw .generic("Parameter 'count' expects 1..\(UInt32.max)")
        }
        let now = context.now()
        let time = Int64(now.seconds) * 1_000_000 + Int64(now.microseconds)
        let backend = context.server.backend
        let result = try CSSCommands.backendCall { () throws(BackendError) in
            try backend.injectDASDPathFault(
                arguments.devno, chpid: arguments.chpid, fault: arguments.fault, count: UInt32(count), at: time)
        }
        let subsystem = backend.subsystem
        let disabled = result.disabled
        publishDriverChanges(disabled.map { ($0.chpid, $0.subchannel, PathEventChange($0.reason)) }, context)
        let enabled = DASDPathEnabling.between(result.before, result.after, subchannel: result.subchannel)
        publishDriverChanges(enabled.map { ($0.chpid, $0.subchannel, .driverEnabled) }, context)
        guard let device = dasdInfo(result.subchannel, result.after, subsystem) else {
            throw .generic("inject-dasd-path-fault: subchannel \(result.subchannel) is gone")
        }
        return .reply(
            DASDPathFaultResultReply(
                device: device, disabled: disabled.map(\.reason), ifccErrors: Int(result.errorCount),
                keptInUse: result.keptInUse
            ).json)
    }

    /// Each path the DASD driver stopped using (`driver-disabled-*`) or uses again
    /// (`driver-enabled`) as a path event of the command's caller: the path and the device's
    /// cio masks stay as they are (as in `ServerState.applyObserved` for a host's).
    private static func publishDriverChanges(
        _ changes: [(chpid: ChannelPathID, subchannel: SubchannelID, kind: PathEventChange)], _ context: CommandContext
    ) {
        let subsystem = context.server.backend.subsystem
        for (chpid, id, kind) in changes {
            guard let change = subsystem.driverPathChange(chpid: chpid, subchannel: id) else { continue }
            _ = context.publish(change, as: kind)
        }
    }

    static func queryPathVerification(_ context: CommandContext) throws(QMPError) -> CommandOutcome {
        let subsystem = context.server.backend.subsystem
        var out: [JSON] = []
        for sch in subsystem.subchannels where sch.needsPathVerification == true {
            let pmcw = sch.schib.pmcw
            let vpm = sch.verifiedPathMask ?? 0
            let missing = pmcw.pam & pmcw.pom & pmcw.lpm & ~vpm
            let unverified = sch.channelPaths.enumerated().compactMap { position, chpid -> String? in
                guard let chpid, missing & (0x80 >> UInt8(position)) != 0 else { return nil }
                return chpid.description
            }
            out.append(
                PathVerificationInfoReply(
                    subchannel: sch.id.description, devno: sch.deviceID?.description ?? "", pim: Int(pmcw.pim),
                    pam: Int(pmcw.pam), pom: Int(pmcw.pom), lpm: Int(pmcw.lpm), vpm: Int(vpm), unverified: unverified
                ).json)
        }
        return .reply(.array(out))
    }

    // MARK: Values

    /// One `DASDInfo`; nil when the subchannel is gone from the view.
    static func dasdInfo(_ id: SubchannelID, _ health: DASDPathHealth, _ subsystem: Subsystem) -> DASDInfoReply? {
        guard let sch = subsystem.subchannel(id) else { return nil }
        let masks = health.masks.map { masks in
            [masks.opm, masks.nppm, masks.cablepm, masks.cuirpm, masks.hpfpm, masks.ifccpm].map {
                Hex.string($0, width: 2)
            }.joined(separator: " ")
        }
        return DASDInfoReply(
            subchannel: id.description, devno: sch.deviceID?.description ?? "", driver: health.driver,
            online: health.online, pathMasks: masks,
            paths: health.masks == nil
                ? nil
                : health.paths.map { path in
                    DASDPathInfoReply(
                        chpid: path.chpid.description, slot: path.slot, inUse: path.inUse,
                        nonPreferred: path.nonPreferred, noHpf: path.noHPF, disabledBecause: path.disabledBecause,
                        fcSecurity: health.pathFCSecurity[path.chpid])
                },
            pathAutodisable: health.autodisable, pathThreshold: health.threshold.map { Int($0) },
            pathInterval: health.interval.map { Int($0) }, hpf: health.hpf, fcSecurity: health.fcSecurity,
            needsPathVerification: sch.needsPathVerification, problems: health.problems)
    }

    /// Per chpid: the `DASDChannelPathInfo` roll-up of every DASD behind it.
    static func channelPathSummaries(_ backend: ChannelSubsystemBackend) -> [ChannelPathID: DASDChannelPathInfoReply] {
        backend.dasdChannelPathSummaries.mapValues { summary in
            DASDChannelPathInfoReply(
                devices: summary.devices, inUse: summary.inUse, nonPreferred: summary.nonPreferred,
                miscabled: summary.miscabled, cuirQuiesced: summary.cuirQuiesced, noHpf: summary.noHPF,
                ifccDisabled: summary.ifccDisabled, unknown: summary.unknown)
        }
    }
}
