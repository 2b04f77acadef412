// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Drives the `SysfsMirror` from a thread of its own, so that no sysfs read ever runs on the
/// server's event loop:
/// - every poll interval, one tick (every chpid's attributes), then the sweep's share of
///   subchannels, `max(ceil(N × poll / sweep), min(N, 512))`, read in slices of 256: while the
///   kernel log is followed only each one's `vpm` and device `online` (and a DASD's
///   `path_masks`), the rest when they moved, since every channel report is logged
///   (`SysfsMirror.SweepReading`); otherwise every file;
/// - a path whose attributes changed, or that a request names, is published at once (with the
///   `lpm` a vary implies); its members' `pimpampom` are queued and read in slices of 4,096 on
///   up to 4 threads before the sweep (which still gets a slice every 50 ms), each slice's
///   changes published as found (as part of the path's change);
/// - between slices, and at once when they arrive, requested re-reads (inotify, the kernel
///   log) go first: a request waits for at most one slice, never for a sweep;
/// - a vary or configure reads its chpid on the writing thread (`rereadAfterWrite`), under the
///   same lock, so readings never interleave, and its blocking part returns that reading to
///   the event loop with the write's outcome.
///
/// Every update reaches the loop in generation order: the follower's own are delivered under
/// the mirror's lock, and while a write's reading is on its way to the loop (returned, not
/// yet taken by `SysfsBackend.completeWrite`), no reading starts (`writeInFlight`); the wait
/// is the completion's hop to the loop. A write whose completion never comes (the server
/// stopped the session meanwhile and dropped the reply, as at shutdown) has its reading
/// delivered as observed when the write is released (`WriteTicket`), so that neither its
/// changes nor the readings after it are lost.
final class SysfsFollower: @unchecked Sendable {
    /// Subchannels read per slice of a sweep: small enough that a request waits little.
    static let sliceSize = 256
    /// Below this many subchannels a tick reads them all (a small machine is swept every tick).
    static let minimumShare = 512
    /// Members of a re-read path read per slice (on `SysfsMirror.parallelReaders` threads):
    /// a few milliseconds, so that a request or a tick waits little, and each slice's changes
    /// go out as they are found.
    static let memberSliceSize = 4096
    /// The longest the sweep waits for queued members before it reads a slice (nanoseconds).
    static let sweepWaitLimit: UInt64 = 50_000_000

    private let mirror: SysfsMirror
    private let mirrorLock = Condition()
    private let queue = Condition()
    // Guarded by `queue`.
    private var paths = Set<ChannelPathID>()
    private var subchannels = Set<SubchannelID>()
    private var numbers = Set<UInt16>()
    private var devices = Set<DeviceID>()
    private var layout = false
    private var allPaths = false
    private var running = false
    // Guarded by `mirrorLock`.
    private var kernelLog: KernelLogWatcher?
    /// Guards `deliver` and `writeInFlight`; never held while waiting for `mirrorLock`, so the
    /// event loop, which takes it to release a write's reading, never waits for a reading.
    private let gate = Condition()
    // Guarded by `gate`.
    private var deliver: (@Sendable (ObservedUpdate) -> Void)?
    /// The generation of a write's reading that its blocking part has returned and the loop
    /// has not taken yet (set under `mirrorLock` too, so a reading that holds it sees it).
    private var writeInFlight: UInt64?
    /// The readings' health, under a lock of its own (not `mirrorLock`): a scrape reads it
    /// without waiting for a reading in progress.
    private let statistics: Mutex<BackendReadingStats>
    /// The passes over the channel-measurement files and what they add up to, under a lock of
    /// their own: a query takes them without waiting for a reading in progress.
    let measurements = SysfsMeasurements()
    /// vfio-ccw passthrough, a share re-read on every tick (VFIOWatch.swift); set before `start`.
    var vfio: VFIOWatch?
    /// When the backend's first full reading began (`KernelLogWatcher.monotonicMicros`): the
    /// kernel log is read from then at its first open. Set before `start`.
    var readingStarted: UInt64?

    init(mirror: SysfsMirror) {
        self.mirror = mirror
        // The backend's start-up reading of the whole tree succeeded (it throws otherwise).
        statistics = Mutex(
            BackendReadingStats(
                lastGoodReading: wallClockSeconds(),
                readErrors: Dictionary(
                    uniqueKeysWithValues: SysfsProblemLog.Kind.allCases.map { ($0.rawValue, 0) })))
    }

