// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One reading of a Linux sysfs tree (the contract: API/linux-sysfs.md), turned into the
/// model: a topology with the paths' states, each subchannel's observed masks, and what
/// sysfs says about paths beyond the model.
///
/// Ids are Linux's: the css is the N of `devices/cssN` (Linux names subchannels `0.S.XXXX` and
/// chpids `chpN.XX` by this index, not by `real_cssid`).
struct SysfsObservation {
    var topology: Topology
    /// Per subchannel: PAM and POM from `pimpampom`, and `vpm` (nil when it cannot be read),
    /// in the slots of `topology`.
    var masks: [SubchannelID: (pam: UInt8, pom: UInt8, vpm: UInt8?)] = [:]
    /// Per subchannel: Linux's PIM as `pimpampom` shows it (slots, not packed), with which the
    /// sweep packs a `vpm` it reads alone (`SysfsMirror.sweptFilesMoved`).
    var linuxPIM: [SubchannelID: UInt8] = [:]
    var details: [ChannelPathID: ChannelPathDetails] = [:]
    /// Files that could not be understood; the reading goes on without them.
    var problems: [String] = []
    /// The previous reading: a path's state that cannot be read now keeps its last value, so a
    /// failed read is not taken for a change.
    var previous: Subsystem?
    /// The previous reading's details: whether each path's configure state was known.
    var previousDetails: [ChannelPathID: ChannelPathDetails] = [:]
    /// Device numbers seen, per css and ssid, to drop a duplicate.
    private var devices: Set<UInt32> = []
    /// Per subchannel read: the ccw device directory's name (`0.0.1234`), for re-reads.
    var deviceDirectories: [SubchannelID: String] = [:]
    /// Per css: the names in its directory, sorted (to tell when entries come or go).
    var listings: [UInt8: [String]] = [:]
    /// Devices under `cssN/defunct/`, in css and name order.
    var orphans: [OrphanedDevice] = []
    /// Per subchannel with a ccw device: the driver bound to it (its `driver` link's name).
    var drivers: [SubchannelID: String] = [:]
    /// Per subchannel whose ccw device's `availability` is not `good` (lscss --avail).
    var availability: [SubchannelID: DeviceAvailability] = [:]
    /// Subchannels whose `dev_busid` names a device but that have no ccw device directory.
    var withoutDevice: [SubchannelID] = []
    /// Of those, the ones whose offline device the kernel unregistered after its last path
    /// went (`keepDevicesUnregisteredForPathLoss`): served as the device they had.
    var unregisteredForPathLoss: [SubchannelID] = []
    /// Paths that subchannels name but that have no directory.
    var placeholders: Set<ChannelPathID> = []
    /// The notation of `cmg`: 16 before Linux 6.7, 10 since (`KernelRelease.cmgRadix`).
    var cmgRadix = 10
    /// Per subchannel whose ccw device is bound to a DASD driver: what the driver says about
    /// its paths (`DASDReader`).
    var dasd: [SubchannelID: DASDPathHealth] = [:]

    /// Reads the tree at `root` (the directory that holds `devices/` and `bus/`).
    /// - Throws: `BackendError.io` when `root/devices` has no css, or a directory cannot be read.
    static func read(
        root: String, previous: Subsystem? = nil, previousDetails: [ChannelPathID: ChannelPathDetails] = [:],
        cmgRadix: Int = 10, progress: (@Sendable (_ read: Int, _ total: Int) -> Void)? = nil
    ) throws(BackendError) -> SysfsObservation {
        let devices = root + "/devices"
        let cssDirs = (try SysfsFiles.entries(devices) ?? []).filter { name in
            name.hasPrefix("css") && parseHex(name.dropFirst(3), maxDigits: 2) != nil
        }
        guard !cssDirs.isEmpty else {
            throw .io(
                path: devices, operation: "reading", errno: 2,
                message: "no channel subsystem (devices/css0) found: not a Linux sysfs tree of an s390 machine")
        }
        var observation = SysfsObservation(
            topology: Topology(channelSubsystems: [], channelPaths: [], subchannels: [], multipleCSSEnabled: false))
        observation.previous = previous
        observation.previousDetails = previousDetails
        observation.cmgRadix = cmgRadix
        observation.progress = progress
        for dir in cssDirs {
            let cssid = UInt8(parseHex(dir.dropFirst(3), maxDigits: 2)!)
            try observation.readCSS(cssid, at: devices + "/" + dir)
        }
        observation.addMissingPaths()
        observation.keepDevicesUnregisteredForPathLoss()
        return observation
    }

