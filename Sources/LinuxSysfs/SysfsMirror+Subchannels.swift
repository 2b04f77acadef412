// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import Dispatch

#if canImport(Glibc)
import Glibc
#endif

/// Reading subchannels: one subchannel's attributes, a path's members (on several threads
/// when there are many), and how Linux's masks become the model's.
extension SysfsMirror {
    /// When a subchannel's `vpm` is read along with its `pimpampom`.
    enum VPMReading {
        /// Always (the sweep, a named subchannel, the members of a varied path: path
        /// verification after a vary moves `vpm` while `pimpampom` stays).
        case always
        /// Only when the masks changed (the members of a path a channel report names: half
        /// the files for the tens of thousands that did not change).
        case whenMasksChange
    }

    /// Reads one subchannel's `pimpampom`, `vpm`, `chpids` and device `online`; sets its masks in
    /// `working` and returns its id when they changed. A reading that the masks cannot
    /// express (PIM, chpids, device or `online` changed) sets `layoutChanged`. With `full`
    /// false (the members of a path named by a report or a write) only `pimpampom` and, as
    /// `vpm` says, `vpm`: what a channel report changes; `chpids` and the device are the
    /// sweep's to check. Written to allocate nothing but the file name: a path's re-read does
    /// this for every one of its (tens of thousands of) subchannels.
    func readSubchannel(
        _ index: Int, into working: inout Subsystem, full: Bool, vpm: VPMReading = .always
    ) -> SubchannelID? {
        subchannelReads += 1
        let sch = working.subchannels[index]
        guard sch.type == .io else { return nil }  // CHSC, EADM: nothing that changes
        let css = cssDirectories[sch.id.cssid] ?? AT_FDCWD
        let relative = css == AT_FDCWD ? paths.subchannel(sch.id) : SysfsPaths.subchannelName(sch.id)
        let masksRead: Bool
        if css == AT_FDCWD {
            masksRead = readFields(relative + "/pimpampom", expected: 3, id: sch.id, at: css)
        } else {
            masksRead = readMasks(sch.id, at: css)
        }
        guard masksRead else { return nil }
        let linuxPIM = fields[0]
        let linuxPAM = fields[1]
        let linuxPOM = fields[2]
        if full {
            let pmcw = sch.schib.pmcw
            let count = linuxPIM.nonzeroBitCount
            guard count > 0, pmcw.pim == UInt8(truncatingIfNeeded: 0xff << (8 - count)) else {
                layoutChanged = true
                return nil
            }
            guard readFields(relative + "/chpids", expected: 8, id: sch.id, at: css) else { return nil }
            var position = 0
            for slot in 0..<8 where linuxPIM & (0x80 >> slot) != 0 {
                if pmcw.chpids[position] != UInt8(fields[slot]) {
                    layoutChanged = true
                    return nil
                }
                position += 1
            }
            if let device = deviceDirectories[index] {
                switch SysfsFiles.read(at: css, relative + "/" + device + "/online", into: buffer, checkType: false) {
                case .missing:
                    layoutChanged = true  // the device went
                    return nil
                case .failed(let code):
                    noteOnce(
                        "reading \(paths.subchannel(sch.id))/\(device)/online: \(SysfsFiles.describe(code))",
                        kind: .unreadable)
                case .bytes(let n):
                    if (n > 0 && buffer[0] == 0x31) != sch.isOnline {
                        layoutChanged = true  // set on- or offline: the model holds it (and ENA) per record
                        return nil
                    }
                }
            } else {
                let dir = paths.subchannel(sch.id)
                if let names = try? SysfsFiles.entries(dir),
                    names.contains(where: { parseBusID($0) != nil && SysfsFiles.isDirectory(dir + "/" + $0) })
                {
                    layoutChanged = true  // a device appeared
                    return nil
                }
            }
        }
        let linuxVPM = vpm == .always ? readVPM(sch.id, at: css) : nil
        return apply(
            LinuxMasks(pim: linuxPIM, pam: linuxPAM, pom: linuxPOM, vpm: linuxVPM), to: index, into: &working,
            css: css)
    }

