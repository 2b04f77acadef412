// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

extension Guest {
    // MARK: Ids

    func checkFree(_ id: SubchannelID, devno: UInt16) throws(VFIOError) {
        guard devices[id] == nil else { throw .guestSubchannelInUse(guest: name, id) }
        let device = DeviceID(cssid: id.cssid, ssid: id.ssid, devno: devno)
        if hasDevno(device) { throw .guestDevnoInUse(guest: name, device) }
    }

    /// A guest chpid in `cssid` that is neither virtual nor mapped (nor in `avoiding`).
    func firstFreeChpid(cssid: UInt8, avoiding: Set<ChannelPathID>) -> ChannelPathID? {
        for number in 0...0xff {
            let chpid = ChannelPathID(cssid: cssid, chpid: UInt8(number))
            if !isVirtual(chpid) && chpidMap[chpid] == nil && !avoiding.contains(chpid) { return chpid }
        }
        return nil
    }

    /// The lowest css other than the virtual one without virtio devices: a home for vfio devices.
    func firstCSSWithoutVirtio() -> UInt8? {
        let virtio = Set(virtualChpids.map(\.cssid))
        return (0...0xfd).lazy.map { UInt8($0) }.first { !virtio.contains($0) }
    }

    // MARK: Devices

    mutating func addVirtio(id: SubchannelID?, devno: UInt16?, cuModel: UInt8) throws(VFIOError) -> GuestDevice {
        let chpid = Guest.virtualChannelPath
        if let id, id.cssid != chpid.cssid { throw .virtioOutsideVirtualCSS(id) }
        // A passthrough path already showing as fe.00 is the same clash, the other way round.
        if let host = chpidMap[chpid] {
            throw .clashWithVirtualChpid(guestChpid: chpid, host: host, freeChpid: nil, freeCSS: nil)
        }
        var subchannel = SubchannelID(cssid: chpid.cssid, ssid: 0, schno: 0)
        if let id { subchannel = id } else { subchannel = try firstFreeSubchannel(cssid: chpid.cssid, ssid: 0) }
        try checkFree(subchannel, devno: devno ?? subchannel.schno)
        let device = GuestDevice(
            id: subchannel, devno: devno ?? subchannel.schno, kind: .virtio(cuModel: cuModel), chpids: [chpid],
            pam: 0x80, pom: 0xff, pnom: 0, lpum: 0, lpm: 0x80)
        insert(device)
        return device
    }

    /// Checks everything, then changes: a refusal leaves the guest as it was.
    mutating func attach(
        _ hostSubchannel: Subchannel, guestSubchannel: SubchannelID?, guestChpids: [ChannelPathID]?, defaultCSS: UInt8
    ) throws(VFIOError) -> GuestDevice {
        guard let hostDevice = hostSubchannel.deviceID else { throw .noDeviceNumber(hostSubchannel.id) }
        var id = SubchannelID(cssid: defaultCSS, ssid: 0, schno: 0)
        if let guestSubchannel {
            id = guestSubchannel
        } else {
            id = try firstFreeSubchannel(cssid: defaultCSS, ssid: 0)
        }
        try checkFree(id, devno: hostDevice.devno)
        let hostChpids = hostSubchannel.channelPaths.compactMap { $0 }
        let chpids = guestChpids ?? hostChpids.map { ChannelPathID(cssid: id.cssid, chpid: $0.chpid) }
        guard chpids.count == hostChpids.count else {
            throw .wrongChpidCount(given: chpids.count, installed: hostChpids.count, host: hostSubchannel.id)
        }
        for (guestChpid, hostChpid) in zip(chpids, hostChpids) {
            guard guestChpid.cssid == id.cssid else { throw .chpidOutsideCSS(guestChpid, cssid: id.cssid) }
            if isVirtual(guestChpid) {
                throw .clashWithVirtualChpid(
                    guestChpid: guestChpid, host: hostChpid,
                    freeChpid: firstFreeChpid(cssid: id.cssid, avoiding: Set(chpids)),
                    freeCSS: firstCSSWithoutVirtio())
            }
            if let mapped = chpidMap[guestChpid], mapped != hostChpid {
                throw .chpidMappedElsewhere(guestChpid: guestChpid, host: mapped, wanted: hostChpid)
            }
            if let shown = self.guestChpid(for: hostChpid, cssid: id.cssid), shown != guestChpid {
                throw .hostChpidMappedElsewhere(host: hostChpid, guestChpid: shown, wanted: guestChpid)
            }
        }
        for (guestChpid, hostChpid) in zip(chpids, hostChpids) { chpidMap[guestChpid] = hostChpid }
        let pmcw = hostSubchannel.schib.pmcw
        var device = GuestDevice(
            id: id, devno: hostDevice.devno, kind: .passthrough(host: hostSubchannel.id), chpids: chpids,
            pam: pmcw.pam, pom: pmcw.pom, pnom: pmcw.pnom, lpum: pmcw.lpum, lpm: 0)
        device.lpm = device.pim
        device.hostSeen = HostMasks(pmcw)
        insert(device)
        return device
    }