    /// Since Linux 6.4 (and stable kernels back to 4.14, `af11f99f`), when the last path of an
    /// *offline* ccw device goes (`(pam & opm) == 0`, varied or configured off, or not
    /// operational), the kernel unregisters the ccw device (`IO_SCH_UNREG_CDEV`) and keeps the
    /// subchannel; an online one stays, disconnected. That is a path loss, not a deleted
    /// device: its subchannel keeps the device's number, types and presence from the previous
    /// reading. What this relies on, all from the tree: the subchannel directory stays,
    /// `dev_busid` still names the same device number, the device read offline before, and no
    /// installed path is operational now (PAM & POM & the paths varied online is 0). The
    /// removal follows the path loss, so the reading that sees the device go already sees the
    /// path gone (or both at once). Anything else (a path left, another number, a device that
    /// was online) is a device that went. Without a previous reading (at start) nothing says
    /// what the device was: the subchannel is served with its number alone.
    private mutating func keepDevicesUnregisteredForPathLoss() {
        guard let previous, !withoutDevice.isEmpty else { return }
        let offline = Set(topology.channelPaths.filter { $0.vary == .offline }.map(\.id))
        let indexes = Dictionary(
            topology.subchannels.indices.map { (topology.subchannels[$0].id, $0) }, uniquingKeysWith: { a, _ in a })
        var gone: [SubchannelID] = []
        for id in withoutDevice {
            guard let index = indexes[id], let observed = masks[id], let before = previous.subchannel(id),
                before.hasDevice, !before.schib.pmcw.isEnabled,
                let devno = topology.subchannels[index].devno, before.deviceID?.devno == UInt16(devno),
                observed.pam & observed.pom & onlineMask(topology.subchannels[index], offline: offline) == 0
            else {
                gone.append(id)
                continue
            }
            topology.subchannels[index].devType = Int(before.devType)
            topology.subchannels[index].devModel = Int(before.devModel)
            topology.subchannels[index].cuType = Int(before.cuType)
            topology.subchannels[index].cuModel = Int(before.cuModel)
            unregisteredForPathLoss.append(id)
        }
        withoutDevice = gone
    }

    /// The model of this observation.
    func subsystem() throws(BackendError) -> Subsystem {
        var subsystem: Subsystem
        do throws(TopologyError) {
            subsystem = try Subsystem(topology: topology, crwCapacity: 2)  // unused: Linux keeps the CRWs
        } catch {
            // Every subchannel was checked while reading; this would be a reader defect.
            throw .io(
                path: "(sysfs)", operation: "reading", errno: 22,
                message: "the tree does not make a channel subsystem: \(error)")
        }
        let offline = Set(topology.channelPaths.filter { $0.vary == .offline }.map(\.id))
        for sch in topology.subchannels {
            guard let observed = masks[sch.id] else { continue }
            let lpm = onlineMask(sch, offline: offline)
            do throws(ModelError) {
                try subsystem.setObservedMasks(
                    sch.id, pam: observed.pam, pom: observed.pom, lpm: lpm, vpm: observed.vpm)
            } catch {
                preconditionFailure("a subchannel of the topology is missing from its model: \(error)")
            }
        }
        for id in withoutDevice {
            do throws(ModelError) {
                try subsystem.setObservedDevice(id, present: false)
            } catch {
                preconditionFailure("a subchannel of the topology is missing from its model: \(error)")
            }
        }
        // Linux has no condition attribute: every path's follows its members' masks.
        subsystem.setObservedConditions(of: topology.channelPaths.map(\.id))
        return subsystem
    }

    /// LPM as the model keeps it: the installed paths varied online. Linux's `vpm` is read
    /// as it is (it is not lpm & pam & pom: the kernel leaves it 00 for a device that is not
    /// online, since it verifies paths only for an online device).
    private func onlineMask(_ sch: Topology.Subchannel, offline: Set<ChannelPathID>) -> UInt8 {
        var mask: UInt8 = 0
        for (slot, chpid) in sch.chpids.enumerated() where !offline.contains(chpid) { mask |= 0x80 >> UInt8(slot) }
        return mask
    }

    // MARK: Reading