    /// A subchannel's `pimpampom` and `vpm` as Linux shows them: slot `s` is bit `0x80 >> s`
    /// of each, slots in `chpids` order (drivers/s390/cio/device.c, `pimpampom_show`,
    /// `vpm_show`). `vpm` nil: not read.
    struct LinuxMasks {
        var pim: Int
        var pam: Int
        var pom: Int
        var vpm: Int?
    }

    /// Sets subchannel `index`'s masks in `working` from Linux's, packed to the model's
    /// positions (API/linux-sysfs.md), and returns its id when they changed. `vpm` not read
    /// is read now (in `css`) when the masks moved, else the last one kept. A PIM that
    /// is not the model's sets `layoutChanged`.
    private func apply(
        _ masks: LinuxMasks, to index: Int, into working: inout Subsystem, css: Int32
    ) -> SubchannelID? {
        let sch = working.subchannels[index]
        let pmcw = sch.schib.pmcw
        let count = masks.pim.nonzeroBitCount
        guard count > 0, pmcw.pim == UInt8(truncatingIfNeeded: 0xff << (8 - count)) else {
            layoutChanged = true
            return nil
        }
        // Linux's slots with their PIM bit set, moved to positions 0…count-1 (API/linux-sysfs.md).
        var pam: UInt8 = 0
        var pom: UInt8 = 0xff
        var lpm: UInt8 = 0
        var position = 0
        for slot in 0..<8 where masks.pim & (0x80 >> slot) != 0 {
            let bit: UInt8 = 0x80 >> UInt8(position)
            if masks.pam & (0x80 >> slot) != 0 { pam |= bit }
            if masks.pom & (0x80 >> slot) == 0 { pom &= ~bit }
            let chpid = ChannelPathID(cssid: sch.id.cssid, chpid: pmcw.chpids[position])
            if !offline[Int(chpid.rawValue)] { lpm |= bit }
            position += 1
        }
        if index < linuxPIMs.count { linuxPIMs[index] = UInt8(truncatingIfNeeded: masks.pim) }
        let moved = pam != pmcw.pam || pom != pmcw.pom || lpm != pmcw.lpm
        // `vpm`, as the kernel states it (00 for a device that is not online); one that cannot
        // be read keeps its last value.
        var vpm = sch.verifiedPathMask
        if let linuxVPM = masks.vpm ?? (moved ? readVPM(sch.id, at: css) : nil) {
            var packed: UInt8 = 0
            var position = 0
            for slot in 0..<8 where masks.pim & (0x80 >> slot) != 0 {
                if linuxVPM & (0x80 >> slot) != 0 { packed |= 0x80 >> UInt8(position) }
                position += 1
            }
            vpm = packed
        }
        guard moved || vpm != sch.verifiedPathMask else { return nil }
        try? working.setObservedMasks(sch.id, pam: pam, pom: pom, lpm: lpm, vpm: vpm)
        return sch.id
    }