    /// The readings' health so far; never waits for a reading.
    var stats: BackendReadingStats {
        var stats = statistics.withLock { $0 }
        stats.kernelLogLines = kernelLogCounts.map(\.byOutcome)
        return stats
    }

    /// Runs a reading (`body`) on the mirror under its lock, once no write's reading is on its
    /// way to the loop, and returns the update it computed (nil: nothing changed). Tests and
    /// tools call it; the follower's thread reads through `follow`.
    func withMirror(_ body: (SysfsMirror) -> ObservedUpdate?) -> ObservedUpdate? {
        reading(body, then: { _ in })
    }

    /// A reading of the follower's own (a tick, the sweep, a request, queued members): its
    /// update is delivered (when following) before the mirror's lock is released.
    private func follow(_ body: (SysfsMirror) -> ObservedUpdate?) {
        reading(body) { update in gate.withLock { deliver }?(update) }
    }

    /// Runs `body` under the mirror's lock once no write's reading is in flight, counts its
    /// read errors, and hands its update to `then` before the lock is released.
    @discardableResult
    private func reading(
        _ body: (SysfsMirror) -> ObservedUpdate?, then: (ObservedUpdate) -> Void
    ) -> ObservedUpdate? {
        while true {
            var inFlight = false
            let update: ObservedUpdate? = mirrorLock.withLock {
                inFlight = gate.withLock { writeInFlight != nil }
                guard !inFlight else { return nil }
                let update = body(mirror)
                let errors = mirror.takeErrors()
                if !errors.isEmpty {
                    statistics.withLock { stats in
                        for (kind, count) in errors { stats.readErrors[kind.rawValue, default: 0] += count }
                    }
                }
                if let update { then(update) }
                return update
            }
            guard inFlight else { return update }
            gate.withLock {
                while writeInFlight != nil { gate.wait(until: nil) }
            }
        }
    }

    /// Reads without delivering (tests, start-up).
    func inspect<T>(_ body: (SysfsMirror) -> T) -> T {
        mirrorLock.withLock { body(mirror) }
    }

    func start(_ options: FollowOptions, deliver: @escaping @Sendable (ObservedUpdate) -> Void) {
        mirrorLock.withLock { mirror.log = options.log }
        gate.withLock { self.deliver = deliver }
        let alreadyRunning = queue.withLock {
            defer { running = true }
            return running
        }
        guard !alreadyRunning else { return }
        let poll = options.pollInterval.map {
            UInt64($0.components.seconds) * 1_000_000_000 + UInt64($0.components.attoseconds / 1_000_000_000)
        }
        let sweep =
            UInt64(options.sweepInterval.components.seconds) * 1_000_000_000
            + UInt64(options.sweepInterval.components.attoseconds / 1_000_000_000)
        statistics.withLock { $0.pollInterval = poll.flatMap { $0 > 0 ? Double($0) / 1e9 : nil } }
        startThread { [self] in run(poll: poll.flatMap { $0 > 0 ? $0 : nil }, sweep: max(sweep, 1)) }
        if let path = options.kernelLog {
            let watcher = KernelLogWatcher(path: path, since: readingStarted, log: options.log) { [weak self] trigger in
                self?.request(trigger)
            }
            mirrorLock.withLock { kernelLog = watcher }
            watcher.start()
        }
    }

    func stop() {
        queue.withLock {
            running = false
            queue.signal()
        }
        mirrorLock.withLock { kernelLog?.stop() }
        gate.withLock {
            deliver = nil
            writeInFlight = nil  // nothing waits for the loop any more
            gate.signal()
        }
    }

    /// Counters of the kernel-log watcher (lines acted on, ignored, garbled, too long).
    var kernelLogCounts: KernelLogWatcher.Counts? {
        mirrorLock.withLock { kernelLog?.counts }
    }

    func request(_ targets: [ObservationTarget]) {
        queue.withLock {
            for target in targets {
                switch target {
                case .channelPath(let id): paths.insert(id)
                case .subchannel(let id): subchannels.insert(id)
                case .subchannelNumber(let number): numbers.insert(number)
                case .layout: layout = true
                }
            }
            queue.signal()
        }
    }

