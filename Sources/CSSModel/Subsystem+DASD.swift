// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// The DASD device driver's own state for one model device: the masks only the driver keeps
/// (`DASDPathMasks` but `opm`, which the model derives) and the knobs that govern disabling
/// paths, with each slot's IFCC/CCC error count (Linux `device->path[pos].error_count` and
/// `errorclk`, drivers/s390/block/dasd_3990_erp.c `dasd_3990_erp_account_error`).
///
/// Times are the model clock's microseconds, passed in by the caller: the model reads no clock.
package struct DASDDriverState: Hashable, Sendable {
    package var nppm: UInt8 = 0
    package var cablepm: UInt8 = 0
    package var cuirpm: UInt8 = 0
    package var hpfpm: UInt8 = 0
    package var ifccpm: UInt8 = 0
    /// `path_autodisable` (Linux's default: on).
    package var autodisable = true
    /// `path_threshold`: errors within `interval` that disable a path; 0 counts nothing
    /// (ECKD default 256, `DASD_ECKD_PATH_THRHLD`).
    package var threshold: UInt32 = 256
    /// `path_interval`, seconds: a longer gap since a path's last error restarts its count
    /// (ECKD default 300, `DASD_ECKD_PATH_INTERVAL`).
    package var interval: UInt32 = 300
    /// Per slot: errors counted in the current interval.
    package var errorCounts: [UInt32] = Array(repeating: 0, count: 8)
    /// Per slot: the model time (µs) of the last error counted; nil: none since the last reset.
    package var lastErrorAt: [Int64?] = Array(repeating: nil, count: 8)

    package init() {}

    /// The driver's disabled paths: the ones it does not use whatever cio says.
    package var disabledByDriver: UInt8 { ifccpm | cablepm | cuirpm }
}

/// A fault the DASD driver of a model device sees on one path (QMP `inject-dasd-path-fault`).
package enum DASDPathFault: String, Hashable, Sendable, CaseIterable {
    /// IFCC/CCC errors on the path, counted against `path_threshold` within `path_interval`.
    case ifcc
    /// The path leads to another device (`cablepm`; the driver stops using it).
    case miscabled
    /// The storage server quiesces the path (CUIR; `cuirpm`).
    case cuirQuiesce = "cuir-quiesce"
    /// The storage server resumes a quiesced path (CUIR resume): the driver uses it again.
    case cuirResume = "cuir-resume"
}

/// What a DASD fault did to one device, completely: nobody needs to read the model again.
package struct DASDPathFaultResult: Hashable, Sendable {
    package var subchannel: SubchannelID
    package var chpid: ChannelPathID
    /// The health before and after (`Subsystem.dasdPathHealth(of:)`).
    package var before: DASDPathHealth
    package var after: DASDPathHealth
    /// The path's IFCC/CCC errors counted in the current interval, after the fault (0 after
    /// the count reached the threshold: the driver restarts it, disabling or not).
    package var errorCount: UInt32
    /// The driver kept the path although the fault asked it to stop using it: it is the
    /// device's last path in use (Linux "Last path ... is operational despite excessive
    /// IFCCs"; a CUIR quiesce of the last path is refused), or `path_autodisable` is off.
    package var keptInUse: Bool

    /// The paths the driver stopped using through this fault (`driver-disabled-*` events).
    package var disabled: [DASDPathDisabling] { DASDPathDisabling.between(before, after, subchannel: subchannel) }
}

extension Subchannel {
    /// The DASD discipline the model binds to this device: `dasd-eckd` for ECKD devices
    /// (device type 3380 or 3390, or a 3990, 2105 (ESS), 2107 (DS8000) or 1750 (DS6000)
    /// control unit), `dasd-fba` for FBA devices (9336, 3370, or a 6310 control unit), as
    /// Linux's dasd_eckd_ids and dasd_fba_ids match them; nil for any other subchannel (and for
    /// one without a device number).
    package var modelDASDDriver: String? {
        guard type == .io, schib.pmcw.deviceNumberValid else { return nil }
        switch (devType, cuType) {
        case (0x3380, _), (0x3390, _), (_, 0x3990), (_, 0x2105), (_, 0x2107), (_, 0x1750): return "dasd-eckd"
        case (0x9336, _), (0x3370, _), (_, 0x6310): return "dasd-fba"
        default: return nil
        }
    }
}

extension Subsystem {
    /// The path change a DASD driver's own decision makes (a path disabled or in use again):
    /// the path and the device's masks as they are, the one device named, no CRW; nil when
    /// the chpid, the subchannel or the path between them is not (any longer) in the model.
    package func driverPathChange(chpid: ChannelPathID, subchannel id: SubchannelID) -> PathChange? {
        guard let path = channelPath(chpid), let sch = subchannel(id), let slot = sch.channelPaths.firstIndex(of: chpid)
        else { return nil }
        return PathChange(
            before: path, after: path, affected: [AffectedSubchannel(current: sch, slot: slot)], crws: [], crwsLost: 0)
    }

