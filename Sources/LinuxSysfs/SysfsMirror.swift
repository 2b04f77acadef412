// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel

#if canImport(Glibc)
import Glibc
#endif

/// The reading side of the linux-sysfs backend: the last view of the tree, and the targeted
/// readers that bring it up to date (API/linux-sysfs.md, "Change detection"). It runs off the
/// event loop, one caller at a time (`SysfsFollower` holds its lock); the loop only receives the
/// `ObservedUpdate`s it computes.
///
/// What it reads, and what each costs:
/// - `tick()`: every channel path's attributes (at most 256 directories per css), then every
///   subchannel of each path whose attributes changed (the model's chpid -> subchannels index);
/// - `sweep(count:)`: the next `count` subchannels in id order, round robin; at the end of a
///   round, the css directory's listing, to find entries that came or went;
/// - `reread(paths:subchannels:)`: what inotify, the kernel log or a write names;
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
        namePointer.deallocate()
    }

    private func install(_ observation: SysfsObservation, _ newer: Subsystem) {
        subsystem = newer
        details = observation.details
        listings = observation.listings
        placeholders = observation.placeholders
        orphans = observation.orphans
        deviceDirectories = newer.subchannels.map { observation.deviceDirectories[$0.id] }
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
        var toRead = subchannelIndexes
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
        for id in withMembers ? paths : changedPaths {
            for member in working.subchannels(using: id) {
                toRead.append(working.subchannelIndex(atOrAfter: member.id))
            }
        }
        noteOffline(working)
        var changedSubchannels: [SubchannelID] = []
        var seen = Set<Int>()
        for (position, index) in toRead.enumerated() where seen.insert(index).inserted {
            // Those of a changed or named path: `pimpampom` is what a path change alters.
            let whole = position < subchannelIndexes.count
            if let id = readSubchannel(index, into: &working, full: whole) { changedSubchannels.append(id) }
        }
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

    /// Reads one subchannel's `pimpampom`, `vpm`, `chpids` and device `online`; sets its masks in
    /// `working` and returns its id when they changed. A reading that the masks cannot
    /// express (PIM, chpids, device or `online` changed) sets `layoutChanged`. With `full`
    /// false (the members of a path named by a report or a write) only `pimpampom`: what a
    /// channel report changes; `chpids` and the device are the sweep's to check. Written to
    /// allocate nothing but the file name: a path's re-read does this for every one of its
    /// (tens of thousands of) subchannels.
    private func readSubchannel(_ index: Int, into working: inout Subsystem, full: Bool) -> SubchannelID? {
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
        let pmcw = sch.schib.pmcw
        let count = linuxPIM.nonzeroBitCount
        guard count > 0, pmcw.pim == UInt8(truncatingIfNeeded: 0xff << (8 - count)) else {
            layoutChanged = true
            return nil
        }
        if full {
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
        // Linux's slots with their PIM bit set, moved to positions 0…count-1 (API/linux-sysfs.md).
        var pam: UInt8 = 0
        var pom: UInt8 = 0xff
        var lpm: UInt8 = 0
        var position = 0
        for slot in 0..<8 where linuxPIM & (0x80 >> slot) != 0 {
            let bit: UInt8 = 0x80 >> UInt8(position)
            if linuxPAM & (0x80 >> slot) != 0 { pam |= bit }
            if linuxPOM & (0x80 >> slot) == 0 { pom &= ~bit }
            let chpid = ChannelPathID(cssid: sch.id.cssid, chpid: pmcw.chpids[position])
            if !offline[Int(chpid.rawValue)] { lpm |= bit }
            position += 1
        }
        // `vpm`, as the kernel states it (00 for a device that is not online); one that cannot
        // be read keeps its last value.
        var vpm = sch.verifiedPathMask
        if case .bytes(let n) = SysfsFiles.read(at: css, relative + "/vpm", into: buffer, checkType: false),
            SysfsFiles.hexBytes(UnsafeRawBufferPointer(buffer), count: n, into: &fields) == 1
        {
            var packed: UInt8 = 0
            var position = 0
            for slot in 0..<8 where linuxPIM & (0x80 >> slot) != 0 {
                if fields[0] & (0x80 >> slot) != 0 { packed |= 0x80 >> UInt8(position) }
                position += 1
            }
            vpm = packed
        }
        guard pam != pmcw.pam || pom != pmcw.pom || lpm != pmcw.lpm || vpm != sch.verifiedPathMask else {
            return nil
        }
        try? working.setObservedMasks(sch.id, pam: pam, pom: pom, lpm: lpm, vpm: vpm)
        return sch.id
    }

    /// `0.S.XXXX/pimpampom`, built in place (the template once, the digits per read).
    private let namePointer: UnsafeMutablePointer<CChar> = {
        let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: 32)
        let text = Array("0.0.0000/pimpampom".utf8)
        for (index, byte) in text.enumerated() { pointer[index] = CChar(bitPattern: byte) }
        pointer[text.count] = 0
        return pointer
    }()
    private let hex = Array("0123456789abcdef".utf8)

    /// `readFields("0.S.XXXX/pimpampom", expected: 3, …)` without building a String.
    private func readMasks(_ id: SubchannelID, at css: Int32) -> Bool {
        namePointer[2] = CChar(bitPattern: hex[Int(id.ssid & 0xf)])
        for digit in 0..<4 {
            namePointer[4 + digit] = CChar(bitPattern: hex[Int(id.schno >> (12 - 4 * UInt16(digit))) & 0xf])
        }
        switch SysfsFiles.read(at: css, cName: namePointer, into: buffer) {
        case .bytes(let n) where SysfsFiles.hexBytes(UnsafeRawBufferPointer(buffer), count: n, into: &fields) == 3:
            return true
        default:
            // The slow path says what went wrong (and notes a directory that went).
            return readFields(subchannelName(id) + "/pimpampom", expected: 3, id: id, at: css)
        }
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