    /// An attribute's first line; nil when it is missing or cannot be read (the kernel fails
    /// some reads, e.g. `configure` when SCLP cannot tell), which is noted and not fatal.
    private mutating func attribute(_ path: String) -> String? {
        do throws(BackendError) {
            return try SysfsFiles.line(path)
        } catch {
            problems.append(error.description)
            return nil
        }
    }

    /// `attribute(dir + "/" + name)` relative to the open directory `fd` of `dir` (-1: by path).
    private mutating func attribute(at fd: Int32, _ dir: String, _ name: String) -> String? {
        guard fd >= 0 else { return attribute(dir + "/" + name) }
        do throws(BackendError) {
            return try SysfsFiles.line(at: fd, name, path: dir + "/" + name)
        } catch {
            problems.append(error.description)
            return nil
        }
    }

    private mutating func readCSS(_ cssid: UInt8, at dir: String) throws(BackendError) {
        topology.channelSubsystems.append(.init(cssid: Int(cssid)))
        let names = try SysfsFiles.entries(dir) ?? []
        listings[cssid] = try Self.listing(dir, entries: names)
        var subchannels: [(id: SubchannelID, path: String)] = []
        for name in names {
            let path = dir + "/" + name
            if name == "defunct" {
                readOrphans(cssid, at: path)
            } else if name.hasPrefix("chp") {
                try readChannelPath(name: name, cssid: cssid, at: path)
            } else if let (ssid, schno) = parseBusID(name) {
                subchannels.append((SubchannelID(cssid: cssid, ssid: ssid, schno: schno), path))
            }
        }
        try readSubchannels(subchannels)
    }

    /// Below this many subchannels one thread reads them (starting threads costs more).
    static let parallelThreshold = 4096

    /// Reads `subchannels` (in id order) on up to `SysfsMirror.parallelReaders` threads, each a
    /// contiguous share into an observation of its own, merged in order: the result is the
    /// serial reading's (a device number seen twice is left out where it is seen the second
    /// time). A full reading of 262,144 subchannels is about a million files; on one thread
    /// that was 17.8 s of start-up (issue 25). `progress` hears how many are read so far.
    private mutating func readSubchannels(_ subchannels: [(id: SubchannelID, path: String)]) throws(BackendError) {
        let readers = min(SysfsMirror.parallelReaders, max(1, subchannels.count / (Self.parallelThreshold / 2)))
        defer { readSoFar += subchannels.count }
        guard readers > 1, subchannels.count >= Self.parallelThreshold else {
            for (index, sch) in subchannels.enumerated() {
                try readSubchannel(sch.id, at: sch.path)
                if index % Self.progressStep == Self.progressStep - 1 {
                    progress?(readSoFar + index + 1, readSoFar + subchannels.count)
                }
            }
            return
        }
        let share = (subchannels.count + readers - 1) / readers
        var template = SysfsObservation(
            topology: Topology(
                channelSubsystems: [], channelPaths: [], subchannels: [], multipleCSSEnabled: false))
        template.previous = previous
        template.cmgRadix = cmgRadix
        let parts = UnsafeMutableBufferPointer<Result<SysfsObservation, BackendError>?>.allocate(capacity: readers)
        parts.initialize(repeating: nil)
        defer { parts.deallocate() }
        nonisolated(unsafe) let output = parts
        let counted = Mutex(0)
        let progress = self.progress
        let base = readSoFar
        let first = template
        DispatchQueue.concurrentPerform(iterations: readers) { reader in
            var part = first
            let range = min(subchannels.count, reader * share)..<min(subchannels.count, (reader + 1) * share)
            do throws(BackendError) {
                for (position, index) in range.enumerated() {
                    try part.readSubchannel(subchannels[index].id, at: subchannels[index].path)
                    if position % Self.progressStep == Self.progressStep - 1 {
                        let total = counted.withLock { count in
                            count += Self.progressStep
                            return count
                        }
                        progress?(base + total, base + subchannels.count)
                    }
                }
                output[reader] = .success(part)
            } catch {
                output[reader] = .failure(error)
            }
        }
        // Room for every share at once: growing the tables as the shares come in rehashed
        // them several times over, serially, after the threads were done.
        let total = topology.subchannels.count + subchannels.count
        topology.subchannels.reserveCapacity(total)
        masks.reserveCapacity(total)
        linuxPIM.reserveCapacity(total)
        deviceDirectories.reserveCapacity(total)
        drivers.reserveCapacity(total)
        devices.reserveCapacity(total)
        for reader in 0..<readers {
            switch output[reader]! {
            case .failure(let error): throw error
            case .success(let part): merge(part)
            }
        }
    }