    /// The driver state of DASD `sch` (the defaults when nothing changed it).
    package func dasdDriverState(of id: SubchannelID) -> DASDDriverState {
        dasdDrivers[id.rawValue] ?? DASDDriverState()
    }

    /// What the DASD driver of `sch` says about its paths, as `path_masks` would print it: opm
    /// is the operational paths (PAM & POM & LPM, `OperationalPaths`) less those the driver
    /// disabled, and 0 for a device that is not online (the driver uses no path then); nil for a
    /// subchannel that is not a DASD (`modelDASDDriver`). O(1).
    package func dasdPathHealth(of sch: Subchannel) -> DASDPathHealth? {
        guard let driver = sch.modelDASDDriver else { return nil }
        let state = dasdDrivers[sch.id.rawValue] ?? DASDDriverState()
        let paths = sch.operationalPaths
        let opm = paths.inUse ? paths.mask & ~state.disabledByDriver : 0
        return DASDPathHealth(
            driver: driver, online: paths.inUse, slots: sch.channelPaths,
            masks: DASDPathMasks(
                opm: opm, nppm: state.nppm, cablepm: state.cablepm, cuirpm: state.cuirpm, hpfpm: state.hpfpm,
                ifccpm: state.ifccpm),
            autodisable: state.autodisable, threshold: state.threshold, interval: state.interval,
            hpf: driver == "dasd-eckd" ? state.hpfpm == 0 : false, fcSecurity: "Unsupported")
    }

    /// Every DASD's path health, by subchannel: O(subchannels).
    package var dasdPathHealth: [SubchannelID: DASDPathHealth] {
        var out: [SubchannelID: DASDPathHealth] = [:]
        for record in records {
            if let health = dasdPathHealth(of: record) { out[record.id] = health }
        }
        return out
    }

    /// `DASDChannelPathSummary.rollUp(dasdPathHealth.values)`, computed from the chpids'
    /// member lists without building a value per device (a metrics scrape of a large model
    /// must not allocate per subchannel). O(installed paths).
    package var dasdChannelPathSummaries: [ChannelPathID: DASDChannelPathSummary] {
        var out: [ChannelPathID: DASDChannelPathSummary] = [:]
        for (index, path) in paths.enumerated() {
            var summary = DASDChannelPathSummary()
            for member in members[index] {
                let record = records[Int(member >> 3)]
                guard record.modelDASDDriver != nil else { continue }
                let bit: UInt8 = 0x80 >> UInt8(member & 7)
                let state = dasdDrivers.isEmpty ? nil : dasdDrivers[record.id.rawValue]
                let operational = record.operationalPaths
                let opm = operational.inUse ? operational.mask & ~(state?.disabledByDriver ?? 0) : 0
                summary.devices += 1
                if opm & bit != 0 { summary.inUse += 1 }
                if let state {
                    if state.nppm & bit != 0 { summary.nonPreferred += 1 }
                    if state.cablepm & bit != 0 { summary.miscabled += 1 }
                    if state.cuirpm & bit != 0 { summary.cuirQuiesced += 1 }
                    if state.hpfpm & bit != 0 { summary.noHPF += 1 }
                    if state.ifccpm & bit != 0 { summary.ifccDisabled += 1 }
                }
            }
            if summary.devices > 0 { out[path.id] = summary }
        }
        return out
    }

    /// The DASD behind `device` and the slot of `chpid` on it.
    /// - Throws: `.unknownDevice`, `.notDASD`, `.unknownChannelPath`, `.pathNotInstalled`.
    private func dasdSlot(_ device: DeviceID, _ chpid: ChannelPathID) throws(ModelError) -> (Subchannel, Int) {
        let sch = try dasd(device)
        guard channelPath(chpid) != nil else { throw .unknownChannelPath(chpid) }
        guard let slot = sch.slot(of: chpid) else { throw .pathNotInstalled(chpid, sch.id) }
        return (sch, slot)
    }

    /// The subchannel of DASD `device`.
    /// - Throws: `.unknownDevice`, `.notDASD`.
    private func dasd(_ device: DeviceID) throws(ModelError) -> Subchannel {
        guard let sch = subchannel(device: device) else { throw .unknownDevice(device) }
        guard sch.modelDASDDriver != nil else { throw .notDASD(device) }
        return sch
    }

    /// Keeps `state` for `id`, sparsely: a device in the default state takes no entry.
    private mutating func setDASDDriverState(_ state: DASDDriverState, of id: SubchannelID) {
        dasdDrivers[id.rawValue] = state == DASDDriverState() ? nil : state
    }

