// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import Dispatch

#if canImport(Glibc)
import Glibc
#endif

/// The reading side of the linux-sysfs backend: the last view of the tree, and the targeted
/// readers that bring it up to date (API/linux-sysfs.md, "Change detection"). It runs off the
/// event loop, one caller at a time (`SysfsFollower` holds its lock); the loop only receives the
/// `ObservedUpdate`s it computes.
///
/// What it reads, and what each costs:
/// - `tick()`: every channel path's attributes (at most 256 directories per css); a path that
///   changed is reported at once (with the `lpm` a vary implies) and every subchannel of it is
///   queued (the model's chpid -> subchannels index);
/// - `readQueuedMembers(count:)`: the next queued subchannels' `pimpampom`, on several threads;
/// - `sweep(count:)`: the next `count` subchannels in id order, round robin; at the end of a
///   round, the css directory's listing, to find entries that came or went;
/// - `reread(paths:subchannels:)`: what inotify, the kernel log or a write names (a write
///   reads its path's subchannels before it returns; the others queue them);
/// - `fullRead()`: the whole tree, only when the layout changed (entries came or went, a PIM,
///   chpid list, device or `online` changed), which the model cannot express as masks.
///
/// A file that cannot be read keeps its last value, and the failure is logged once (per
/// message) until the tree reads cleanly again; nothing is reported for it.
final class SysfsMirror {
    let root: String
    private(set) var subsystem: Subsystem
    private(set) var details: [ChannelPathID: ChannelPathDetails]
    private(set) var generation: UInt64 = 0
    /// Per record index: the ccw device directory's name, nil without a device.
    private var deviceDirectories: [String?] = []
    private var listings: [UInt8: [String]] = [:]
    private var placeholders: Set<ChannelPathID> = []
    /// Devices under `cssN/defunct/`, as of the last full reading (its entries are part of
    /// the listing, so that one coming or going makes a full reading).
    private(set) var orphans: [OrphanedDevice] = []
    /// The record index the sweep reads next, and the rounds it has completed.
    private(set) var sweepCursor = 0
    private(set) var sweepRounds = 0
    /// Subchannel directories read so far (all kinds of reading but the full one), for tests.
    private(set) var subchannelReads = 0
    /// The last targeted reading found a layout change: read the whole tree.
    private var layoutChanged = false
    /// Messages already logged, so that a failing file is logged once, not every tick.
    private var logged: Set<String> = []
    var log: @Sendable (_ warning: Bool, _ message: String) -> Void = { _, _ in }
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
    private var fields = [Int](repeating: 0, count: 9)

    init(root: String, observation: SysfsObservation, subsystem: Subsystem) {
        self.root = root
        self.subsystem = subsystem
        self.details = observation.details
        install(observation, subsystem)
        for problem in observation.problems { logged.insert(problem) }  // logged at start-up
    }

    deinit {
        buffer.deallocate()
    }

    private func install(_ observation: SysfsObservation, _ newer: Subsystem) {
        subsystem = newer
        details = observation.details
        listings = observation.listings
        placeholders = observation.placeholders
        orphans = observation.orphans
        deviceDirectories = newer.subchannels.map { observation.deviceDirectories[$0.id] }
        clearQueuedMembers()  // read just now, and their indexes may have moved
        if sweepCursor >= deviceDirectories.count { sweepCursor = 0 }
    }

    // MARK: Readings

    /// Every channel path's attributes, and the subchannels of those that changed.
    func tick() -> ObservedUpdate? {
        reread(paths: subsystem.channelPaths.map(\.id), subchannels: [])
    }

    /// The next `count` subchannels, round robin; the listing when a round ends.
    func sweep(count: Int) -> ObservedUpdate? {
        let total = subsystem.subchannels.count
        var indexes: [Int] = []
        var endOfRound = false
        if total > 0 {
            for _ in 0..<min(count, total) {
                indexes.append(sweepCursor)
                sweepCursor += 1
                if sweepCursor >= total {
                    sweepCursor = 0
                    sweepRounds += 1
                    endOfRound = true
                    break
                }
            }
        } else {
            sweepRounds += 1
            endOfRound = true
        }
        if endOfRound { checkListing() }
        return reread(paths: [], subchannelIndexes: indexes, write: nil)
    }