    /// Adds a share's reading after what is read so far, as a serial reading would have.
    private mutating func merge(_ part: SysfsObservation) {
        problems += part.problems
        withoutDevice += part.withoutDevice
        for sch in part.topology.subchannels {
            if let number = sch.devno {
                let key = DeviceID(cssid: sch.id.cssid, ssid: sch.id.ssid, devno: UInt16(number)).rawValue
                guard devices.insert(key).inserted else {
                    problems.append("\(sch.id): device number \(number) seen twice, left out")
                    withoutDevice.removeAll { $0 == sch.id }
                    continue
                }
            }
            topology.subchannels.append(sch)
            let id = sch.id
            if let masks = part.masks[id] { self.masks[id] = masks }
            if let pim = part.linuxPIM[id] { linuxPIM[id] = pim }
            if let directory = part.deviceDirectories[id] { deviceDirectories[id] = directory }
            if let driver = part.drivers[id] { drivers[id] = driver }
            if let health = part.dasd[id] { dasd[id] = health }
            if let state = part.availability[id] { availability[id] = state }
        }
    }

    /// How often a reading says how far it got (subchannels).
    static let progressStep = 16384
    /// Hears how many subchannels a reading has read so far, and of how many (those of the css
    /// directories listed so far): start-up's progress.
    var progress: (@Sendable (_ read: Int, _ total: Int) -> Void)?
    /// Subchannels read by the css directories read before.
    private var readSoFar = 0

    /// A css directory's entries, and `defunct/NAME` for those of its `defunct/`: what, when it
    /// changes, makes a new full reading. nil when the directory is gone.
    /// With `sorted` false, the names in the kernel's order (`entries` is sorted).
    static func listing(_ dir: String, entries: [String]? = nil, sorted: Bool = true) throws(BackendError)
        -> [String]?
    {
        var listed = entries
        if listed == nil { listed = try SysfsFiles.entries(dir, sorted: sorted) }
        guard let names = listed else { return nil }
        guard names.contains("defunct") else { return names }
        let defunct = try SysfsFiles.entries(dir + "/defunct", sorted: sorted) ?? []
        let all = names + defunct.map { "defunct/" + $0 }
        return sorted ? all.sorted() : all
    }

    /// `cssN/defunct/0.S.DDDD`: devices that lost their subchannel (lscss.c
    /// print_defunct_devices reads their devtype, cutype and online).
    private mutating func readOrphans(_ cssid: UInt8, at dir: String) {
        let names: [String]
        do throws(BackendError) {
            names = try SysfsFiles.entries(dir) ?? []
        } catch {
            problems.append(error.description)
            return
        }
        for name in names {
            guard let (ssid, number) = parseBusID(name), SysfsFiles.isDirectory(dir + "/" + name) else { continue }
            let device = dir + "/" + name
            let (devType, devModel) = attribute(device + "/devtype").flatMap(parseTypeModel) ?? (0, 0)
            let (cuType, cuModel) = attribute(device + "/cutype").flatMap(parseTypeModel) ?? (0, 0)
            orphans.append(
                OrphanedDevice(
                    id: DeviceID(cssid: cssid, ssid: ssid, devno: number), devType: UInt16(devType),
                    devModel: UInt8(devModel), cuType: UInt16(cuType), cuModel: UInt8(cuModel),
                    online: attribute(device + "/online") == "1"))
        }
    }

    /// `chpN.XX`: status, configure, type, cmg, shared, chid, chid_external.
    private mutating func readChannelPath(name: String, cssid: UInt8, at dir: String) throws(BackendError) {
        let parts = name.dropFirst(3).split(separator: ".")
        guard parts.count == 2, parseHex(parts[0], maxDigits: 2) == Int(cssid),
            let number = parseHex(parts[1], maxDigits: 2)
        else { return }
        let id = ChannelPathID(cssid: cssid, chpid: UInt8(number))
        let reading = Self.readChannelPath(
            id, at: dir, last: previous?.channelPath(id),
            lastConfigureKnown: previousDetails[id]?.configureKnown ?? true, cmgRadix: cmgRadix)
        problems += reading.problems
        topology.channelPaths.append(
            .init(
                id: id, type: Int(reading.path.type), shared: reading.path.shared,
                pchid: reading.path.pchid.map { Int($0) },
                vary: reading.path.vary, configure: reading.path.configure))
        details[id] = reading.details
    }

