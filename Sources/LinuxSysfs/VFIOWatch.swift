// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The passthrough view the follower keeps current, read by queries on the event loop without
/// waiting for a reading. A full reading (`readAll`: start-up, `SysfsBackend.refresh`) reads
/// everything; a poll tick (`poll`) reads only what may have changed (API/linux-sysfs.md,
/// "vfio-ccw passthrough", detection bounds):
/// - the candidates (I/O subchannels without a ccw device) are worked out again only when the
///   mirror installed a new layout (`SysfsMirror.layoutReadings`: a device came or went, as a
///   binding or unbinding makes it); a new candidate is read at once, one that went is dropped;
/// - the candidates are re-read round robin, `ceil(candidates / ticksPerSweep)` a tick, so that
///   each is read once per sweep period (a new mdev, a removal, a `driver_override` change);
/// - libvirt's status directory is listed every tick (one directory read); its files are looked
///   at again (a stat each, parsed when their stamp moved) when the names or the directory's
///   stamp moved (a domain's file created, renamed into place or removed), when an mdev
///   appeared that no file names, or once per sweep period (a file rewritten in place);
/// - `/proc` is scanned when an mdev no status file names has a group not scanned for yet, when
///   a holding process's `/proc/PID` went (one stat per such process a tick), or once per
///   sweep period (a QEMU started by hand on an existing mdev).
/// Cost of an idle tick: `ceil(candidates / ticksPerSweep)` subchannel readings, one stat and
/// one listing of the status directory, one stat per holding process seen in `/proc`; the view is rebuilt only when an input changed.
final class VFIOWatch: Sendable {
    private let state: Mutex<VFIOFollowState>
    private let view = Mutex(HostPassthroughView())
    /// Readings that changed the view, for tests.
    private let changeCount = Mutex(0)

    init(_ discovery: VFIODiscovery) {
        state = Mutex(VFIOFollowState(discovery: discovery))
    }

    /// The last reading.
    var current: HostPassthroughView { view.withLock { $0 } }
    var changes: Int { changeCount.withLock { $0 } }
    /// What the readings so far cost, for tests and the benchmark.
    var counts: VFIOFollowState.Counts { state.withLock { $0.counts } }

    /// One poll tick's share (see the type); true when the view changed.
    /// - Parameter ticksPerSweep: poll ticks per sweep period (at least 1).
    @discardableResult
    func poll(_ mirror: SysfsMirror, ticksPerSweep: Int) -> Bool {
        publish(state.withLock { $0.tick(mirror, ticksPerSweep: max(1, ticksPerSweep), full: false) })
    }

    /// Everything read again, here and now; true when the view changed.
    @discardableResult
    func readAll(_ mirror: SysfsMirror) -> Bool {
        publish(state.withLock { $0.tick(mirror, ticksPerSweep: 1, full: true) })
    }

    private func publish(_ newer: HostPassthroughView?) -> Bool {
        guard let newer else { return false }
        let changed = view.withLock { current in
            defer { current = newer }
            return current != newer
        }
        if changed { changeCount.withLock { $0 += 1 } }
        return changed
    }
}

/// What `VFIOWatch` remembers between ticks: the candidates, the bound subchannels as read, the
/// libvirt domains and the last `/proc` scan, and when each was last read.
struct VFIOFollowState {
    var discovery: VFIODiscovery
    /// `SysfsMirror.layoutReadings` when the candidates were worked out (-1: never).
    private var layoutReading = -1
    private var candidates: [SubchannelID] = []
    private var cursor = 0
    /// Bound subchannels as read (holders not yet attributed).
    private var bound: [SubchannelID: HostPassthrough] = [:]
    private var libvirtStamp: FileStamp?
    private var libvirtNames: [String] = []
    private var byUUID: [String: LibvirtDomainStatus] = [:]
    private var ticksSinceLibvirt = 0
    /// The mdevs there were when the directory was last listed.
    private var listedFor = Set<String>()
    private var scan: ProcessScan?
    private var scannedGroups = Set<Int>()
    private var ticksSinceScan = 0

    /// Readings so far, by kind.
    struct Counts: Equatable {
        /// Subchannels whose `driver` link (and, when bound, the rest) was read.
        var subchannelReads = 0
        /// Readings of libvirt's status files (a stat each, parsed when changed).
        var libvirtReads = 0
        /// Scans of every process's `fd/`.
        var procScans = 0
    }
    private(set) var counts = Counts()

    init(discovery: VFIODiscovery) {
        self.discovery = discovery
    }