    /// Re-reads the named paths and subchannels; the masks of every subchannel of `paths`
    /// when `withMembers` (a channel report or a write names a path), else only of those whose
    /// path changed.
    func reread(
        paths: [ChannelPathID], subchannels: [SubchannelID], withMembers: Bool = false, write: ChannelPathID? = nil
    ) -> ObservedUpdate? {
        var indexes: [Int] = []
        for id in subchannels {
            let index = subsystem.subchannelIndex(atOrAfter: id)
            if index < subsystem.subchannels.count, subsystem.subchannels[index].id == id { indexes.append(index) }
        }
        return reread(paths: paths, subchannelIndexes: indexes, write: write, withMembers: withMembers)
    }

    /// The subchannels numbered `schno` in every subchannel set and css.
    func indexes(ofNumber schno: UInt16) -> [SubchannelID] {
        subsystem.cssids.flatMap { cssid in
            (0...3).map { SubchannelID(cssid: cssid, ssid: UInt8($0), schno: schno) }
        }.filter { subsystem.subchannel($0) != nil }
    }

    /// A write to `chpid` returned: its attributes and all of its subchannels, whether or not
    /// the attributes changed (a configure changes the PAM that `pimpampom` shows).
    func rereadAfterWrite(_ chpid: ChannelPathID) -> ObservedUpdate? {
        reread(paths: [chpid], subchannels: [], withMembers: true, write: chpid)
    }

    /// Lists the css directories; a difference from the last full reading means entries came
    /// or went.
    func checkListing() {
        for (cssid, names) in listings {
            let dir = root + "/devices/css" + String(cssid, radix: 16)
            do throws(BackendError) {
                guard let now = try SysfsObservation.listing(dir) else {
                    noteOnce("\(dir) has gone: keeping the last view until it is back", kind: .missing)
                    return
                }
                if now != names { layoutChanged = true }
            } catch {
                noteOnce("listing \(dir) failed, keeping the last view: \(error)", kind: .unreadable)
                return
            }
        }
        recovered()
    }

    /// Lists the tree and reads it whole if entries came or went.
    func layoutCheck() -> ObservedUpdate? {
        checkListing()
        return layoutChanged ? fullRead() : nil
    }

    /// Reads the whole tree; the view is replaced by it.
    func fullRead(write: ChannelPathID? = nil) -> ObservedUpdate? {
        layoutChanged = false
        let observation: SysfsObservation
        let newer: Subsystem
        do throws(BackendError) {
            observation = try SysfsObservation.read(root: root, previous: subsystem)
            newer = try observation.subsystem()
        } catch {
            noteOnce("reading the tree failed, keeping the last view: \(error)", kind: .unreadable)
            return nil
        }
        for problem in observation.problems { noteOnce(problem) }
        let same = subsystem.hasSameLayout(as: newer)
        let changes: [PathChange]
        if same {
            changes = subsystem.pathChanges(to: newer)
        } else {
            // Devices came or went: only the paths' own changes can be compared.
            changes = newer.channelPaths.compactMap { after in
                guard let before = subsystem.channelPath(after.id), before != after else { return nil }
                return PathChange(before: before, after: after, affected: [], crws: [], crwsLost: 0)
            }
        }
        let detailsChanged = details != observation.details || orphans != observation.orphans
        install(observation, newer)
        guard !same || !changes.isEmpty || detailsChanged || write != nil else { return nil }
        generation += 1
        return ObservedUpdate(
            generation: generation, subsystem: subsystem, details: details, changes: changes, write: write,
            layoutChanged: !same, orphans: orphans)
    }