    mutating func detach(_ id: SubchannelID) throws(VFIOError) -> GuestDevice {
        guard let device = devices[id], device.host != nil else { throw .unknownGuestSubchannel(guest: name, id) }
        remove(id)
        for chpid in device.chpids where !isUsedByPassthrough(chpid) { chpidMap[chpid] = nil }
        return device
    }

    // MARK: Host events

    mutating func hostPathChanged(_ change: PathChange, as kind: PathEventChange, devices reached: [ReachedDevice])
        -> [GuestPathChange]
    {
        // Devices on the path, grouped by the guest chpid showing it (one per guest css).
        // The guest chpids that show the host chpid, found once: a device's slot is then a
        // comparison per chpid, not a map lookup (a change reaching many devices hashed up to
        // eight chpids for each: issue 25's profile of a durable change).
        // Groups by position in `showing` (a guest chpid or two), not a map keyed by chpid.
        let showing = chpidMap.compactMap { $0.value == change.chpid ? $0.key : nil }.sorted()
        var groups = [[ReachedDevice]](repeating: [], count: showing.count)
        // A report on the path reaches the guest chpid even without a device whose masks moved.
        var reachedChpid = [Bool](repeating: !change.crws.isEmpty, count: showing.count)
        for device in reached {
            guard let chpids = devices[device.id]?.chpids,
                let group = chpids.lazy.compactMap({ showing.firstIndex(of: $0) }).first
            else { continue }
            groups[group].append(device)
            reachedChpid[group] = true
        }
        var out: [GuestPathChange] = []
        for (group, guestChpid) in showing.enumerated() where reachedChpid[group] {
            out.append(deliver(change, as: kind, on: guestChpid, to: groups[group]))
        }
        return out
    }

    private mutating func deliver(
        _ change: PathChange, as kind: PathEventChange, on guestChpid: ChannelPathID, to reached: [ReachedDevice]
    ) -> GuestPathChange {
        stats.hostEvents += 1
        var visible = 0
        var notifications = 0
        for reachedDevice in reached {
            // Changed where it lies: one lookup, no copy of the device out and back in (a
            // durable change's profile, issue 25).
            guard let index = devices.index(forKey: reachedDevice.id), devices.values[index].host != nil else {
                continue
            }
            let masks = change.affected[Int(reachedDevice.affected)]
            let now = HostMasks(masks)
            let isVisible = now != devices.values[index].hostSeen
            devices.values[index].hostSeen = now
            switch strategy {
            case .perDevice:
                // The RFC: every change of the device's host SCHIB raises a notification and
                // the region is read into the guest's SCHIB, visible to the guest or not (the
                // region's content is the masks the change carries).
                notifications += 1
                stats.notifications += 1
                stats.schibRefreshes += 1
                devices.values[index].copyHostMasks(masks)
            case .crw, .lazy:
                break
            }
            if isVisible {
                visible += 1
                devices.values[index].unobserved += 1
                devices.values[index].untold += 1
            }
        }
        var forwarded: CRW?
        var lost = false
        // A report the host machine lost to its own queue's overflow reaches no guest: Linux
        // only schedules an evaluation of every subchannel (chp_process_crw ->
        // css_schedule_eval_all), vfio_ccw_chp_event is not called, so QEMU has nothing to
        // forward. The guest sees the masks on its next STSCH.
        if strategy == .crw, change.after.vary == .online, let first = change.crws.first,
            let erc = Self.forwardedERC(for: first.erc)
        {
            // The report as vfio-ccw queues it, with the guest's chpid (and css, when the guest
            // has MCSSE).
            let report = CRW.channelPathReport(
                guestChpid, erc: erc, solicited: false, multipleCSS: usesMultipleCSS)
            if crwQueue.enqueue(report, cssid: guestChpid.cssid) {
                stats.crwsQueued += report.count
                reports.append((guestChpid, report.count, report.count))
                forwarded = report[0]
            } else {
                stats.crwsLost += report.count
                lost = true
            }
        }
        return GuestPathChange(
            guest: name, guestChpid: guestChpid, hostChpid: change.chpid, change: kind, strategy: strategy,
            devices: reached.count, visible: visible, notifications: notifications, crw: forwarded, crwLost: lost)
    }