    /// One tick (or, `full`, everything); the new view when an input changed, else nil.
    mutating func tick(_ mirror: SysfsMirror, ticksPerSweep: Int, full: Bool) -> HostPassthroughView? {
        var dirty = full
        var toRead: [SubchannelID] = []
        if full || mirror.layoutReadings != layoutReading {
            let newer = Self.candidates(of: mirror)
            let known = Set(candidates)
            toRead = full ? newer : newer.filter { !known.contains($0) }
            let kept = Set(newer)
            let before = bound.count
            bound = bound.filter { kept.contains($0.key) }
            if bound.count != before { dirty = true }
            candidates = newer
            layoutReading = mirror.layoutReadings
            if cursor >= candidates.count { cursor = 0 }
        }
        if !full, !candidates.isEmpty {
            let share = min(candidates.count, (candidates.count + ticksPerSweep - 1) / ticksPerSweep)
            for _ in 0..<share {
                toRead.append(candidates[cursor])
                cursor = (cursor + 1) % candidates.count
            }
        }
        for id in toRead {
            counts.subchannelReads += 1
            let read = discovery.readSubchannel(id)
            if bound[id] != read {
                bound[id] = read
                dirty = true
            }
        }
        dirty = readGuests(ticksPerSweep: ticksPerSweep, full: full) || dirty
        guard dirty else { return nil }
        var subchannels = bound.values.sorted { $0.subchannel < $1.subchannel }
        VFIODiscovery.attribute(
            &subchannels, byUUID: byUUID, scan: scan, unreadable: discovery.unreadableStatusFiles)
        return HostPassthroughView(subchannels: subchannels)
    }

    /// The libvirt domains and the `/proc` scan, each re-read when due (see `VFIOWatch`); true
    /// when either was re-read.
    private mutating func readGuests(ticksPerSweep: Int, full: Bool) -> Bool {
        var changed = false
        let withMdev = bound.values.filter { $0.mdev != nil }
        ticksSinceLibvirt += 1
        // Its names too, not only its stamp: a file created and removed within one tick of
        // the kernel's coarse clock leaves the directory's mtime as it was.
        let directory = discovery.runRoot + "/libvirt/qemu"
        let stamp = FileStamp(directory)
        let names = ((try? SysfsFiles.entries(directory)) ?? nil)?.filter { $0.hasSuffix(".xml") }.sorted() ?? []
        // An mdev that no file named when the directory was last listed may be a domain's
        // whose file is being written: listed again (the files are parsed again only when
        // their own stamps moved).
        let uuids = Set(withMdev.map { $0.mdev!.uuid })
        let newlyUnnamed = uuids.contains { byUUID[$0] == nil && !listedFor.contains($0) }
        if full || stamp != libvirtStamp || names != libvirtNames || ticksSinceLibvirt >= ticksPerSweep
            || newlyUnnamed
        {
            libvirtStamp = stamp
            libvirtNames = names
            listedFor = uuids
            ticksSinceLibvirt = 0
            counts.libvirtReads += 1
            let newer = VFIODiscovery.domainsByUUID(discovery.readLibvirtStatus())
            if newer != byUUID {
                byUUID = newer
                changed = true
            }
        }
        let groups = VFIODiscovery.unattributedGroups(withMdev, byUUID)
        ticksSinceScan += 1
        guard !groups.isEmpty else {
            if scan != nil {
                scan = nil
                scannedGroups = []
                changed = true
            }
            return changed
        }
        var rescan = full || scan == nil || ticksSinceScan >= ticksPerSweep || !groups.isSubset(of: scannedGroups)
        if !rescan, let scan {
            // A holder that exited: its /proc entry is gone.
            var info = stat()
            rescan = scan.holders.values.contains { holder in
                guard let pid = holder.pid else { return false }
                return stat("\(discovery.procRoot)/\(pid)", &info) != 0
            }
        }
        if rescan {
            counts.procScans += 1
            ticksSinceScan = 0
            scannedGroups = groups
            scan = ProcessScan.holders(of: groups, procRoot: discovery.procRoot)
            changed = true
        }
        return changed
    }

    /// I/O subchannels without a ccw device: binding to vfio_ccw removes the device child, so a
    /// subchannel with one cannot be bound.
    static func candidates(of mirror: SysfsMirror) -> [SubchannelID] {
        var candidates: [SubchannelID] = []
        let subchannels = mirror.subsystem.subchannels
        for (index, device) in mirror.deviceDirectories.enumerated()
        where device == nil && index < subchannels.count && subchannels[index].type == .io {
            candidates.append(subchannels[index].id)
        }
        return candidates
    }
}
