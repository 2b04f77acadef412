// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Thrown when SIGINT or SIGTERM arrived: the command then ends with status 0.
struct Interrupted: Error {}

/// SIGINT and SIGTERM handlers that record the signal and wake poll(2) through a pipe. The
/// pipe closes the window between checking the flag and entering poll, where a signal would
/// otherwise wait for the next event; without SA_RESTART, a blocked write returns EINTR too.
enum Interruption {
    private static let caught = Atomic<Bool>(false)
    private static let wakeWriteEnd = Atomic<Int32>(-1)
    private static let wakeReadEnd = Atomic<Int32>(-1)

    static var wasCaught: Bool { caught.load(ordering: .relaxed) }

    static func install() {
        var ends: [Int32] = [-1, -1]
        if pipe(&ends) == 0 {
            for end in ends {
                _ = fcntl(end, F_SETFD, FD_CLOEXEC)
                // A full pipe must not block the handler; one pending byte is enough to wake us.
                _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
            }
            wakeReadEnd.store(ends[0], ordering: .relaxed)
            wakeWriteEnd.store(ends[1], ordering: .relaxed)
        }
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            let saved = errno  // the interrupted code may be about to read errno
            Interruption.caught.store(true, ordering: .relaxed)
            var byte: UInt8 = 0
            _ = write(Interruption.wakeWriteEnd.load(ordering: .relaxed), &byte, 1)
            errno = saved
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0  // no SA_RESTART: blocking calls return EINTR
        sigaction(SIGINT, &action, nil)
        sigaction(SIGTERM, &action, nil)
    }

    /// Waits until `fd` is ready (true) or `deadline` (monotonic ms, nil: never) passes (false);
    /// throws `Interrupted` once a signal was caught.
    static func wait(for fd: Int32, events: Int16, deadline: Int64?) throws -> Bool {
        var fds = [
            pollfd(fd: fd, events: events, revents: 0),
            pollfd(fd: wakeReadEnd.load(ordering: .relaxed), events: Int16(POLLIN), revents: 0),
        ]
        while true {
            if wasCaught { throw Interrupted() }
            let timeout = deadline.map { Int32(clamping: max(0, $0 - now())) } ?? -1
            let n = poll(&fds, nfds_t(fds.count), timeout)
            if wasCaught { throw Interrupted() }
            if n == 0 { return false }
            if n > 0 && fds[0].revents != 0 { return true }
            if n < 0 && errno != EINTR { throw ClientFailure.system("poll") }
        }
    }

    /// Monotonic milliseconds, for deadlines.
    static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
    }
}