    /// One channel path's directory. A state that cannot be read keeps its value of `last`
    /// (not-recognized/online without one), so that a failed read is not taken for a change.
    /// `missing` is true when neither `status` nor `configure` exists (the directory went).
    /// `cmg` is read in `cmgRadix` (16 before Linux 6.7).
    ///
    /// `configure` that cannot be read (EOPNOTSUPP where SCLP cannot read channel-path info,
    /// as in a KVM guest; or empty) is unknown, not a state. Kernels without the fix of
    /// 6.14-rc3 (`7bd88fd3`, "Fix CHPID configure attribute caching", backported to 5.4)
    /// alternate there between EOPNOTSUPP and `3`: so a `3` read while the last reading was
    /// unknown (`lastConfigureKnown` false) stays unknown, and only 0, 1 or 2 make the state
    /// known again. Otherwise every other poll would flip the path between unknown and
    /// not-recognized, and an intended state would drift and recover with it.
    static func readChannelPath(
        _ id: ChannelPathID, at dir: String, last: ChannelPath?, lastConfigureKnown: Bool = true, cmgRadix: Int = 10
    ) -> (path: ChannelPath, details: ChannelPathDetails, problems: [String], missing: Bool) {
        var problems: [String] = []
        var missing = 0
        func attribute(_ name: String) -> String? {
            do throws(BackendError) {
                let line = try SysfsFiles.line(dir + "/" + name)
                if line == nil && (name == "status" || name == "configure") { missing += 1 }
                return line
            } catch {
                problems.append(error.description)
                return nil
            }
        }
        let status = attribute("status")
        var vary: VaryState = status == "offline" ? .offline : .online
        if status != "online" && status != "offline" {
            vary = last?.vary ?? .online
            problems.append("\(dir)/status: '\(status ?? "missing")', taken as \(vary)")
        }
        var configure = last?.configure ?? ConfigureState.notRecognized
        var configureKnown = false
        let configureText = attribute("configure")
        if let text = configureText, let value = Int(text), let state = ConfigureState(rawValue: value) {
            if state == .notRecognized && !lastConfigureKnown {
                // The pre-fix kernel's cached answer between two EOPNOTSUPP: still unknown.
            } else {
                configure = state
                configureKnown = true
            }
        } else {
            problems.append("\(dir)/configure: unreadable, taken as \(configure)")
        }
        let type = attribute("type").flatMap { parseHex($0[...], maxDigits: 2) } ?? 0
        let shared = attribute("shared").flatMap { parseHex($0[...], maxDigits: 8) }
        let cmg = attribute("cmg").flatMap { Int($0, radix: cmgRadix) }
        let chid = attribute("chid").flatMap { parseHex($0[...], maxDigits: 4) }
        let external = attribute("chid_external").flatMap { parseHex($0[...], maxDigits: 1) }
        let path = ChannelPath(
            id: id, type: UInt8(type), shared: shared == 1, pchid: chid.map { UInt16($0) }, vary: vary,
            configure: configure)
        let details = ChannelPathDetails(
            cmg: cmg, shared: shared.map { $0 != 0 },
            chidExternal: chid == nil ? nil : external.map { $0 != 0 } ?? true,
            configureKnown: configureKnown)
        return (path, details, problems, missing == 2)
    }

    /// `0.S.XXXX`: chpids, pimpampom, vpm, dev_busid and the ccw device child (its online,
    /// modalias or devtype and cutype, driver, availability); `type` where there is no `chpids`.
    private mutating func readSubchannel(_ id: SubchannelID, at dir: String) throws(BackendError) {
        // Its files relative to the directory, opened once: a million files at 262,144
        // subchannels, each walking the whole path from the root again was a share of start-up
        // (issue 25). Not openable (gone, a test's odd tree): by path, as before. Each file is
        // read into one scratch buffer and parsed in place: a String (and a split) per file was
        // a third of start-up's CPU at 262,144.
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { if fd >= 0 { close(fd) } }
        try withUnsafeTemporaryAllocation(byteCount: 4096, alignment: 16) { (scratch) throws(BackendError) in
            try readSubchannel(id, files: AttributeFiles(directory: fd, path: dir, buffer: scratch))
        }
    }

