// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Logging
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// How the server learns that an observed machine changed behind its back.
public struct BackendWatch: Sendable {
    /// Read the machine again this often; nil: never on a timer.
    public var pollInterval: TimeAmount?
    /// Also read it again as soon as inotify reports a write in its directories. Real sysfs
    /// reports only attributes the kernel notifies; polling covers the rest.
    public var inotify: Bool

    public init(pollInterval: TimeAmount? = .seconds(1), inotify: Bool = true) {
        self.pollInterval = pollInterval
        self.inotify = inotify
    }
}

/// Watches directories with inotify on a thread of its own and calls `onChange` (on that
/// thread) once per burst of writes.
final class InotifyWatcher: Sendable {
    private let fd: Int32
    private let stopped = Atomic<Bool>(false)
    private let pool = NIOThreadPool(numberOfThreads: 1)

    /// - Returns: nil when inotify is not available.
    init?(directories: [String], logger: Logger, onChange: @escaping @Sendable () -> Void) {
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else {
            logger.warning("inotify unavailable, polling only", metadata: ["errno": "\(errno)"])
            return nil
        }
        let watched = Self.watch(directories, fd: fd)  // not inside the log call: that may never run
        logger.debug("inotify watching", metadata: ["directories": "\(watched)"])
        pool.start()
        let fd = self.fd
        pool.submit { [self] _ in
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while !self.stopped.load(ordering: .relaxed) {
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, 200) > 0 else { continue }
                // Drain everything queued, then let writes settle briefly: one reading per burst.
                repeat {
                    while buffer.withUnsafeMutableBytes({ read(fd, $0.baseAddress, $0.count) }) > 0 {}
                    usleep(10_000)
                } while poll(&poller, 1, 0) > 0
                onChange()
            }
        }
    }

    private static let mask = UInt32(IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_CREATE | IN_DELETE | IN_MOVED_TO)

    /// Adds watches (a directory already watched keeps its one watch).
    @discardableResult
    static func watch(_ directories: [String], fd: Int32) -> Int {
        directories.count { inotify_add_watch(fd, $0, mask) >= 0 }
    }

    /// Watches directories that appeared since (new chpids, subchannels, devices).
    func watch(_ directories: [String]) {
        Self.watch(directories, fd: fd)
    }

    func stop() async {
        stopped.store(true, ordering: .relaxed)
        try? await pool.shutdownGracefully()
        close(fd)
    }
}
