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
///   subchannels, `max(ceil(N × poll / sweep), min(N, 512))`, read in slices of 256;
/// - a path whose attributes changed, or that a request names, is published at once (with the
///   `lpm` a vary implies); its members' `pimpampom` are queued and read in slices of 4,096 on
///   up to 4 threads before the sweep (which still gets a slice every 50 ms), each slice's
///   changes published as found (as part of the path's change);
/// - between slices, and at once when they arrive, requested re-reads (inotify, the kernel
///   log) go first: a request waits for at most one slice, never for a sweep;
/// - a vary or configure reads its chpid on the writing thread (`rereadAfterWrite`), under the
///   same lock, so readings never interleave.
/// Updates are delivered under the mirror's lock, hence in generation order.
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
    private var layout = false
    private var allPaths = false
    private var running = false
    // Guarded by `mirrorLock`.
    private var deliver: (@Sendable (ObservedUpdate) -> Void)?
    private var kernelLog: KernelLogWatcher?
    /// The readings' health, under a lock of its own (not `mirrorLock`): a scrape reads it
    /// without waiting for a reading in progress.
    private let statistics: Mutex<BackendReadingStats>

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
    var stats: BackendReadingStats { statistics.withLock { $0 } }

    /// Runs `body` on the mirror under its lock; an update it returns is delivered (when
    /// following) before the lock is released, and returned when not delivered.
    @discardableResult
    func withMirror(_ body: (SysfsMirror) -> ObservedUpdate?) -> ObservedUpdate? {
        mirrorLock.withLock {
            let update = body(mirror)
            let errors = mirror.takeErrors()
            if !errors.isEmpty {
                statistics.withLock { stats in
                    for (kind, count) in errors { stats.readErrors[kind.rawValue, default: 0] += count }
                }
            }
            guard let update else { return nil }
            if let deliver {
                deliver(update)
                return nil
            }
            return update
        }
    }

    /// Reads without delivering (tests, start-up).
    func inspect<T>(_ body: (SysfsMirror) -> T) -> T {
        mirrorLock.withLock { body(mirror) }
    }

    func start(_ options: FollowOptions, deliver: @escaping @Sendable (ObservedUpdate) -> Void) {
        mirrorLock.withLock {
            mirror.log = options.log
            self.deliver = deliver
        }
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
            let watcher = KernelLogWatcher(path: path, log: options.log) { [weak self] trigger in self?.request(trigger)
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
        mirrorLock.withLock {
            kernelLog?.stop()
            deliver = nil
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
        case .everything:
            queue.withLock {
                allPaths = true
                layout = true
                queue.signal()
            }
        }
    }

    /// The re-read after a write to `chpid`; returned when not delivered.
    func rereadAfterWrite(_ chpid: ChannelPathID) -> ObservedUpdate? {
        withMirror { $0.rereadAfterWrite(chpid) }
    }

    /// One poll tick, timed; a tick without read errors is a good reading, whether or not
    /// anything changed (an idle healthy host keeps its good-reading time current).
    private func pollTick() {
        let started = monotonicNanoseconds()
        var clean = false
        withMirror { mirror in
            let update = mirror.tick()
            clean = !mirror.hasPendingErrors
            return update
        }
        let duration = Double(monotonicNanoseconds() - started) / 1e9
        let finished = wallClockSeconds()
        statistics.withLock { stats in
            stats.lastReadingDuration = duration
            if clean { stats.lastGoodReading = finished }
        }
    }

    private var hasRequests: Bool { !paths.isEmpty || !subchannels.isEmpty || !numbers.isEmpty || layout || allPaths }

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
                    paths: Set<ChannelPathID>, subchannels: Set<SubchannelID>, numbers: Set<UInt16>, layout: Bool,
                    all: Bool
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
                    layout = false
                    allPaths = false
                }
                return (paths, subchannels, numbers, layout, allPaths)
            }
            guard let work else { return }
            if !work.paths.isEmpty || !work.subchannels.isEmpty || !work.numbers.isEmpty || work.layout || work.all {
                withMirror { mirror in
                    if work.layout, let update = mirror.layoutCheck() { return update }
                    var ids = Array(work.subchannels)
                    for number in work.numbers { ids += mirror.indexes(ofNumber: number) }
                    let chpids = work.all ? mirror.subsystem.channelPaths.map(\.id) : Array(work.paths)
                    return mirror.reread(paths: chpids, subchannels: ids, withMembers: true)
                }
                continue
            }
            if let poll, let tick = nextTick, monotonicNanoseconds() >= tick {
                let now = monotonicNanoseconds()
                nextTick = tick + poll > now ? tick + poll : now + poll
                pollTick()
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
                    withMirror { $0.readQueuedMembers(count: Self.memberSliceSize) }
                    continue
                }
            }
            if share > 0 {
                let count = min(share, Self.sliceSize)
                share -= count
                withMirror { $0.sweep(count: count) }
                membersSince = nil
            }
        }
    }
}

/// Unix time in seconds (CLOCK_REALTIME), for timestamps that Prometheus compares with `time()`.
func wallClockSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}