    private mutating func readSubchannel(_ id: SubchannelID, files: AttributeFiles) throws(BackendError) {
        let dir = files.path
        // `chpids` and `pimpampom` are an I/O subchannel's alone (css.c io_subchannel_type;
        // before that, the io_subchannel driver's attribute group): where `chpids` is there the
        // subchannel is an I/O one, and its `type` (0) is not read, one file of ten at start.
        var slotFields = [Int](repeating: 0, count: 8)
        let slotCount = files.line("chpids", &problems).map { Self.hexFields($0, into: &slotFields) }
        if slotCount == nil, let text = attribute(at: files.directory, dir, "type"), text != "0" {
            // CHSC, message, EADM: no device, no paths; served with their type (lscss -a).
            guard let number = parseHex(text[...], maxDigits: 1), number != 0,
                let type = SubchannelType(rawValue: UInt8(number))
            else {
                problems.append("\(dir)/type: '\(text)' is not a subchannel type cssd knows, left out")
                return
            }
            topology.subchannels.append(
                .init(id: id, devno: nil, devType: 0, devModel: 0, cuType: 0, cuModel: 0, chpids: [], type: type))
            return
        }
        var maskFields = [Int](repeating: 0, count: 3)
        let maskLine = files.line("pimpampom", &problems)
        let maskCount = maskLine.map { Self.hexFields($0, into: &maskFields) }
        var slots = slotCount.flatMap { $0 }.map { Array(slotFields[..<$0]) } ?? []
        var masks = maskCount.flatMap { $0 }.map { Array(maskFields[..<$0]) } ?? []
        if slots.count != 8 || masks.count != 3 {
            if let last = previous?.subchannel(id) {
                // A subchannel cssd holds whose paths cannot be read at this moment (a failed
                // read, a file being rewritten): its last paths and masks stand, as they do
                // between full readings (SysfsMirror), so that a failed read is not taken for
                // the subchannel going away. A later reading that can read them catches up.
                problems.append("\(dir): chpids or pimpampom unreadable, keeping the subchannel's last state")
                let pmcw = last.schib.pmcw
                slots = pmcw.chpids.map { Int($0) }
                masks = [Int(pmcw.pim), Int(pmcw.pam), Int(pmcw.pom)]
            } else if slotCount != nil, maskCount != nil {
                let chpidLine = attribute(at: files.directory, dir, "chpids") ?? ""
                let pimpampom = attribute(at: files.directory, dir, "pimpampom") ?? ""
                problems.append("\(dir): chpids '\(chpidLine)' or pimpampom '\(pimpampom)' malformed")
                return
            } else {
                problems.append("\(dir): no chpids or pimpampom, not an I/O subchannel the model can hold")
                return
            }
        }
        // The model packs installed paths from slot 0; a PIM with holes is packed, masks alike.
        let pim = UInt8(masks[0])
        let installed = (0..<8).filter { pim & (0x80 >> UInt8($0)) != 0 }
        let chpids = installed.map { ChannelPathID(cssid: id.cssid, chpid: UInt8(slots[$0])) }
        // At most eight: a pairwise check, not a Set per subchannel.
        let distinct = chpids.indices.allSatisfy { i in !chpids[..<i].contains(chpids[i]) }
        guard !chpids.isEmpty, distinct else {
            let chpidLine = attribute(at: files.directory, dir, "chpids") ?? ""
            problems.append(
                "\(dir): PIM \(masks[0]) with chpids '\(chpidLine)' is not a subchannel the model can hold, left out")
            return
        }
        func packed(_ mask: Int) -> UInt8 {
            var out: UInt8 = 0
            for (position, slot) in installed.enumerated() where mask & (0x80 >> slot) != 0 {
                out |= 0x80 >> UInt8(position)
            }
            return out
        }
        // `vpm` (drivers/s390/cio/css.c vpm_show, "%02x"): what the kernel verified.
        let vpm = files.line("vpm", &problems).flatMap { Hex.parts($0, maxDigits: (2, 0, 0))?.0 }.map { packed($0) }
        // The ccw device: its number, types and online.
        var devno: Int?
        var devType = 0
        var devModel = 0
        var cuType = 0
        var cuModel = 0
        var online = false
        var dasdHealth: DASDPathHealth?
        // The ccw device is named by its bus id (device.c `ccw_device_register`), which is
        // `dev_busid` (css.c, the SCHIB's device number): its `online` read where that names
        // it finds it without listing the directory, two system calls and a String per entry
        // fewer. Only where that finds none (no device, a device that moved here, an odd
        // tree) is the directory listed for the first child named like a bus id.
        let busid = files.line("dev_busid", &problems).flatMap { parseBusIDName($0) }
        var child: String?
        var onlineValue: Bool?
        if let busid, let value = files.line(busid, "online", &problems).map(Self.isOne) {
            child = busid
            onlineValue = value
        } else if let listed = try SysfsFiles.entries(dir)?.first(where: {
            parseBusID($0) != nil
                && (files.directory >= 0
                    ? SysfsFiles.isDirectory(at: files.directory, $0) : SysfsFiles.isDirectory(dir + "/" + $0))
        }) {
            child = listed
            // The child `dev_busid` named, whose `online` could not be read just now (and was
            // logged): not read and logged a second time.
            onlineValue = listed == busid ? nil : files.line(listed, "online", &problems).map(Self.isOne)
        }
        if let child {
            deviceDirectories[id] = child
            devno = Int(parseBusID(child)!.1)
            // `modalias` (`ccw:tCCCCmMMdtDDDDdmNN`) holds both types in one read; `devtype` and
            // `cutype` where it is missing or does not parse.
            if let types = files.line(child, "modalias", &problems).flatMap(parseCCWModalias) {
                (cuType, cuModel, devType, devModel) = types
            } else {
                (devType, devModel) =
                    attribute(at: files.directory, dir, child + "/devtype").flatMap(parseTypeModel) ?? (0, 0)
                (cuType, cuModel) =
                    attribute(at: files.directory, dir, child + "/cutype").flatMap(parseTypeModel) ?? (0, 0)
            }
            online = onlineValue == true
            let driver = files.linkBasename(child, "driver")
            drivers[id] = driver
            if let text = files.line(child, "availability", &problems), !Self.equals(text, "good") {
                let value = String(decoding: text, as: UTF8.self)
                if let state = DeviceAvailability(rawValue: value) {
                    availability[id] = state
                } else {
                    problems.append("\(dir)/\(child)/availability: '\(value)' is none of Linux's four, left out")
                }
            }
            // Only a DASD driver's device has path health (its `driver` link is read just now:
            // not again, for the tens of thousands of others).
            if let driver, DASDReader.drivers.contains(driver),
                case .health(let health) = DASDReader.read(subchannel: dir, device: child, cssid: id.cssid)
            {
                dasdHealth = health
            }
        } else if let busid, let (_, number) = parseBusID(busid) {
            // A device number without a ccw device (the kernel removed it, e.g. when its only
            // path went offline, or never bound one): lscss shows the number and no device.
            devno = Int(number)
            withoutDevice.append(id)
        }
        if let number = devno {
            let key = DeviceID(cssid: id.cssid, ssid: id.ssid, devno: UInt16(number)).rawValue
            guard devices.insert(key).inserted else {
                problems.append("\(dir): device number \(number) seen twice, left out")
                return
            }
        }
        topology.subchannels.append(
            .init(
                id: id, devno: devno, devType: devType, devModel: devModel, cuType: cuType, cuModel: cuModel,
                chpids: chpids, enabled: online, online: online))
        if let dasdHealth {
            dasd[id] = dasdHealth
            problems += dasdHealth.problems
        }
        self.masks[id] = (pam: packed(masks[1]), pom: packed(masks[2]) | ~packed(0xff), vpm: vpm)
        linuxPIM[id] = pim
    }