    func request(_ trigger: KernelLogTrigger) {
        switch trigger {
        case .channelPath(let id): request([.channelPath(id)])
        case .subchannelNumber(let number): request([.subchannelNumber(number)])
        case .device(let id):
            queue.withLock {
                devices.insert(id)
                queue.signal()
            }
        case .everything:
            queue.withLock {
                allPaths = true
                layout = true
                queue.signal()
            }
        }
    }

    /// The re-read after a write to `chpid`, on the writing thread: returned, for the loop to
    /// take with the write's outcome (`writeTaken`); until then no reading starts. `ticket`
    /// keeps it for a completion that never comes.
    func rereadAfterWrite(_ chpid: ChannelPathID, ticket: WriteTicket) -> ObservedUpdate? {
        reading(
            { mirror in
                mirror.writeEnded(chpid)
                return mirror.rereadAfterWrite(chpid)
            },
            then: { update in
                gate.withLock { writeInFlight = update.generation }
                ticket.hold(update)
            })
    }

    /// A write to `chpid` is about to start: until its own reading (`rereadAfterWrite`) or its
    /// failure (`writeFailed`), the other readings leave the chpid's attributes alone, so that
    /// its change is the write's (published after its reply), never an observed one before it.
    func writeStarting(_ chpid: ChannelPathID) {
        mirrorLock.withLock { mirror.pathsBeingWritten[chpid, default: 0] += 1 }
    }

    /// The write to `chpid` failed: nothing of it to read; the readings may read the chpid.
    func writeFailed(_ chpid: ChannelPathID) {
        mirrorLock.withLock { mirror.writeEnded(chpid) }
    }

    /// The loop has taken the write's reading `generation` (applied and published it): the
    /// readings after it may start. Never waits for a reading.
    func writeTaken(_ generation: UInt64) {
        gate.withLock {
            guard writeInFlight == generation else { return }
            writeInFlight = nil
            gate.signal()
        }
    }

    /// A write was released without its reading taken (its reply was dropped): the reading is
    /// delivered as observed, the written chpid's change included, before any later reading.
    func writeDropped(_ update: ObservedUpdate) {
        gate.withLock {
            guard writeInFlight == update.generation else { return }
            deliver?(update.withoutWrite())
            writeInFlight = nil
            gate.signal()
        }
    }

    /// The last pass over the channel-measurement files (nil before the first); never waits
    /// for a reading.
    var lastMeasurement: MeasurementPass? { measurements.lastPass }

    /// A pass over the channel-measurement files here and now, on the calling thread (at
    /// start-up, after a write to `cm_enable`; tests), recorded as a tick's is.
    @discardableResult
    func measureNow() -> MeasurementPass {
        var pass: MeasurementPass?
        reading(
            { mirror in
                pass = mirror.measure(into: measurements)
                return nil
            }, then: { _ in })
        return pass!
    }

    /// One poll tick, timed: every chpid's attributes, then one pass over the channel-
    /// measurement files (in the tick's time: the cost that measurement adds to a tick). What
    /// the poll reads, and how (API/linux-sysfs.md, "What the sweep reads"): chpid attributes
    /// and measurement every tick (per chpid, fixed); subchannels swept (`vpm`, `online`) or
    /// triggered (the rest); DASD health swept (`path_masks`) or triggered (the rest). A part
    /// added to the poll (vfio-ccw discovery) goes here if it is read every tick, into
    /// `SysfsMirror.sweep` if it is swept, or into `request` if a trigger names it. A
    /// tick whose attribute reading had no read errors is a good reading, whether or not
    /// anything changed (an idle healthy host keeps its good-reading time current); a
    /// measurement file's problem is the chpid's measurement's, reported with it.
    private func pollTick(ticksPerSweep: Int) {
        let started = monotonicNanoseconds()
        var clean = false
        follow { mirror in
            let update = mirror.tick()
            clean = !mirror.hasPendingErrors
            mirror.measure(into: measurements)
            return update
        }
        // vfio-ccw passthrough after the tick's update went out, so that a path change is not
        // held back by it; still in the tick's time: its share, spread over the sweep period.
        if let vfio { inspect { vfio.poll($0, ticksPerSweep: ticksPerSweep) } }
        let duration = Double(monotonicNanoseconds() - started) / 1e9
        let finished = wallClockSeconds()
        statistics.withLock { stats in
            stats.lastReadingDuration = duration
            if clean { stats.lastGoodReading = finished }
        }
    }