    /// The sweep's reading of subchannel `index` while the kernel log is followed: its `vpm`,
    /// packed with Linux's PIM as last read and compared with the view's, and its ccw device's
    /// `online`; true (read it whole) when either moved, cannot be read, or the PIM to pack
    /// with is not known. These are the subchannel files that move without a channel report
    /// (which the kernel logs) or a chpid change (which the tick sees):
    /// - `vpm`: path verification (drivers/s390/cio/device_pgid.c) resets and sets it, also
    ///   after an I/O found a path not operational (the channel subsystem clears the path's
    ///   POM bit then, with no report: `pimpampom` is read with the rest when `vpm` moved);
    /// - `online`: a process (`chccwdev`) or a driver (a ccwgroup driver for its members) sets
    ///   a device on- or offline without any log line (device.c `ccw_device_set_online`), and
    ///   `vpm` is not cleared when a device goes offline.
    ///
    /// Of a device that is offline only `online` is read: path verification runs for an online
    /// device only (device_fsm.c: in `DEV_STATE_OFFLINE` a verify event only re-evaluates the
    /// subchannel, `ccw_device_offline_verify`; a boxed device verifies only when online) or
    /// while it is set online, which `online` shows. So its `vpm` cannot move while it stays
    /// offline, and the sweep reads one file instead of two for it (issue 25: the reads per
    /// second are the idle figure).
    func sweptFilesMoved(_ index: Int, in working: Subsystem) -> Bool {
        let sch = working.subchannels[index]
        guard sch.type == .io else { return false }  // CHSC, EADM: nothing that changes
        let css = cssDirectory(sch)
        if !sch.isOnline, deviceDirectories[index] != nil, let device = sch.deviceID, css != AT_FDCWD {
            sweepOnlineReads += 1
            return reader.online(sch.id, device: device, at: css) != false
        }
        sweepVPMReads += 1
        let pim = index < linuxPIMs.count ? Int(linuxPIMs[index]) : 0
        guard pim != 0, css != AT_FDCWD, let linuxVPM = reader.vpm(sch.id, at: css) else { return true }
        var packed: UInt8 = 0
        var position = 0
        for slot in 0..<8 where pim & (0x80 >> slot) != 0 {
            if linuxVPM & (0x80 >> slot) != 0 { packed |= 0x80 >> UInt8(position) }
            position += 1
        }
        guard packed == sch.verifiedPathMask else { return true }
        guard deviceDirectories[index] != nil, let device = sch.deviceID else { return false }
        sweepOnlineReads += 1
        return reader.online(sch.id, device: device, at: css) != sch.isOnline
    }

    /// `vpm` (one hex byte) of subchannel `id`, nil when it cannot be read.
    private func readVPM(_ id: SubchannelID, at css: Int32) -> Int? {
        if css != AT_FDCWD { return reader.vpm(id, at: css) }
        guard
            case .bytes(let n) = SysfsFiles.read(
                at: css, paths.subchannel(id) + "/vpm", into: buffer, checkType: false),
            SysfsFiles.hexBytes(UnsafeRawBufferPointer(buffer), count: n, into: &fields) == 1
        else { return nil }
        return fields[0]
    }

    /// A vary moved a path's `lpm` bit (Linux derives `lpm` from the chpid's logical state,
    /// `chp_is_online`): sets it in subchannel `index` without reading anything; its id when
    /// it changed.
    func deriveLPM(_ index: Int, into working: inout Subsystem) -> SubchannelID? {
        let sch = working.subchannels[index]
        guard sch.type == .io else { return nil }
        let pmcw = sch.schib.pmcw
        var lpm: UInt8 = 0
        for position in 0..<pmcw.pim.nonzeroBitCount {
            let chpid = ChannelPathID(cssid: sch.id.cssid, chpid: pmcw.chpids[position])
            if !offline[Int(chpid.rawValue)] { lpm |= 0x80 >> UInt8(position) }
        }
        guard lpm != pmcw.lpm else { return nil }
        try? working.setObservedMasks(sch.id, pam: pmcw.pam, pom: pmcw.pom, lpm: lpm, vpm: sch.verifiedPathMask)
        return sch.id
    }

    /// Reads the `pimpampom` (and `vpm` as asked) of a path's `members` into `working`, on
    /// `readers` threads when there are many; the ids of those whose masks changed.
    func readMembers(
        _ members: [(index: Int, vpm: VPMReading)], into working: inout Subsystem, readers: Int
    ) -> [SubchannelID] {
        var changed: [SubchannelID] = []
        let readings = readers > 1 && members.count >= Self.parallelThreshold ? readInParallel(members, readers) : nil
        for (position, member) in members.enumerated() {
            let id: SubchannelID?
            if let masks = readings?[position] {
                subchannelReads += 1
                let sch = working.subchannels[member.index]
                id = apply(masks, to: member.index, into: &working, css: cssDirectory(sch))
            } else {
                // Read here: not read in parallel, or it failed there (this says why, once).
                id = readSubchannel(member.index, into: &working, full: false, vpm: member.vpm)
            }
            if let id { changed.append(id) }
        }
        return changed
    }