    /// Up to `fields.count` hex fields of at most two digits (`40 41 00 …`, `e0 c0 ff`); nil
    /// when one is malformed or there are more.
    private static func hexFields(_ line: UnsafeBufferPointer<UInt8>, into fields: inout [Int]) -> Int? {
        SysfsFiles.hexBytes(UnsafeRawBufferPointer(line), count: line.count, into: &fields)
    }

    private static func isOne(_ line: UnsafeBufferPointer<UInt8>) -> Bool {
        line.count == 1 && line[0] == UInt8(ascii: "1")
    }

    private static func equals(_ line: UnsafeBufferPointer<UInt8>, _ text: StaticString) -> Bool {
        line.count == text.utf8CodeUnitCount && memcmp(line.baseAddress!, text.utf8Start, line.count) == 0
    }

    /// A subchannel may name a chpid that has no `chpN.XX` directory (not registered yet):
    /// the model needs every path, so it stands in as not recognized.
    private mutating func addMissingPaths() {
        let known = Set(topology.channelPaths.map(\.id))
        var missing = Set<ChannelPathID>()
        for sch in topology.subchannels {
            for chpid in sch.chpids where !known.contains(chpid) { missing.insert(chpid) }
        }
        for chpid in missing.sorted() {
            topology.channelPaths.append(.init(id: chpid, type: 0, configure: .notRecognized))
            placeholders.insert(chpid)
            problems.append("chpid \(chpid): used by subchannels but has no sysfs directory, taken as not-recognized")
        }
        topology.channelPaths.sort { $0.id < $1.id }
    }
}

