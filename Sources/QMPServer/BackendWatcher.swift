// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import Logging
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// How the server learns that an observed machine changed behind its back.
package struct BackendWatch: Sendable {
    /// Read every channel path's attributes this often (and sweep a share of the
    /// subchannels); nil: never on a timer.
    package var pollInterval: TimeAmount?
    /// Every subchannel is read at least once within this interval (the sweep).
    package var sweepInterval: TimeAmount
    /// Also re-read what inotify reports written in the backend's directories. Real sysfs
    /// reports only writes by processes; polling, the sweep and the kernel log cover the rest.
    package var inotify: Bool
    /// A kernel log to follow for channel-path messages (`/dev/kmsg`, or a file or FIFO).
    package var kernelLog: String?

    package init(
        pollInterval: TimeAmount? = .seconds(1), sweepInterval: TimeAmount = .seconds(30), inotify: Bool = true,
        kernelLog: String? = nil
    ) {
        self.pollInterval = pollInterval
        self.sweepInterval = sweepInterval
        self.inotify = inotify
        self.kernelLog = kernelLog
    }
}

/// inotify, delivered on the event loop: the inotify descriptor is read by NIO as a pipe
/// (`NIOPipeBootstrap`), so events arrive like socket data and no thread sleeps or polls.
/// Each event is mapped, by its watch descriptor, to what to re-read (a chpid, a subchannel,
/// the listing), and the batch of one read goes to `onTargets` (on the loop). Adding watches
/// is a path lookup in sysfs, so it runs on a thread of its own, never on the loop.
final class InotifyWatcher: Sendable {
    private let fd: Int32
    private let table = WatchTable()
    private let channel = Mutex<Channel?>(nil)
    private let pool = NIOThreadPool(numberOfThreads: 1)
    private let logger: Logger
    private let limitLogged = Atomic<Bool>(false)

    /// - Returns: nil when inotify is not available.
    init?(logger: Logger) {
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        self.logger = logger
        guard fd >= 0 else {
            logger.warning("inotify unavailable, polling only", metadata: ["errno": "\(errno)"])
            return nil
        }
        pool.start()
    }

    /// Starts reading events on `loop`, with the directories watched first.
    func start(
        on loop: EventLoop, directories: [(path: String, target: ObservationTarget)],
        onTargets: @escaping @Sendable ([ObservationTarget]) -> Void
    ) async throws {
        let watched = watchNow(directories)
        logger.debug("inotify watching", metadata: ["directories": "\(watched)"])
        let table = self.table
        let channel = try await NIOPipeBootstrap(group: loop)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 64 * 1024))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(InotifyHandler(table: table, onTargets: onTargets))
                }
            }
            .takingOwnershipOfDescriptor(input: fd).get()
        self.channel.withLock { $0 = channel }
    }

    private static let mask = UInt32(
        IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM)

    /// Adds watches (a directory already watched keeps its one watch); the number added.
    private func watchNow(_ directories: [(path: String, target: ObservationTarget)]) -> Int {
        var added: [Int32: ObservationTarget] = [:]
        for (path, target) in directories {
            let wd = inotify_add_watch(fd, path, Self.mask)
            if wd >= 0 {
                added[wd] = target
            } else if errno == ENOSPC, !limitLogged.exchange(true, ordering: .relaxed) {
                logger.warning(
                    "inotify: the watch limit is reached (fs.inotify.max_user_watches); the rest is found by polling",
                    metadata: ["directories": "\(directories.count)"])
            }
        }
        table.map.withLock { $0.merge(added) { _, new in new } }
        return added.count
    }

    /// Watches directories that appeared since (new chpids, subchannels), off the loop.
    func watch(_ directories: [(path: String, target: ObservationTarget)]) {
        pool.submit { [self] _ in _ = watchNow(directories) }
    }

    func stop() async {
        let channel = self.channel.withLock { $0 }
        try? await channel?.close()  // closes the descriptor too
        try? await pool.shutdownGracefully()
    }
}

/// Watch descriptor -> what to re-read; filled off the loop, read on it.
private final class WatchTable: Sendable {
    let map = Mutex<[Int32: ObservationTarget]>([:])
}

/// Parses `struct inotify_event` records (wd, mask, cookie, len, name[len]) and hands the
/// targets of each read, without duplicates, to `onTargets`.
private final class InotifyHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let table: WatchTable
    private let onTargets: @Sendable ([ObservationTarget]) -> Void
    private var pending: [ObservationTarget] = []
    private var seen = Set<ObservationTarget>()
    private var leftover: ByteBuffer?

    init(table: WatchTable, onTargets: @escaping @Sendable ([ObservationTarget]) -> Void) {
        self.table = table
        self.onTargets = onTargets
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if var before = leftover {
            before.writeBuffer(&buffer)
            buffer = before
            leftover = nil
        }
        table.map.withLock { map in
            while buffer.readableBytes >= 16 {
                let start = buffer.readerIndex
                guard let wd = buffer.readInteger(endianness: .host, as: Int32.self),
                    let mask = buffer.readInteger(endianness: .host, as: UInt32.self),
                    buffer.readInteger(endianness: .host, as: UInt32.self) != nil,
                    let length = buffer.readInteger(endianness: .host, as: UInt32.self),
                    buffer.readableBytes >= Int(length)
                else {
                    buffer.moveReaderIndex(to: start)
                    break
                }
                buffer.moveReaderIndex(forwardBy: Int(length))
                let target: ObservationTarget?
                if mask & UInt32(IN_Q_OVERFLOW) != 0 {
                    target = .layout  // events were lost: at least find what came or went
                } else {
                    target = map[wd]
                }
                if let target, seen.insert(target).inserted { pending.append(target) }
            }
        }
        if buffer.readableBytes > 0 { leftover = buffer }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard !pending.isEmpty else { return }
        let targets = pending
        pending = []
        seen = []
        onTargets(targets)
    }
}