    /// A fault the DASD driver of `device` sees on path `chpid`, at model time `time` (µs).
    ///
    /// - `ifcc`: `count` errors, each counted as Linux's `dasd_3990_erp_account_error` does: a
    ///   gap of more than `path_interval` seconds since the path's last error restarts its
    ///   count; at `path_threshold` errors the driver disables the path (ifccpm, out of opm)
    ///   when `path_autodisable` is on and another path stays in use, and restarts the count
    ///   either way (`dasd_3990_erp_disable_path`). A threshold of 0 counts nothing.
    /// - `miscabled`: the path joins cablepm (the driver checks the cabling whatever the other
    ///   paths do, so even a last path goes).
    /// - `cuir-quiesce`: the path joins cuirpm unless it is the last path in use (the driver
    ///   refuses to quiesce that one, `dasd_eckd_cuir_quiesce`); `cuir-resume` takes it out.
    ///
    /// Pure: the driver's masks change, no cio mask does (the paths stay operational to the
    /// channel subsystem, as on a real host), so impact and redundancy figures do not move.
    /// - Throws: `ModelError` `.unknownDevice`, `.notDASD`, `.unknownChannelPath`,
    ///   `.pathNotInstalled`; the model is unchanged then.
    package mutating func injectDASDPathFault(
        device: DeviceID, chpid: ChannelPathID, fault: DASDPathFault, count: UInt32 = 1, at time: Int64
    ) throws(ModelError) -> DASDPathFaultResult {
        let (sch, slot) = try dasdSlot(device, chpid)
        let before = dasdPathHealth(of: sch)!
        let bit: UInt8 = 0x80 >> UInt8(slot)
        var state = dasdDriverState(of: sch.id)
        let inUse = before.masks!.opm
        let othersInUse = inUse & ~bit != 0
        var keptInUse = false
        switch fault {
        case .ifcc:
            for _ in 0..<count where state.threshold > 0 {
                if let last = state.lastErrorAt[slot], time - last > Int64(state.interval) * 1_000_000 {
                    state.errorCounts[slot] = 0
                }
                state.errorCounts[slot] += 1
                state.lastErrorAt[slot] = time
                guard state.errorCounts[slot] >= state.threshold else { continue }
                // Only a path in use can be disabled; the driver keeps the last one.
                if inUse & bit != 0 {
                    if state.autodisable && othersInUse { state.ifccpm |= bit } else { keptInUse = true }
                }
                state.errorCounts[slot] = 0
                state.lastErrorAt[slot] = nil
                if state.ifccpm & bit != 0 { break }
            }
        case .miscabled:
            state.cablepm |= bit
        case .cuirQuiesce:
            if inUse & bit != 0 && !othersInUse { keptInUse = true } else { state.cuirpm |= bit }
        case .cuirResume:
            state.cuirpm &= ~bit
        }
        setDASDDriverState(state, of: sch.id)
        let after = dasdPathHealth(of: subchannel(sch.id)!)!
        return DASDPathFaultResult(
            subchannel: sch.id, chpid: chpid, before: before, after: after, errorCount: state.errorCounts[slot],
            keptInUse: keptInUse)
    }

    /// `path_reset` of DASD `device`: the driver forgets why it disabled the paths `chpids`
    /// (nil: every path it disabled) and their error counts, and uses them again where cio has
    /// them operational (as Linux's `dasd_eckd_reset_path` followed by path verification).
    /// - Returns: the health before and after.
    /// - Throws: `ModelError` `.unknownDevice`, `.notDASD`, `.unknownChannelPath`,
    ///   `.pathNotInstalled`, `.noDisabledDASDPath` (nil `chpids`, nothing disabled); the
    ///   model is unchanged then.
    package mutating func resetDASDPaths(device: DeviceID, chpids: [ChannelPathID]?) throws(ModelError)
        -> (subchannel: SubchannelID, before: DASDPathHealth, after: DASDPathHealth)
    {
        let sch = try dasd(device)
        var state = dasdDriverState(of: sch.id)
        var mask: UInt8 = 0
        if let chpids {
            for chpid in chpids { mask |= 0x80 >> UInt8(try dasdSlot(device, chpid).1) }
        } else {
            guard state.disabledByDriver != 0 else { throw .noDisabledDASDPath(device) }
            mask = state.disabledByDriver
        }
        let before = dasdPathHealth(of: sch)!
        state.ifccpm &= ~mask
        state.cablepm &= ~mask
        state.cuirpm &= ~mask
        for slot in 0..<8 where mask & (0x80 >> UInt8(slot)) != 0 {
            state.errorCounts[slot] = 0
            state.lastErrorAt[slot] = nil
        }
        setDASDDriverState(state, of: sch.id)
        return (sch.id, before, dasdPathHealth(of: sch)!)
    }
}