    private var hasRequests: Bool {
        !paths.isEmpty || !subchannels.isEmpty || !numbers.isEmpty || !devices.isEmpty || layout || allPaths
    }

    private func run(poll: UInt64?, sweep: UInt64) {
        var nextTick = poll.map { monotonicNanoseconds() + $0 }
        var share = 0
        /// Since when queued members have kept the sweep waiting.
        var membersSince: UInt64?
        while true {
            // Only this thread queues members (a write reads its own), so this stays true
            // until this thread reads them.
            let membersQueued = inspect { $0.queuedMemberCount > 0 }
            let work:
                (
                    paths: Set<ChannelPathID>, subchannels: Set<SubchannelID>, numbers: Set<UInt16>,
                    devices: Set<DeviceID>, layout: Bool, all: Bool
                )?
            work = queue.withLock {
                while running && !hasRequests && !membersQueued && share == 0
                    && (nextTick.map { monotonicNanoseconds() < $0 } ?? true)
                {
                    queue.wait(until: nextTick)
                }
                guard running else { return nil }
                defer {
                    paths = []
                    subchannels = []
                    numbers = []
                    devices = []
                    layout = false
                    allPaths = false
                }
                return (paths, subchannels, numbers, devices, layout, allPaths)
            }
            guard let work else { return }
            if !work.paths.isEmpty || !work.subchannels.isEmpty || !work.numbers.isEmpty || !work.devices.isEmpty
                || work.layout || work.all
            {
                follow { mirror in
                    if work.layout, let update = mirror.layoutCheck() { return update }
                    var ids = Array(work.subchannels)
                    for number in work.numbers { ids += mirror.indexes(ofNumber: number) }
                    ids += mirror.subchannels(of: Array(work.devices))
                    let chpids = work.all ? mirror.subsystem.channelPaths.map(\.id) : Array(work.paths)
                    return mirror.reread(paths: chpids, subchannels: ids, withMembers: true)
                }
                continue
            }
            if let poll, let tick = nextTick, monotonicNanoseconds() >= tick {
                let now = monotonicNanoseconds()
                nextTick = tick + poll > now ? tick + poll : now + poll
                pollTick(ticksPerSweep: Int(max(1, sweep / poll)))
                let total = inspect { $0.subsystem.subchannels.count }
                let needed = (UInt64(total) * poll + sweep - 1) / sweep
                share = max(Int(needed), min(total, Self.minimumShare))
                continue
            }
            // Queued members go before the sweep (a reported path's subchannels are what is
            // waited for), but the sweep gets a slice at least every `sweepWaitLimit`, so that
            // a path reported again and again cannot stop it.
            if membersQueued {
                let now = monotonicNanoseconds()
                if share > 0, membersSince == nil { membersSince = now }
                if share == 0 || now - (membersSince ?? now) < Self.sweepWaitLimit {
                    follow { $0.readQueuedMembers(count: Self.memberSliceSize) }
                    continue
                }
            }
            if share > 0 {
                let count = min(share, Self.sliceSize)
                share -= count
                follow { mirror in
                    mirror.sweepReading = kernelLog?.isFollowing == true ? .vpm : .whole
                    return mirror.sweep(count: count)
                }
                membersSince = nil
            }
        }
    }
}

/// A write's reading on its way from its blocking part to the event loop, held for one case:
/// the write is released without the loop having taken the reading (the server stopped the
/// session meanwhile and dropped the reply, as at shutdown). Its release then delivers the reading as
/// observed (`SysfsFollower.writeDropped`); after `writeTaken` that does nothing.
final class WriteTicket: Sendable {
    private let follower: SysfsFollower
    private let reading = Mutex<ObservedUpdate?>(nil)

    init(follower: SysfsFollower) {
        self.follower = follower
    }

    func hold(_ update: ObservedUpdate) {
        reading.withLock { $0 = update }
    }

    deinit {
        if let update = reading.withLock({ $0 }) { follower.writeDropped(update) }
    }
}

/// Unix time in seconds (CLOCK_REALTIME), for timestamps that Prometheus compares with `time()`.
func wallClockSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}
