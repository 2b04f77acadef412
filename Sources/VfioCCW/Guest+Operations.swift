// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

extension Guest {
    // MARK: Ids

    func firstFreeSubchannel(cssid: UInt8, ssid: UInt8) throws(VfioError) -> SubchannelID {
        for schno in 0...0xffff {
            let id = SubchannelID(cssid: cssid, ssid: ssid, schno: UInt16(schno))
            if devices[id] == nil { return id }
        }
        throw .guestSubchannelsExhausted(guest: name, cssid: cssid)
    }

    func checkFree(_ id: SubchannelID, devno: UInt16) throws(VfioError) {
        guard devices[id] == nil else { throw .guestSubchannelInUse(guest: name, id) }
        let device = DeviceID(cssid: id.cssid, ssid: id.ssid, devno: devno)
        if devices.values.contains(where: { $0.id.cssid == id.cssid && $0.id.ssid == id.ssid && $0.devno == devno }) {
            throw .guestDevnoInUse(guest: name, device)
        }
    }

    /// A guest chpid in `cssid` that is neither virtual nor mapped (nor in `avoiding`).
    func firstFreeChpid(cssid: UInt8, avoiding: Set<ChannelPathID>) -> ChannelPathID? {
        let virtual = virtualChpids
        for number in 0...0xff {
            let chpid = ChannelPathID(cssid: cssid, chpid: UInt8(number))
            if !virtual.contains(chpid) && chpidMap[chpid] == nil && !avoiding.contains(chpid) { return chpid }
        }
        return nil
    }

    /// The lowest css other than the virtual one without virtio devices: a home for vfio devices.
    func firstCSSWithoutVirtio() -> UInt8? {
        let virtio = Set(devices.values.filter { $0.host == nil }.map(\.id.cssid))
        return (0...0xfd).lazy.map { UInt8($0) }.first { !virtio.contains($0) }
    }

    // MARK: Host events

    mutating func hostPathChanged(
        _ change: PathChange, devices reached: [SubchannelID], host: Subsystem, bindings: [SubchannelID: Guests.Binding]
    ) -> [GuestPathChange] {
        // Devices on the path, grouped by the guest chpid showing it (one per guest css).
        var byChpid: [ChannelPathID: [SubchannelID]] = [:]
        for id in reached {
            guard let device = devices[id], let slot = device.slot(of: change.chpid, in: chpidMap) else { continue }
            byChpid[device.chpids[slot], default: []].append(id)
        }
        for (guestChpid, hostChpid) in chpidMap where hostChpid == change.chpid && byChpid[guestChpid] == nil {
            if !change.crws.isEmpty { byChpid[guestChpid] = [] }
        }
        var out: [GuestPathChange] = []
        for guestChpid in byChpid.keys.sorted() {
            out.append(deliver(change, on: guestChpid, to: byChpid[guestChpid]!, host: host))
        }
        return out
    }

    private mutating func deliver(_ change: PathChange, on guestChpid: ChannelPathID, to ids: [SubchannelID], host: Subsystem)
        -> GuestPathChange
    {
        stats.hostEvents += 1
        var visible = 0
        var notifications = 0
        for id in ids {
            guard var device = devices[id], let hostID = device.host, let pmcw = host.subchannel(hostID)?.schib.pmcw
            else { continue }
            let now = HostMasks(pmcw)
            let isVisible = now != device.hostSeen
            device.hostSeen = now
            switch strategy {
            case .perDevice:
                // The RFC: every change of the device's host SCHIB raises a notification and
                // the region is read into the guest's SCHIB, visible to the guest or not.
                notifications += 1
                stats.notifications += 1
                stats.schibRefreshes += 1
                device.copyHostMasks(pmcw)
            case .crw, .lazy:
                break
            }
            if isVisible {
                visible += 1
                device.unobserved += 1
                device.untold += 1
            }
            devices[id] = device
        }
        var forwarded: CRW?
        var lost = false
        if strategy == .crw, let first = change.crws.first {
            // The machine's report, with the guest's chpid (and css, when the guest has MCSSE).
            let report = CRW.channelPathReport(
                guestChpid, erc: first.erc, solicited: false, multipleCSS: cssids.count > 1)
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
            guest: name, guestChpid: guestChpid, hostChpid: change.chpid, strategy: strategy, devices: ids.count,
            visible: visible, notifications: notifications, crw: forwarded, crwLost: lost)
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
    /// The slot whose guest chpid shows host chpid `host`.
    func slot(of host: ChannelPathID, in map: [ChannelPathID: ChannelPathID]) -> Int? {
        chpids.firstIndex { map[$0] == host }
    }

    mutating func copyHostMasks(_ pmcw: PMCW) {
        pam = pmcw.pam
        pom = pmcw.pom
        pnom = pmcw.pnom
        lpum = pmcw.lpum
    }
}