    private func reread(
        paths: [ChannelPathID], subchannelIndexes: [Int], write: ChannelPathID?, withMembers: Bool = false
    ) -> ObservedUpdate? {
        openCSSDirectories()
        defer { closeCSSDirectories() }
        var working = subsystem
        var newDetails = details
        var changedPaths: [ChannelPathID] = []
        for id in paths where !placeholders.contains(id) {
            guard let last = working.channelPath(id) else { continue }
            let dir = root + "/devices/css" + String(id.cssid, radix: 16) + "/" + SysfsBackend.pathDirectory(id)
            let reading = SysfsObservation.readChannelPath(id, at: dir, last: last)
            if reading.missing {
                let css = root + "/devices/css" + String(id.cssid, radix: 16)
                if SysfsFiles.isDirectory(css) {
                    noteOnce("\(dir) has gone: keeping the path's last state", kind: .missing)
                } else {
                    noteOnce("\(css) has gone: keeping the last view until it is back", kind: .missing)
                }
                layoutChanged = true
                continue
            }
            for problem in reading.problems { noteOnce(problem) }
            let path = reading.path
            if path.type != last.type || path.shared != last.shared || path.pchid != last.pchid
                || path.vary != last.vary
                || path.configure != last.configure
            {
                try? working.setObservedPath(path)
                changedPaths.append(id)
            }
            if newDetails[id] != reading.details {
                newDetails[id] = reading.details
                if !changedPaths.contains(id) { changedPaths.append(id) }
            }
        }
        noteOffline(working)
        var changedSubchannels: [SubchannelID] = []
        var seen = Set<Int>()
        for index in subchannelIndexes where seen.insert(index).inserted {
            if let id = readSubchannel(index, into: &working, full: true) { changedSubchannels.append(id) }
        }
        // The members of a changed or named path: `pimpampom` is what a path change alters.
        // A write reads them now (its reply carries what it did); otherwise the path's own
        // change goes out at once, with the `lpm` a vary implies, and its members are queued
        // for `readQueuedMembers`, so that the path's event never waits for tens of thousands
        // of files.
        let varied = Set(
            changedPaths.filter { id in
                subsystem.channelPath(id)?.vary != working.channelPath(id)?.vary
            })
        var writeMembers: [(index: Int, vpm: VPMReading)] = []
        for id in withMembers ? paths : changedPaths {
            let members = working.subchannels(using: id)
            for position in members.indices {
                let index = members.recordIndex(at: position)
                if write != nil {
                    if seen.insert(index).inserted { writeMembers.append((index, .always)) }
                    continue
                }
                guard !seen.contains(index) else { continue }
                if varied.contains(id), let changed = deriveLPM(index, into: &working) {
                    changedSubchannels.append(changed)
                }
                queueMember(index, vpm: changedPaths.contains(id) ? .always : .whenMasksChange)
            }
            // What its members' changes are part of, until they are read: the path's change.
            if write == nil, changedPaths.contains(id), let before = subsystem.channelPath(id) {
                causes[id] = (before, queuedMembers.count)
            }
        }
        changedSubchannels += readMembers(writeMembers, into: &working, readers: Self.parallelReaders)
        if layoutChanged {
            checkListing()
            if layoutChanged { return fullRead(write: write) }
        }
        guard !changedPaths.isEmpty || !changedSubchannels.isEmpty || write != nil else { return nil }
        let changes = subsystem.pathChanges(to: working, subchannels: changedSubchannels, paths: changedPaths)
        subsystem = working
        details = newDetails
        generation += 1
        return ObservedUpdate(
            generation: generation, subsystem: subsystem, details: details, changes: changes, write: write,
            orphans: orphans)
    }

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
    private func readSubchannel(
        _ index: Int, into working: inout Subsystem, full: Bool, vpm: VPMReading = .always
    ) -> SubchannelID? {
        subchannelReads += 1
        let sch = working.subchannels[index]
        guard sch.type == .io else { return nil }  // CHSC, EADM: nothing that changes
        let css = cssDirectories[sch.id.cssid] ?? AT_FDCWD
        let relative = css == AT_FDCWD ? subchannelDirectory(sch.id) : subchannelName(sch.id)
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
                        "reading \(subchannelDirectory(sch.id))/\(device)/online: \(SysfsFiles.describe(code))",
                        kind: .unreadable)
                case .bytes(let n):
                    if (n > 0 && buffer[0] == 0x31) != pmcw.isEnabled {
                        layoutChanged = true  // set on- or offline: the model holds ENA per record
                        return nil
                    }
                }
            } else {
                let dir = subchannelDirectory(sch.id)
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

    /// `vpm` (one hex byte) of subchannel `id`, nil when it cannot be read.
    private func readVPM(_ id: SubchannelID, at css: Int32) -> Int? {
        if css != AT_FDCWD { return reader.vpm(id, at: css) }
        guard
            case .bytes(let n) = SysfsFiles.read(
                at: css, subchannelDirectory(id) + "/vpm", into: buffer, checkType: false),
            SysfsFiles.hexBytes(UnsafeRawBufferPointer(buffer), count: n, into: &fields) == 1
        else { return nil }
        return fields[0]
    }

    /// A vary moved a path's `lpm` bit (Linux derives `lpm` from the chpid's logical state,
    /// `chp_is_online`): sets it in subchannel `index` without reading anything; its id when
    /// it changed.
    private func deriveLPM(_ index: Int, into working: inout Subsystem) -> SubchannelID? {
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

    // MARK: Members of a re-read path

    /// Members of re-read paths whose `pimpampom` is still to be read (record indexes), in the
    /// order queued, from `queuedHead` on; a full reading empties it (it read them all, and
    /// indexes move). Positions are into `queuedMembers`, whose read front is dropped now and
    /// then (`compactQueue`), so that a path reported again and again does not grow it.
    private var queuedMembers: [(index: Int, vpm: VPMReading)] = []
    private var queuedHead = 0
    /// Record index -> position in `queuedMembers`, for those not read yet.
    private var queued: [Int: Int] = [:]
    /// Per path whose own change was published before its members were read: the path as it
    /// was before that change, and the position up to which its members are queued. Their
    /// mask changes are published as part of that change (a `standby`, not a `permanent-error`
    /// for the PAM bits the kernel clears with it), as they were when read at once.
    private var causes: [ChannelPathID: (before: ChannelPath, until: Int)] = [:]

    /// Members still to be read.
    var queuedMemberCount: Int { queuedMembers.count - queuedHead }

    /// Queues `index`; one already queued keeps its place and reads `vpm` if either asks.
    private func queueMember(_ index: Int, vpm: VPMReading) {
        if let position = queued[index] {
            if vpm == .always { queuedMembers[position].vpm = .always }
            return
        }
        queued[index] = queuedMembers.count
        queuedMembers.append((index, vpm))
    }

    private func clearQueuedMembers() {
        queuedMembers = []
        queuedHead = 0
        queued = [:]
        causes = [:]
    }

    /// Drops the read front of the queue once it is most of it.
    private func compactQueue() {
        guard queuedHead >= Self.parallelThreshold, queuedHead * 2 >= queuedMembers.count else { return }
        let shift = queuedHead
        queuedMembers.removeFirst(shift)
        queuedHead = 0
        for (index, position) in queued { queued[index] = position - shift }
        for (id, cause) in causes { causes[id] = (cause.before, cause.until - shift) }
    }

    /// Reads the next `count` queued members (`pimpampom`, and `vpm` as queued), on up to
    /// `readers` threads when there are many, and returns the update for those that changed.
    /// A slice whose reading finds a layout change ends in a full reading; if that fails (the
    /// tree went), the slice is not queued again: the sweep reads it within its interval once
    /// the tree is back.
    func readQueuedMembers(count: Int, readers: Int = SysfsMirror.parallelReaders) -> ObservedUpdate? {
        guard queuedMemberCount > 0 else { return nil }
        let start = queuedHead
        let end = min(queuedHead + count, queuedMembers.count)
        let slice = Array(queuedMembers[start..<end])
        queuedHead = end
        for member in slice { queued[member.index] = nil }
        let sliceCauses = causes.filter { $0.value.until > start }
        causes = causes.filter { $0.value.until > end }
        if queuedHead == queuedMembers.count { clearQueuedMembers() } else { compactQueue() }
        openCSSDirectories()
        defer { closeCSSDirectories() }
        var working = subsystem
        noteOffline(working)
        let changed = readMembers(slice, into: &working, readers: readers)
        if layoutChanged {
            checkListing()
            if layoutChanged { return fullRead() }
        }
        guard !changed.isEmpty else { return nil }
        let changes = subsystem.pathChanges(to: working, subchannels: changed, paths: []).map { change in
            guard let cause = sliceCauses[change.chpid] else { return change }
            return PathChange(
                before: cause.before, after: change.after, affected: change.affected, crws: change.crws,
                crwsLost: change.crwsLost)
        }
        subsystem = working
        generation += 1
        return ObservedUpdate(
            generation: generation, subsystem: subsystem, details: details, changes: changes, write: nil,
            orphans: orphans)
    }

    /// Reads the `pimpampom` (and `vpm` as asked) of a path's `members` into `working`, on
    /// `readers` threads when there are many; the ids of those whose masks changed.
    private func readMembers(
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

    /// The serial reads' allocation-free reader (the parallel ones have one per thread).
    private let reader = MaskReader()

    /// `readFields("0.S.XXXX/pimpampom", expected: 3, …)` without building a String.
    private func readMasks(_ id: SubchannelID, at css: Int32) -> Bool {
        if let masks = reader.masks(id, at: css) {
            fields[0] = masks.pim
            fields[1] = masks.pam
            fields[2] = masks.pom
            return true
        }
        // The slow path says what went wrong (and notes a directory that went).
        return readFields(subchannelName(id) + "/pimpampom", expected: 3, id: id, at: css)
    }

    /// Per chpid (`ChannelPathID.rawValue`): varied offline, as of the reading in progress.
    private var offline = [Bool](repeating: false, count: 0x10000)

    private func noteOffline(_ subsystem: Subsystem) {
        for path in subsystem.channelPaths { offline[Int(path.id.rawValue)] = path.vary == .offline }
    }

    /// Reads an attribute's hex fields into `fields`; false (logged once) when it cannot be
    /// read or parsed. A missing file whose directory is gone marks the layout as changed.
    private func readFields(_ path: String, expected: Int, id: SubchannelID, at directory: Int32) -> Bool {
        switch SysfsFiles.read(at: directory, path, into: buffer, checkType: false) {
        case .missing:
            if !SysfsFiles.isDirectory(subchannelDirectory(id)) {
                layoutChanged = true
            } else {
                noteOnce(
                    "\(subchannelDirectory(id))/\(path.split(separator: "/").last!): missing, keeping the subchannel's last state",
                    kind: .missing)
            }
            return false
        case .failed(let code):
            noteOnce(
                "reading \(subchannelDirectory(id))/\(path.split(separator: "/").last!): \(SysfsFiles.describe(code)), keeping the subchannel's last state",
                kind: .unreadable)
            return false
        case .bytes(let n):
            guard SysfsFiles.hexBytes(UnsafeRawBufferPointer(buffer), count: n, into: &fields) == expected else {
                noteOnce(
                    "\(subchannelDirectory(id))/\(path.split(separator: "/").last!): malformed, keeping the subchannel's last state",
                    kind: .malformed)
                return false
            }
            return true
        }
    }

    /// Per css: its directory, open while a reading runs (opened anew each time, so that a
    /// tree that went away is seen as gone, not read through an old descriptor).
    private var cssDirectories: [UInt8: Int32] = [:]

    private func openCSSDirectories() {
        for cssid in subsystem.cssids {
            let fd = open(root + "/devices/css" + String(cssid, radix: 16), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if fd >= 0 { cssDirectories[cssid] = fd }
        }
    }

    private func closeCSSDirectories() {
        for fd in cssDirectories.values { close(fd) }
        cssDirectories = [:]
    }

    /// `0.S.XXXX`.
    private func subchannelName(_ id: SubchannelID) -> String {
        let number = String(id.schno, radix: 16)
        return "0." + String(id.ssid, radix: 16) + "." + String(repeating: "0", count: 4 - number.count) + number
    }

    private func subchannelDirectory(_ id: SubchannelID) -> String {
        let number = String(id.schno, radix: 16)
        return root + "/devices/css" + String(id.cssid, radix: 16) + "/0." + String(id.ssid, radix: 16) + "."
            + String(repeating: "0", count: 4 - number.count) + number
    }

    /// Logs `message` once; with a `kind`, a read error, counted every time (for metrics).
    /// Problems without a kind (a chpid's `configure` that SCLP cannot tell, as in a KVM guest)
    /// are how the machine is, not failed readings.
    private func noteOnce(_ message: String, kind: ReadErrorKind? = nil) {
        if let kind { pendingErrors[kind, default: 0] += 1 }
        if logged.insert(message).inserted { log(true, "sysfs: " + message) }
    }

    /// Kinds of read errors, as `cssd_backend_read_errors_total{kind}` labels them.
    enum ReadErrorKind: String, CaseIterable {
        case missing, unreadable, malformed
    }

    /// Read errors since the last `takeErrors()`.
    private var pendingErrors: [ReadErrorKind: Int] = [:]
    var hasPendingErrors: Bool { !pendingErrors.isEmpty }

    /// The read errors counted since the last call (the follower adds them to its totals).
    func takeErrors() -> [ReadErrorKind: Int] {
        defer { pendingErrors = [:] }
        return pendingErrors
    }

    /// The tree listed cleanly: failures are logged again if they recur.
    private func recovered() {
        if logged.contains(where: {
            $0.contains("has gone") || $0.hasPrefix("listing ") || $0.hasPrefix("reading the tree")
        }) {
            log(true, "sysfs: the tree is readable again")
            logged = logged.filter {
                !($0.contains("has gone") || $0.hasPrefix("listing ") || $0.hasPrefix("reading the tree"))
            }
        }
    }
}
