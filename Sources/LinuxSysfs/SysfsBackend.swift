// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A real machine through Linux sysfs (`--backend linux-sysfs[:ROOT]`). The view is the last
/// reading of the tree. Readings happen off the event loop (`SysfsFollower`): the server
/// calls `startFollowing`, and applies on its loop each update the follower delivers.
/// `vary-path` and `configure-chpid` write the chpid's `status` and `configure` files as
/// `chchp` does, then re-read that chpid and its subchannels on the writing thread; the
/// write's blocking part returns that reading, which the server applies on its loop
/// (`apply`) before `completeWrite` takes the chpid's change from it, so the reply is what
/// the kernel now says. Operations Linux has no file for are unsupported.
package final class SysfsBackend: ObservedBackend {
    package let kind = BackendKind.linuxSysfs
    /// The directory that holds `devices/` and `bus/` (`/sys`).
    package let root: String
    /// Where the tree's chpids and subchannels are.
    let paths: SysfsPaths
    package private(set) var subsystem: Subsystem
    private var details: [ChannelPathID: ChannelPathDetails]
    /// Devices under `cssN/defunct/` (lscss lists them with subchannel `n/a`).
    package private(set) var orphanedDevices: [OrphanedDevice]
    /// The driver bound to each subchannel's ccw device (`driver` link), as last read.
    private var drivers: [SubchannelID: String]

    package func deviceDriver(of id: SubchannelID) -> String? { drivers[id] }
    /// Per device whose `availability` read other than `good`, as of the last full reading.
    private var availability: [SubchannelID: DeviceAvailability]

    package func deviceAvailability(of subchannel: Subchannel) -> DeviceAvailability? {
        guard subchannel.deviceID != nil, subchannel.hasDevice else { return nil }
        return availability[subchannel.id] ?? .good
    }
    /// Per DASD subchannel: the DASD driver's view of its paths, as last read.
    package private(set) var dasdPathHealth: [SubchannelID: DASDPathHealth]
    /// Its roll-up per chpid, computed when first asked after the DASDs changed (a scrape and
    /// query-chpids then cost O(chpids), not O(DASDs)).
    private var dasdSummaries: [ChannelPathID: DASDChannelPathSummary]?
    package var dasdChannelPathSummaries: [ChannelPathID: DASDChannelPathSummary] {
        if let dasdSummaries { return dasdSummaries }
        let summaries = DASDChannelPathSummary.rollUp(dasdPathHealth.values)
        dasdSummaries = summaries
        return summaries
    }
    private var generation: UInt64 = 0
    let follower: SysfsFollower
    /// Changes to other chpids that the reading of a write made here and now (`varyPath`,
    /// `configurePath`: tools and tests, no server to publish them) found, for the next
    /// `refresh()`, which returns them before its own.
    private var unreported: [PathChange] = []
    /// Problems of the start-up reading (files not understood), for the log.
    package let problems: [String]
    /// Where the writes go: the kernel's files (a test stands in for the kernel's refusals).
    let writer: any SysfsAttributeWriter
    /// `/proc/sysinfo` as read at start-up (the partition's name labels the metrics); nil
    /// when there is none (not an s390 kernel).
    package let systemInformation: SystemInformation?
    /// The partition's name from `/proc/sysinfo` ("LPAR Name"), the metrics' `partition`
    /// label; nil where the host has none (not an s390 kernel, or a `--proc-root` without it).
    package var partitionName: String? { systemInformation?.partitionName }
    /// `/proc/sys/kernel/osrelease` as read at start-up; nil when unknown (`cmg` is then read
    /// as decimal, as since Linux 6.7).
    package let kernelRelease: KernelRelease?

    /// Reads the tree once, and `/proc`'s `sysinfo` and `sys/kernel/osrelease`.
    /// - Parameters:
    ///   - root: the directory that stands for `/sys`.
    ///   - procRoot: the directory that stands for `/proc` (`--proc-root`).
    ///   - runRoot: the directory that stands for `/run` (`--run-root`): libvirt's status files.
    ///   - writer: where the writes go; the kernel's files unless a test stands in.
    ///   - progress: hears, every 16,384 subchannels of the start-up reading, how many are read
    ///     and of how many (from the reading threads, concurrently).
    /// - Throws: `BackendError.io` naming what could not be read.
    package init(
        root: String = "/sys", procRoot: String = "/proc", runRoot: String = "/run",
        writer: any SysfsAttributeWriter = KernelAttributeWriter(),
        progress: (@Sendable (_ read: Int, _ total: Int) -> Void)? = nil
    ) throws(BackendError) {
        self.root = root
        self.writer = writer
        paths = SysfsPaths(root: root)
        let proc = ProcFiles(root: procRoot)
        systemInformation = proc.systemInformation()
        kernelRelease = proc.kernelRelease()
        let cmgRadix = kernelRelease?.cmgRadix ?? 10
        let readingStarted = KernelLogWatcher.monotonicMicros()
        let observation = try SysfsObservation.read(root: root, cmgRadix: cmgRadix, progress: progress)
        subsystem = try observation.subsystem()
        details = observation.details
        orphanedDevices = observation.orphans
        drivers = observation.drivers
        availability = observation.availability
        dasdPathHealth = observation.dasd
        problems = observation.problems
        follower = SysfsFollower(
            mirror: SysfsMirror(
                root: root, observation: observation, subsystem: subsystem, cmgRadix: cmgRadix, proc: proc))
        follower.readingStarted = readingStarted
        // The facility's state and the first sample, before any query.
        follower.measureNow()
        follower.vfio = VFIOWatch(VFIODiscovery(paths: paths, runRoot: runRoot, procRoot: procRoot))
        refreshPassthrough()
    }

    /// vfio-ccw passthrough as last read (a share every poll tick, VFIOWatch.swift; never
    /// blocks for a reading).
    package var hostPassthrough: HostPassthroughView? { follower.vfio?.current }

    /// Reads vfio-ccw passthrough now, on the calling thread (start-up, tests, tools); true
    /// when it changed.
    @discardableResult
    package func refreshPassthrough() -> Bool {
        follower.inspect { mirror in follower.vfio?.readAll(mirror) } ?? false
    }

    package func details(of path: ChannelPathID) -> ChannelPathDetails? {
        details[path] ?? ChannelPathDetails()
    }

    /// Directories others write in, for inotify: the css directory (entries come and go),
    /// each chpid's (`chchp`) and each subchannel's (fixture trees; real sysfs attributes of
    /// subchannels change only inside the kernel, which inotify does not see).
    package var watchedDirectories: [(path: String, target: ObservationTarget)] {
        var dirs: [(String, ObservationTarget)] = []
        for cssid in subsystem.cssids {
            dirs.append((paths.css(cssid), .layout))
            for path in subsystem.channelPaths where path.id.cssid == cssid {
                dirs.append((paths.channelPath(path.id), .channelPath(path.id)))
            }
        }
        for sch in subsystem.subchannels { dirs.append((paths.subchannel(sch.id), .subchannel(sch.id))) }
        return dirs
    }

    package func startFollowing(_ options: FollowOptions, deliver: @escaping @Sendable (ObservedUpdate) -> Void) {
        follower.start(options, deliver: deliver)
    }

    package func stopFollowing() { follower.stop() }

    /// The follower's poll ticks: duration, last clean one, read errors (any thread).
    package var readingStats: BackendReadingStats? { follower.stats }

    package func requestReread(_ targets: [ObservationTarget]) { follower.request(targets) }

    package func apply(_ update: ObservedUpdate) -> (before: Subsystem, changes: [PathChange]) {
        let before = subsystem
        if update.generation > generation {
            generation = update.generation
            subsystem = update.subsystem
            details = update.details
            orphanedDevices = update.orphans
            drivers = update.drivers
            if let read = update.availability { availability = read }
            // The mirror hands the same storage on while its DASDs stay as they were, which
            // makes this comparison cheap then.
            if update.dasd != dasdPathHealth {
                dasdPathHealth = update.dasd
                dasdSummaries = nil
            }
        }
        return (before, update.changes.filter { $0.chpid != update.write })
    }

    /// Reads every path and subchannel now, on the calling thread, without applying it: the
    /// update `apply` takes (nil when nothing changed). For tests and tools; the server follows
    /// with `startFollowing` instead.
    package func readNow() -> ObservedUpdate? {
        follower.withMirror { mirror in
            if let update = mirror.layoutCheck() { return update }
            return mirror.reread(
                paths: mirror.subsystem.channelPaths.map(\.id), subchannels: mirror.subsystem.subchannels.map(\.id))
        }
    }

    /// `readNow()`, applied: the changes since the last reading (after those that the
    /// reading of a write made here and now found besides its own).
    package func refresh() throws(BackendError) -> [PathChange] {
        let update = readNow()
        var changes = unreported
        unreported = []
        if let update { changes += apply(update).changes }
        refreshPassthrough()
        return changes
    }

    /// How the follower has read so far: sweep rounds completed, subchannel directories read.
    package var readingCounts: (sweepRounds: Int, subchannelReads: Int) {
        follower.inspect { ($0.sweepRounds, $0.subchannelReads) }
    }

    // MARK: Operations

    package func planVary(_ id: ChannelPathID, to state: VaryState) throws(BackendError) -> PendingWrite {
        try plan(.vary(state), state == .online ? "online" : "offline", file: "status", of: id)
    }

    package func planConfigure(_ id: ChannelPathID, to state: ConfigureState) throws(BackendError) -> PendingWrite {
        guard state == .configured || state == .standby else { throw .model(.invalidConfigureTarget(state)) }
        return try plan(.configure(state), state == .configured ? "1" : "0", file: "configure", of: id)
    }

    /// The write's change, from the reading its blocking part returned (which the caller has
    /// applied, `apply`); the chpid unchanged when that reading shows no change for it.
    /// - Throws: the write's or the reading's error.
    package func completeWrite(_ write: PendingWrite, _ outcome: PendingWrite.Outcome) throws(BackendError)
        -> PathChange
    {
        let reading = try outcome.get()
        if let reading { follower.writeTaken(reading.generation) }
        if let own = reading?.changes.first(where: { $0.chpid == write.chpid }) { return own }
        let path = subsystem.channelPath(write.chpid)!
        return PathChange(before: path, after: path, affected: [], crws: [], crwsLost: 0)
    }

    /// Plans, performs and completes a vary here and now, on the calling thread (tools and
    /// tests; the server defers the write): the write's reading is applied, and what it found
    /// on other chpids is kept for the next `refresh()`.
    /// - Throws: `BackendError` as `planVary` does, or the write's or reading's error.
    package func varyPath(_ id: ChannelPathID, to state: VaryState) throws(BackendError) -> PathChange {
        try writeNow(planVary(id, to: state))
    }

    /// `configure-chpid` here and now, as `varyPath(_:to:)` does a vary.
    /// - Throws: `BackendError` as `planConfigure` does, or the write's or reading's error.
    package func configurePath(_ id: ChannelPathID, to state: ConfigureState) throws(BackendError) -> PathChange {
        try writeNow(planConfigure(id, to: state))
    }

    private func writeNow(_ write: PendingWrite) throws(BackendError) -> PathChange {
        let outcome = write.perform?() ?? .success(nil)
        if case .success(let reading?) = outcome { unreported += apply(reading).changes }
        return try completeWrite(write, outcome)
    }

    /// Writes the slot mask of `chpids` (nil: every path the driver disabled, `ifccpm |
    /// cablepm | cuirpm`) to the device's `path_reset` as hex, as `echo 80 > path_reset` does
    /// (drivers/s390/block/dasd_devmap.c `dasd_path_reset_store`: kstrtouint base 16, then
    /// `reset_path`), then re-reads the device. A refusal is the write's errno.
    /// - Throws: `.model(.unknownDevice)`; `.io` for a device that is not a DASD, a chpid that is
    ///   not one of its paths, masks that cannot be read, or nothing to reset.
    package func planDASDPathReset(_ device: DeviceID, chpids: [ChannelPathID]?) throws(BackendError)
        -> @Sendable () -> PendingWrite.Outcome
    {
        guard let sch = subsystem.subchannel(device: device) else { throw .model(.unknownDevice(device)) }
        let name = SysfsPaths.subchannelName(sch.id)
        let path = paths.subchannel(sch.id) + "/" + device.description + "/path_reset"
        func refuse(_ message: String) -> BackendError {
            .io(path: path, operation: "dasd-path-reset of", errno: EINVAL, message: message)
        }
        guard let health = dasdPathHealth[sch.id] else {
            throw refuse("device \(device) (subchannel \(name)) is not bound to dasd-eckd or dasd-fba")
        }
        let mask: UInt8
        if let chpids {
            guard let slots = health.slotMask(of: chpids) else {
                let names = chpids.filter { !health.slots.contains($0) }.map(\.description).joined(separator: ", ")
                throw refuse("\(names): not a path of device \(device)")
            }
            mask = slots
        } else {
            guard let masks = health.masks else {
                throw refuse(
                    "the path masks of device \(device) are unknown: \(health.problems.joined(separator: "; "))")
            }
            guard masks.disabledByDriver != 0 else {
                throw refuse("the driver has disabled no path of device \(device)")
            }
            mask = masks.disabledByDriver
        }
        let follower = self.follower
        let writer = self.writer
        let id = sch.id
        return {
            do throws(BackendError) {
                try writer.write(Hex.string(mask, width: 2), to: path)
            } catch {
                return .failure(error)
            }
            return .success(
                follower.withMirror { $0.reread(paths: [], subchannels: [id], dasdReading: .named) })
        }
    }

    package func varyPath(_ id: ChannelPathID, to state: VaryState, subchannel: SubchannelID) throws(BackendError)
        -> PathChange
    {
        throw unsupported("vary-path with 'subchannel'", "Linux varies a channel path for all its devices only")
    }

    package func injectPathFault(_ id: ChannelPathID, _ fault: PathFault) throws(BackendError) -> PathChange {
        throw unsupported("inject-path-fault", "faults happen to the machine; they cannot be injected through sysfs")
    }

    package func resetChannelPath(_ id: ChannelPathID) throws(BackendError) -> ResetChannelPathResult {
        throw unsupported("reset-channel-path", "Linux has no sysfs file for RCHP")
    }

    package func modifySubchannel(_ id: SubchannelID, schib: SCHIB) throws(BackendError) -> ModifySubchannelResult {
        throw unsupported("modify-subchannel", "the kernel's driver owns the subchannel's SCHIB")
    }

    package func storeChannelReportWord() throws(BackendError) -> StoreCRWResult {
        throw unsupported("store-crw", "the kernel consumes channel reports itself")
    }

    // MARK: Internals

    private func plan(_ change: PendingWrite.Change, _ value: String, file: String, of id: ChannelPathID)
        throws(BackendError) -> PendingWrite
    {
        guard subsystem.channelPath(id) != nil else { throw .model(.unknownChannelPath(id)) }
        let path = paths.channelPath(id) + "/" + file
        let follower = self.follower
        let writer = self.writer
        let ticket = WriteTicket(follower: follower)
        return PendingWrite(chpid: id, change: change) {
            follower.writeStarting(id)
            do throws(BackendError) {
                try writer.write(value, to: path)
            } catch {
                follower.writeFailed(id)
                return .failure(error)
            }
            // Read what the write can change, here, off the loop; the reading goes back to the
            // loop with the outcome.
            return .success(follower.rereadAfterWrite(id, ticket: ticket))
        }
    }

    private func unsupported(_ operation: String, _ reason: String) -> BackendError {
        .unsupported(operation: operation, backend: name, reason: reason)
    }
}