    /// The ERC a Linux host with vfio-ccw puts in the guest's CRW for the machine's unsolicited
    /// channel-path report `erc`, or nil when the guest is told nothing.
    ///
    /// Follows `chp_process_crw` (drivers/s390/cio/chp.c): ERC 2 (initialized) and 4 (installed
    /// parameters) become `chsc_chp_online`, ERC 6 and 7 (permanent error) `chsc_chp_offline`,
    /// every other ERC (3, a temporary error, among them) is only logged; then
    /// `vfio_ccw_chp_event` (vfio_ccw_drv.c) queues `CRW_ERC_INIT` (2) on `CHP_ONLINE` and
    /// `CRW_ERC_PERRN` (6) on `CHP_OFFLINE`. Both chsc functions return early while the host has
    /// the chpid varied offline (`chp_get_status(chpid) <= 0`), which the caller checks.
    static func forwardedERC(for erc: ErrorRecoveryCode) -> ErrorRecoveryCode? {
        switch erc {
        case .initialized, .installedParameters: return .initialized
        case .permanentErrorNotInitialized, .permanentErrorInitialized: return .permanentErrorNotInitialized
        default: return nil
        }
    }

    // MARK: Guest instructions

    mutating func storeSubchannel(_ id: SubchannelID, host: Subsystem) -> StoreSubchannelResult {
        stats.guestStoreSubchannels += 1
        guard var device = devices[id] else { return StoreSubchannelResult(cc: 3, schib: nil) }
        var schib = SCHIB()
        if let hostID = device.host, let hostSCHIB = host.subchannel(hostID)?.schib {
            if strategy != .perDevice {
                // Passthrough STSCH: the host's current masks (per-device keeps what its
                // notifications brought in).
                stats.schibRefreshes += 1
                device.copyHostMasks(hostSCHIB.pmcw)
            }
            schib = hostSCHIB
        } else {
            schib.pmcw.isEnabled = true
        }
        var pmcw = schib.pmcw
        pmcw.devno = device.devno
        pmcw.deviceNumberValid = true
        pmcw.pim = device.pim
        pmcw.pam = device.pam
        pmcw.pom = device.pom
        pmcw.pnom = device.pnom
        pmcw.lpum = device.lpum
        pmcw.lpm = device.lpm
        var slots: UInt64 = 0
        for (slot, chpid) in device.chpids.enumerated() { slots |= UInt64(chpid.chpid) << UInt64(56 - 8 * slot) }
        pmcw.chpids = ChannelPathSlots(rawValue: slots)
        schib.pmcw = pmcw
        schib.scsw.pathNotOperational = device.pnom != 0
        device.unobserved = 0
        device.untold = 0
        devices[id] = device
        return StoreSubchannelResult(cc: 0, schib: schib)
    }

    mutating func storeCRW() -> StoreCRWResult {
        stats.guestStoreCRWs += 1
        let result = crwQueue.store()
        guard result.cc == 0, !reports.isEmpty else { return result }
        if reports[0].left == reports[0].words {
            // The report's first word: the guest now knows this chpid changed.
            let chpid = reports[0].chpid
            for (id, device) in devices where device.untold > 0 && device.chpids.contains(chpid) {
                devices[id]!.untold = 0
            }
        }
        reports[0].left -= 1
        if reports[0].left == 0 { reports.removeFirst() }
        return result
    }
}

extension GuestDevice {
    mutating func copyHostMasks(_ pmcw: PMCW) {
        pam = pmcw.pam
        pom = pmcw.pom
        pnom = pmcw.pnom
        lpum = pmcw.lpum
    }

    /// The same copy from the masks a host change carries.
    mutating func copyHostMasks(_ masks: AffectedSubchannel) {
        pam = masks.pam
        pom = masks.pom
        pnom = masks.pnom
        lpum = masks.lpum
    }
}
