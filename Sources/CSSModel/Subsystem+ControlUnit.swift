// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

extension Subsystem {
    /// A control unit quiescing (CUIR, control-unit initiated reconfiguration) or resuming the
    /// paths `chpids` of its devices, as a storage server does before a port is serviced: for
    /// each chpid in the order given, for each device in id order, the DASD driver's
    /// `cuir-quiesce` or `cuir-resume` of that path (`injectDASDPathFault`). A quiesce leaves a
    /// device's last path in use, as Linux's `dasd_eckd_cuir_quiesce` does; cio masks never
    /// change (the paths stay operational to the channel subsystem), so no CRW is queued.
    /// - Parameters:
    ///   - chpids: the control unit's paths (a storage port's).
    ///   - devices: the control unit's devices; nil: every DASD (`Subchannel.modelDASDDriver`)
    ///     using any of `chpids`. A listed device is changed on the chpids it has installed.
    ///   - resume: false quiesces, true resumes.
    /// - Returns: one change per device path the driver stopped using (a quiesce: path events
    ///   `driver-disabled-cuir`) or uses again (a resume: `driver-enabled`), in that order, each
    ///   as `driverPathChange` makes it; paths already so are not in it.
    /// - Throws: `ModelError` `.unknownChannelPath`, `.unknownDevice`, `.notDASD`,
    ///   `.pathNotInstalled` (a listed device has none of the chpids), all before anything
    ///   changes.
    package mutating func quiesceControlUnitPaths(_ chpids: [ChannelPathID], devices: [DeviceID]?, resume: Bool)
        throws(ModelError) -> [PathChange]
    {
        guard let firstChpid = chpids.first else { return [] }
        for id in chpids where pathIndex[id.rawValue] == nil { throw .unknownChannelPath(id) }
        var listed: [Subchannel]?
        if let devices {
            var found: [Subchannel] = []
            for device in devices {
                guard let sch = subchannel(device: device) else { throw .unknownDevice(device) }
                guard sch.modelDASDDriver != nil else { throw .notDASD(device) }
                guard chpids.contains(where: { sch.slot(of: $0) != nil }) else {
                    throw .pathNotInstalled(firstChpid, sch.id)
                }
                found.append(sch)
            }
            listed = found.sorted { $0.id < $1.id }
        }
        var changes: [PathChange] = []
        for chpid in chpids {
            let targets =
                listed?.filter { $0.slot(of: chpid) != nil }
                ?? subchannels(using: chpid).filter {
                    $0.modelDASDDriver != nil
                }
            for sch in targets {
                let result = try injectDASDPathFault(
                    device: sch.deviceID!, chpid: chpid, fault: resume ? .cuirResume : .cuirQuiesce, at: 0)
                let changed =
                    resume
                    ? DASDPathEnabling.between(result.before, result.after, subchannel: sch.id).map(\.chpid)
                    : result.disabled.map(\.chpid)
                for path in changed {
                    if let change = driverPathChange(chpid: path, subchannel: sch.id) { changes.append(change) }
                }
            }
        }
        return changes
    }
}
