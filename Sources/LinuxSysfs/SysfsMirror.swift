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
    /// Where the tree's objects are.
    let paths: SysfsPaths
    private(set) var subsystem: Subsystem
    private(set) var details: [ChannelPathID: ChannelPathDetails]
    private(set) var generation: UInt64 = 0
    /// Per record index: the ccw device directory's name, nil without a device.
    private(set) var deviceDirectories: [String?] = []
    /// Full readings installed so far (a new layout: entries, devices, drivers): vfio-ccw
    /// discovery works its candidates out again only when this moved (VFIOWatch.swift).
    private(set) var layoutReadings = 0
    private var listings: [UInt8: [String]] = [:]
    /// Per css: its listing as the kernel gave it at the last check that matched `listings`.
    private var rawListings: [UInt8: [String]] = [:]
    private var placeholders: Set<ChannelPathID> = []
    /// Devices under `cssN/defunct/`, as of the last full reading (its entries are part of
    /// the listing, so that one coming or going makes a full reading).
    private(set) var orphans: [OrphanedDevice] = []
    /// Drivers bound to the devices, as of the last full reading (a driver is bound or
    /// unbound with the device's coming, going or online change, which make one).
    private(set) var drivers: [SubchannelID: String] = [:]
    /// Devices whose `availability` is not `good`, as of the last full reading (like `drivers`).
    private(set) var availability: [SubchannelID: DeviceAvailability] = [:]
    /// What the sweep reads of each subchannel in its share (the follower sets it per slice).
    enum SweepReading {
        /// `pimpampom`, `vpm`, `chpids` and the device's `online`: what changes without a
        /// chpid change, when no kernel log tells of the channel reports.
        case whole
        /// `vpm` and the device's `online`, the rest when they moved: while the kernel log is
        /// followed, which logs every channel report (API/linux-sysfs.md, "What the sweep
        /// reads"; `sweptFilesMoved`).
        case vpm
    }
    var sweepReading = SweepReading.whole
    /// Per record index: Linux's PIM as last read (its slots, not packed; 0: not known), to
    /// pack a `vpm` that the sweep reads alone.
    var linuxPIMs: [UInt8] = []
    /// `vpm` and `online` files the sweep read alone (`SweepReading.vpm`), for tests.
    var sweepVPMReads = 0
    var sweepOnlineReads = 0
    /// The record index the sweep reads next, and the rounds it has completed.
    private(set) var sweepCursor = 0
    private(set) var sweepRounds = 0
    /// Subchannel directories read so far (all kinds of reading but the full one), for tests.
    var subchannelReads = 0
    /// The last targeted reading found a layout change: read the whole tree.
    var layoutChanged = false
    /// Members of re-read paths whose `pimpampom` is still to be read.
    private var queue = MemberQueue(compactAfter: SysfsMirror.parallelThreshold)
    /// What could not be read: logged once, counted by kind.
    private let problems: SysfsProblemLog
    /// The serial reads' buffer and parsed fields, and their allocation-free reader (the
    /// parallel ones have one per thread).
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
    var fields = [Int](repeating: 0, count: 9)
    let reader = MaskReader()
    /// Per chpid (`ChannelPathID.rawValue`): varied offline, as of the reading in progress.
    private(set) var offline = [Bool](repeating: false, count: 0x10000)
    /// The channel-measurement files, read once per poll tick (`measure()`).
    let measurements: MeasurementReader
    /// Per DASD subchannel: the driver's path health as last read (`DASDReader`).
    private(set) var dasd: [SubchannelID: DASDPathHealth] = [:]
    /// DASD files read since start (`path_masks` by the sweep, whole devices otherwise), for
    /// tests and the benchmark's accounting.
    private(set) var dasdMaskReads = 0
    /// How each DASD's `path_masks` last failed the sweep's check, for the devices whose masks
    /// are not known: a different failure (another malformed value) is a change to re-read and
    /// report, the same one is not.
    private var dasdMaskFailures: [SubchannelID: DASDReader.DASDReadFailure] = [:]
    private(set) var dasdDeviceReads = 0
    /// Paths the driver stopped using, found since the last update was made.
    private var disablings: [DASDPathDisabling] = []

    /// The devices as of this reading, with the disablings found since the last update.
    private func takeDevices(purged: [Subchannel] = []) -> ObservedDevices {
        defer { disablings = [] }
        return ObservedDevices(
            orphans: orphans, drivers: drivers, dasd: dasd, dasdDisabled: disablings, availability: availability,
            dasdEnabled: takeEnablings(), purged: purged)
    }
    /// Paths the driver uses again, found since the last update was made.
    private var enablings: [DASDPathEnabling] = []

    private func takeEnablings() -> [DASDPathEnabling] {
        defer { enablings = [] }
        return enablings
    }

    /// Where `/proc/cio_ignore` is read when subchannels go (`reportRemovedSubchannels`).
    let proc: ProcFiles?

    /// - Parameters:
    ///   - cmgRadix: the notation of `cmg`, 16 before Linux 6.7.
    ///   - proc: `/proc` (`--proc-root`), for `cio_ignore`; nil: not read.
    init(root: String, observation: SysfsObservation, subsystem: Subsystem, cmgRadix: Int = 10, proc: ProcFiles? = nil)
    {
        self.proc = proc
        self.paths = SysfsPaths(root: root)
        measurements = MeasurementReader(paths: paths, cmgRadix: cmgRadix)
        self.subsystem = subsystem
        self.details = observation.details
        problems = SysfsProblemLog(alreadyLogged: observation.problems)  // logged at start-up
        install(observation, subsystem)
    }

    deinit {
        buffer.deallocate()
    }

    /// Logs the subchannels of `old` that `newer` no longer has, and why as far as the tree
    /// tells: since Linux 6.18 (`c93452e0`) `echo purge > /proc/cio_ignore` also unregisters
    /// the I/O subchannels whose device number is on the ignore list, while the kernel no
    /// longer unregisters a subchannel because its device became invalid or unavailable. So a
    /// subchannel that went with its device number on `/proc/cio_ignore` (read now) is an
    /// operator's action; one that went otherwise is not explained by the tree. O(subchannels),
    /// on full readings whose layout changed only.
    /// - Returns: the purged subchannels, as `old` had them (for their path events).
    private func reportRemovedSubchannels(_ old: Subsystem, _ newer: Subsystem) -> [Subchannel] {
        let kept = Set(newer.subchannels.map(\.id))
        let removed = old.subchannels.filter { !kept.contains($0.id) }
        guard !removed.isEmpty else { return [] }
        let ignored = proc?.cioIgnore()
        var purgedSubchannels: [Subchannel] = []
        var purged: [String] = []
        var other: [String] = []
        for sch in removed {
            let name = sch.id.description + (sch.deviceID.map { " (device \($0))" } ?? "")
            if let device = sch.deviceID, ignored?.contains(ssid: device.ssid, devno: device.devno) == true {
                purged.append(name)
                purgedSubchannels.append(sch)
            } else {
                other.append(name)
            }
        }
        func list(_ names: [String]) -> String {
            names.prefix(16).joined(separator: ", ") + (names.count > 16 ? ", and \(names.count - 16) more" : "")
        }
        // Both at warning level: subchannels going is news either way, and the server's log
        // shows the follower's other messages at debug level only.
        if !purged.isEmpty {
            log(
                true,
                "sysfs: \(purged.count) subchannel(s) removed by a purge of /proc/cio_ignore, an operator's action "
                    + "(their device numbers are on the ignore list; Linux 6.18+): \(list(purged))")
        }
        if !other.isEmpty {
            log(
                true,
                "sysfs: \(other.count) subchannel(s) removed, their device numbers not on /proc/cio_ignore"
                    + (ignored == nil ? " (unreadable)" : "") + ": \(list(other))")
        }
        return purgedSubchannels
    }

    /// Whether two readings of the same layout show the same devices: presence, number,
    /// types and online state (ENA) of each subchannel's. O(subchannels): full readings only.
    static func sameDevices(_ a: Subsystem, _ b: Subsystem) -> Bool {
        zip(a.subchannels, b.subchannels).allSatisfy { old, new in
            old.hasDevice == new.hasDevice && old.deviceID == new.deviceID && old.devType == new.devType
                && old.devModel == new.devModel && old.cuType == new.cuType && old.cuModel == new.cuModel
                && old.schib.pmcw.isEnabled == new.schib.pmcw.isEnabled
        }
    }

    private func install(_ observation: SysfsObservation, _ newer: Subsystem) {
        layoutReadings += 1
        subsystem = newer
        details = observation.details
        listings = observation.listings
        rawListings = [:]
        placeholders = observation.placeholders
        orphans = observation.orphans
        drivers = observation.drivers
        availability = observation.availability
        dasd = observation.dasd
        deviceDirectories = newer.subchannels.map { observation.deviceDirectories[$0.id] }
        linuxPIMs = newer.subchannels.map { observation.linuxPIM[$0.id] ?? 0 }
        queue.removeAll()  // read just now, and their indexes may have moved
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
        return reread(
            paths: [], subchannelIndexes: indexes, write: nil, dasdReading: .masks,
            vpmFirst: sweepReading == .vpm)
    }

    /// Re-reads the named paths and subchannels; the masks of every subchannel of `paths`
    /// when `withMembers` (a channel report or a write names a path), else only of those whose
    /// path changed.
    func reread(
        paths: [ChannelPathID], subchannels: [SubchannelID], withMembers: Bool = false, write: ChannelPathID? = nil,
        dasdReading: DASDReading = .named
    ) -> ObservedUpdate? {
        var indexes: [Int] = []
        for id in subchannels {
            let index = subsystem.subchannelIndex(atOrAfter: id)
            if index < subsystem.subchannels.count, subsystem.subchannels[index].id == id { indexes.append(index) }
        }
        return reread(
            paths: paths, subchannelIndexes: indexes, write: write, withMembers: withMembers, dasdReading: dasdReading)
    }

    /// The subchannels numbered `schno` in every subchannel set and css.
    func indexes(ofNumber schno: UInt16) -> [SubchannelID] {
        subsystem.cssids.flatMap { cssid in
            (0...3).map { SubchannelID(cssid: cssid, ssid: UInt8($0), schno: schno) }
        }.filter { subsystem.subchannel($0) != nil }
    }

    /// Chpids with a write under way (count of writes), set by the follower around each write.
    var pathsBeingWritten: [ChannelPathID: Int] = [:]

    func writeEnded(_ chpid: ChannelPathID) {
        guard let count = pathsBeingWritten[chpid] else { return }
        pathsBeingWritten[chpid] = count > 1 ? count - 1 : nil
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
            let dir = paths.css(cssid)
            do throws(BackendError) {
                guard let raw = try SysfsObservation.listing(dir, sorted: false) else {
                    noteOnce("\(dir) has gone: keeping the last view until it is back", kind: .missing)
                    return
                }
                // The kernel lists a directory in the same order while nothing in it changes
                // (kernfs: by name hash): the same listing as at the last check that matched
                // is no change, without sorting 262,144 names every sweep round.
                if raw == rawListings[cssid] { continue }
                if raw.sorted() != names {
                    layoutChanged = true
                } else {
                    rawListings[cssid] = raw
                }
            } catch {
                noteOnce("listing \(dir) failed, keeping the last view: \(error)", kind: .unreadable)
                return
            }
        }
        problems.recovered()
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
            observation = try SysfsObservation.read(
                root: paths.root, previous: subsystem, previousDetails: details, cmgRadix: measurements.cmgRadix)
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
        let dasdChanged = dasd != observation.dasd
        if dasdChanged {
            for (id, health) in observation.dasd where dasd[id] != health {
                disablings += DASDPathDisabling.between(dasd[id], health, subchannel: id)
                enablings += DASDPathEnabling.between(dasd[id], health, subchannel: id)
            }
        }
        // A device that went or came (its ccw device directory), or changed its type, online
        // state, driver or DASD path health, changes no mask: without this the reading would be
        // kept here and never delivered, and the server would go on serving the device as it was.
        let detailsChanged =
            details != observation.details || orphans != observation.orphans || drivers != observation.drivers
            || availability != observation.availability
            || dasdChanged || (same && !Self.sameDevices(subsystem, newer))
        let purged = same ? [] : reportRemovedSubchannels(subsystem, newer)
        install(observation, newer)
        guard !same || !changes.isEmpty || detailsChanged || write != nil else { return nil }
        generation += 1
        return ObservedUpdate(
            generation: generation, subsystem: subsystem, details: details, changes: changes, write: write,
            layoutChanged: !same, devices: takeDevices(purged: purged))
    }

    private func reread(
        paths: [ChannelPathID], subchannelIndexes: [Int], write: ChannelPathID?, withMembers: Bool = false,
        dasdReading: DASDReading = .named, vpmFirst: Bool = false
    ) -> ObservedUpdate? {
        openCSSDirectories()
        defer { closeCSSDirectories() }
        var working = subsystem
        var newDetails = details
        var changedPaths: [ChannelPathID] = []
        // A chpid whose write is under way is read by the write's own reading only: a tick
        // between the write and that reading published the change as observed, before the
        // write's reply (and the reply then said nothing changed).
        for id in paths where !placeholders.contains(id) && (write == id || pathsBeingWritten[id] == nil) {
            guard let last = working.channelPath(id) else { continue }
            let dir = self.paths.channelPath(id)
            let reading = SysfsObservation.readChannelPath(
                id, at: dir, last: last, lastConfigureKnown: details[id]?.configureKnown ?? true,
                cmgRadix: measurements.cmgRadix)
            if reading.missing {
                let css = self.paths.css(id.cssid)
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
            // The sweep with the kernel log followed: the rest only when `vpm` moved.
            if vpmFirst, !sweptFilesMoved(index, in: working) { continue }
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
                queue.insert(index, vpm: changedPaths.contains(id) ? .always : .whenMasksChange)
            }
            // What its members' changes are part of, until they are read: the path's change.
            if write == nil, changedPaths.contains(id), let before = subsystem.channelPath(id) {
                queue.attribute(to: id, before: before)
            }
        }
        changedSubchannels += readMembers(writeMembers, into: &working, readers: Self.parallelReaders)
        // The DASD driver's view of the devices whose masks moved (a chpid or mask change may
        // be one the driver acted on), of those a request names, and, for the sweep, a check
        // of `path_masks` (the one DASD file that changes without anything else doing so).
        let named = subchannelIndexes.map { working.subchannels[$0].id }
        let dasdChanged: Bool
        switch dasdReading {
        case .named: dasdChanged = refreshDASD(full: changedSubchannels + named, masksOf: [])
        case .masks: dasdChanged = refreshDASD(full: changedSubchannels, masksOf: named)
        }
        if layoutChanged {
            checkListing()
            if layoutChanged { return fullRead(write: write) }
        }
        guard !changedPaths.isEmpty || !changedSubchannels.isEmpty || write != nil || dasdChanged else { return nil }
        let conditions = Self.updateConditions(of: changedSubchannels, in: &working)
        let changes = subsystem.pathChanges(
            to: working, subchannels: changedSubchannels, paths: changedPaths + conditions)
        subsystem = working
        details = newDetails
        generation += 1
        return ObservedUpdate(
            generation: generation, subsystem: subsystem, details: details, changes: changes, write: write,
            devices: takeDevices())
    }

    /// Members of re-read paths still to be read.
    var queuedMemberCount: Int { queue.count }

    /// Reads the next `count` queued members (`pimpampom`, and `vpm` as queued), on up to
    /// `readers` threads when there are many, and returns the update for those that changed.
    /// A slice whose reading finds a layout change ends in a full reading; if that fails (the
    /// tree went), the slice is not queued again: the sweep reads it within its interval once
    /// the tree is back.
    func readQueuedMembers(count: Int, readers: Int = SysfsMirror.parallelReaders) -> ObservedUpdate? {
        guard queue.count > 0 else { return nil }
        let (slice, causes) = queue.take(count)
        openCSSDirectories()
        defer { closeCSSDirectories() }
        var working = subsystem
        noteOffline(working)
        let changed = readMembers(slice, into: &working, readers: readers)
        let dasdChanged = refreshDASD(full: changed, masksOf: [])
        if layoutChanged {
            checkListing()
            if layoutChanged { return fullRead() }
        }
        guard !changed.isEmpty || dasdChanged else { return nil }
        let conditions = Self.updateConditions(of: changed, in: &working)
        let changes = subsystem.pathChanges(to: working, subchannels: changed, paths: conditions).map { change in
            guard let before = causes[change.chpid] else { return change }
            var attributed = PathChange(
                before: before, after: change.after, affected: change.affected, crws: change.crws,
                crwsLost: change.crwsLost)
            attributed.losses = change.losses
            return attributed
        }
        subsystem = working
        generation += 1
        return ObservedUpdate(
            generation: generation, subsystem: subsystem, details: details, changes: changes, write: nil,
            devices: takeDevices())
    }

    /// Sets the condition of every path of `subchannels` (whose masks a reading changed) as
    /// their members' masks now show it (`Subsystem.observedCondition(of:)`, API/linux-sysfs.md
    /// "Channel-path condition"). Cost: O(subchannels using those paths).
    /// - Returns: the paths whose condition changed.
    static func updateConditions(of subchannels: [SubchannelID], in working: inout Subsystem) -> [ChannelPathID] {
        var chpids = Set<ChannelPathID>()
        for id in subchannels {
            guard let sch = working.subchannel(id) else { continue }
            for case let chpid? in sch.channelPaths { chpids.insert(chpid) }
        }
        return working.setObservedConditions(of: chpids.sorted())
    }

    /// One pass over the channel-measurement files of every chpid (`MeasurementReader`),
    /// recorded in `measurements` with each chpid's `cmg` and `shared` as last read.
    @discardableResult
    func measure(into measurements: SysfsMeasurements) -> MeasurementPass {
        let chpids = subsystem.channelPaths.map { ($0.id, details[$0.id]?.cmg, details[$0.id]?.shared) }
        let pass = self.measurements.pass(chpids.map { ($0.0, $0.1) }) { message, kind in
            noteOnce(message, kind: kind)
        }
        // Logged once per chpid and episode by `record` itself.
        let log = self.log
        measurements.record(pass, chpids: chpids) { log(true, "sysfs: " + $0) }
        return pass
    }

    // MARK: DASD

    /// How a reading reads the DASD files of the subchannels it names.
    enum DASDReading {
        /// Every file of a named DASD (a request, the kernel log, a write).
        case named
        /// Only `path_masks` of a named DASD, the rest when it changed (the sweep).
        case masks
    }

    /// Re-reads every DASD file of the DASDs among `full`, and `path_masks` of those among
    /// `masksOf` (their other files when it changed); true when a device's health changed. A
    /// device directory that went sets `layoutChanged`; one no longer bound to a DASD driver
    /// is dropped.
    func refreshDASD(full: [SubchannelID], masksOf: [SubchannelID]) -> Bool {
        guard !dasd.isEmpty else { return false }
        var whole = full.filter { dasd[$0] != nil }
        for id in masksOf {
            guard let last = dasd[id], let device = deviceDirectory(of: id) else { continue }
            dasdMaskReads += 1
            let reading =
                if let css = cssDirectories[id.cssid] {
                    DASDReader.masks(
                        at: css, SysfsPaths.subchannelName(id) + "/" + device + "/path_masks", into: buffer)
                } else {
                    DASDReader.masks(paths.subchannel(id) + "/" + device)
                }
            switch reading {
            case .success(let masks):
                dasdMaskFailures[id] = nil
                if masks != last.masks { whole.append(id) }
            case .failure(let failure):
                let before = dasdMaskFailures.updateValue(failure, forKey: id)
                if last.masks != nil || last.problems.isEmpty || before != failure { whole.append(id) }
            }
        }
        var changed = false
        var seen = Set<SubchannelID>()
        for id in whole where seen.insert(id).inserted {
            guard let device = deviceDirectory(of: id) else { continue }
            dasdDeviceReads += 1
            switch DASDReader.read(subchannel: paths.subchannel(id), device: device, cssid: id.cssid) {
            case .gone:
                layoutChanged = true
            case .notDASD:
                dasd[id] = nil
                dasdMaskFailures[id] = nil
                changed = true
            case .health(let health):
                for problem in health.problems { noteOnce(problem) }
                if dasd[id] != health {
                    disablings += DASDPathDisabling.between(dasd[id], health, subchannel: id)
                    enablings += DASDPathEnabling.between(dasd[id], health, subchannel: id)
                    dasd[id] = health
                    changed = true
                }
            }
        }
        return changed
    }

    /// The ccw device directory's name of subchannel `id`, nil without one.
    private func deviceDirectory(of id: SubchannelID) -> String? {
        let index = subsystem.subchannelIndex(atOrAfter: id)
        guard index < deviceDirectories.count, subsystem.subchannels[index].id == id else { return nil }
        return deviceDirectories[index]
    }

    /// The subchannels of `devices` (a kernel-log line names a device).
    func subchannels(of devices: [DeviceID]) -> [SubchannelID] {
        devices.compactMap { subsystem.subchannel(device: $0)?.id }
    }

    // MARK: Problems

    /// Where the problems a reading meets are logged: (warning?, text).
    var log: @Sendable (_ warning: Bool, _ message: String) -> Void {
        get { problems.log }
        set { problems.log = newValue }
    }

    /// Read errors counted since the last `takeErrors()`.
    var hasPendingErrors: Bool { problems.hasPendingErrors }

    /// The read errors counted since the last call (the follower adds them to its totals).
    func takeErrors() -> [SysfsProblemLog.Kind: Int] { problems.takeErrors() }

    /// Logs `message` once; with a `kind`, a read error, counted every time.
    func noteOnce(_ message: String, kind: SysfsProblemLog.Kind? = nil) {
        problems.note(message, kind: kind)
    }

    // MARK: Directories

    /// Notes which paths are varied offline in `subsystem` (a vary implies their `lpm` bit).
    func noteOffline(_ subsystem: Subsystem) {
        for path in subsystem.channelPaths { offline[Int(path.id.rawValue)] = path.vary == .offline }
    }

    /// Per css: its directory, open while a reading runs (opened anew each time, so that a
    /// tree that went away is seen as gone, not read through an old descriptor).
    private(set) var cssDirectories: [UInt8: Int32] = [:]

    private func openCSSDirectories() {
        for cssid in subsystem.cssids {
            let fd = open(paths.css(cssid), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if fd >= 0 { cssDirectories[cssid] = fd }
        }
    }

    private func closeCSSDirectories() {
        for fd in cssDirectories.values { close(fd) }
        cssDirectories = [:]
    }
}