    /// Threads that read a path's members: the machine's CPUs, at most 4 (the reads are
    /// system calls on sysfs; more threads than that contend on the kernel's locks).
    static let parallelReaders = min(max(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), 1), 4)
    /// Below this many members one thread reads them (starting threads costs more).
    static let parallelThreshold = 1024

    private func cssDirectory(_ sch: Subchannel) -> Int32 { cssDirectories[sch.id.cssid] ?? AT_FDCWD }

    /// Reads `pimpampom` (and `vpm` as asked) of `members` on `readers` threads, in contiguous
    /// shares; nil for a member whose files could not be read (read again by the caller,
    /// which logs why) or that is not an I/O subchannel.
    private func readInParallel(_ members: [(index: Int, vpm: VPMReading)], _ readers: Int) -> [LinuxMasks?] {
        let records = subsystem.subchannels
        let ids = members.map { records[$0.index].type == .io ? records[$0.index].id : nil }
        let wantVPM = members.map { $0.vpm == .always }
        let directories = cssDirectories
        let results = UnsafeMutableBufferPointer<LinuxMasks?>.allocate(capacity: members.count)
        results.initialize(repeating: nil)
        defer { results.deallocate() }
        let readers = min(readers, members.count)
        let share = (members.count + readers - 1) / readers
        nonisolated(unsafe) let output = results
        DispatchQueue.concurrentPerform(iterations: readers) { reader in
            let reading = MaskReader()
            for position in min(members.count, reader * share)..<min(members.count, (reader + 1) * share) {
                guard let id = ids[position], let css = directories[id.cssid] else { continue }
                output[position] = reading.read(id, at: css, vpm: wantVPM[position])
            }
        }
        return Array(results)
    }

    /// `readFields("0.S.XXXX/pimpampom", expected: 3, …)` without building a String.
    private func readMasks(_ id: SubchannelID, at css: Int32) -> Bool {
        if let masks = reader.masks(id, at: css) {
            fields[0] = masks.pim
            fields[1] = masks.pam
            fields[2] = masks.pom
            return true
        }
        // The slow path says what went wrong (and notes a directory that went).
        return readFields(SysfsPaths.subchannelName(id) + "/pimpampom", expected: 3, id: id, at: css)
    }

    /// Reads an attribute's hex fields into `fields`; false (logged once) when it cannot be
    /// read or parsed. A missing file whose directory is gone marks the layout as changed.
    private func readFields(_ path: String, expected: Int, id: SubchannelID, at directory: Int32) -> Bool {
        switch SysfsFiles.read(at: directory, path, into: buffer, checkType: false) {
        case .missing:
            if !SysfsFiles.isDirectory(paths.subchannel(id)) {
                layoutChanged = true
            } else {
                noteOnce(
                    "\(paths.subchannel(id))/\(path.split(separator: "/").last!): missing, keeping the subchannel's last state",
                    kind: .missing)
            }
            return false
        case .failed(let code):
            noteOnce(
                "reading \(paths.subchannel(id))/\(path.split(separator: "/").last!): \(SysfsFiles.describe(code)), keeping the subchannel's last state",
                kind: .unreadable)
            return false
        case .bytes(let n):
            guard SysfsFiles.hexBytes(UnsafeRawBufferPointer(buffer), count: n, into: &fields) == expected else {
                noteOnce(
                    "\(paths.subchannel(id))/\(path.split(separator: "/").last!): malformed, keeping the subchannel's last state",
                    kind: .malformed)
                return false
            }
            return true
        }
    }

    /// Per css: its directory, open while a reading runs (opened anew each time, so that a
}