/// `0.S.XXXX` (a subchannel or device bus id) -> (ssid, number).
/// Read in place, not split: a start-up at 262,144 subchannels parses a million of them.
func parseBusID(_ text: String) -> (UInt8, UInt16)? {
    text.utf8.withContiguousStorageIfAvailable(parseBusID) ?? Array(text.utf8).withUnsafeBufferPointer(parseBusID)
}

/// `parseBusID` of bytes.
func parseBusID(_ bytes: UnsafeBufferPointer<UInt8>) -> (UInt8, UInt16)? {
    // The number is exactly four digits: the last separator is fifth from the end (a longer
    // first part, the only way it could be the first separator, exceeds 2 digits).
    guard bytes.count >= 8, bytes[bytes.count - 5] == UInt8(ascii: "."),
        let (_, ssid, number) = Hex.parts(bytes, maxDigits: (2, 1, 4)), ssid <= 3
    else { return nil }
    return (UInt8(ssid), UInt16(number))
}

/// The bytes as a String when they are a bus id (a small String: no allocation); else nil.
func parseBusIDName(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
    parseBusID(bytes) == nil ? nil : String(decoding: bytes, as: UTF8.self)
}

/// A ccw device's `modalias`, `ccw:t3990mE9dt3390dm0C` (device.c `snprint_alias`: `dtdm`
/// for a device type of 0, which `devtype` shows as `n/a`) -> (cu type, cu model, device
/// type, device model); nil for anything else.
func parseCCWModalias(_ text: String) -> (Int, Int, Int, Int)? {
    Array(text.utf8).withUnsafeBufferPointer(parseCCWModalias)
}

/// `parseCCWModalias` of bytes.
func parseCCWModalias(_ bytes: UnsafeBufferPointer<UInt8>) -> (Int, Int, Int, Int)? {
    func hex(_ start: Int, _ count: Int) -> Int? {
        guard start + count <= bytes.count else { return nil }
        var value = 0
        for byte in bytes[start..<start + count] {
            guard let digit = Hex.digit(byte) else { return nil }
            value = value * 16 + digit
        }
        return value
    }
    // "ccw:t" CCCC "m" MM "dt" then "dm" (16 bytes), or DDDD "dm" NN (22 bytes).
    guard bytes.count == 16 || bytes.count == 22, memcmp(bytes.baseAddress!, "ccw:t", 5) == 0, bytes[9] == 0x6d,
        bytes[12] == 0x64, bytes[13] == 0x74, let cuType = hex(5, 4), let cuModel = hex(10, 2)
    else { return nil }
    if bytes.count == 16 {
        return bytes[14] == 0x64 && bytes[15] == 0x6d ? (cuType, cuModel, 0, 0) : nil
    }
    guard bytes[18] == 0x64, bytes[19] == 0x6d, let devType = hex(14, 4), devType != 0, let devModel = hex(20, 2)
    else { return nil }
    return (cuType, cuModel, devType, devModel)
}

/// `3390/0c` -> (0x3390, 0x0c); `n/a` -> (0, 0).
func parseTypeModel(_ text: String) -> (Int, Int)? {
    if text == "n/a" { return (0, 0) }
    let parts = text.split(separator: "/")
    guard parts.count == 2, let type = parseHex(parts[0], maxDigits: 4), let model = parseHex(parts[1], maxDigits: 2)
    else {
        return nil
    }
    return (type, model)
}

/// 1...`maxDigits` hex digits, as sysfs prints them.
func parseHex(_ text: Substring, maxDigits: Int) -> Int? {
    Hex.number(text, maxDigits: maxDigits)
}
