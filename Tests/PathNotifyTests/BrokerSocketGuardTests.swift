// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import PathNotify

#if canImport(Glibc)
import Glibc
#endif

/// `BrokerSocketGuard` on real kernel sockets (a unix socketpair whose far end never reads):
/// the two ways the publishing thread is freed from a call that would otherwise block.
@Suite struct BrokerSocketGuardTests {
    private static func pair() -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        let made = socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds)
        precondition(made == 0, "socketpair: \(errno)")
        return (fds[0], fds[1])
    }

    /// Runs `body` on a thread of its own; the result once it ends, nil if it did not within
    /// `seconds`.
    private static func onThread<T: Sendable>(within seconds: Double, _ body: @escaping @Sendable () -> T) -> T? {
        let done = ConditionLock(value: 0)
        let result = NIOLockedValueBox<T?>(nil)
        Thread {
            result.withLockedValue { $0 = body() }
            done.lock()
            done.unlock(withValue: 1)
        }.start()
        guard done.lock(whenValue: 1, timeoutSeconds: seconds) else { return nil }
        done.unlock()
        return result.withLockedValue { $0 }
    }

    /// A write into a peer that never reads blocks in the kernel, as rabbitmq-c 0.11's publish
    /// does (it has no deadline for writes): the watchdog shuts the socket down at the deadline,
    /// the write fails, and the step is named. Without the guard the write blocks for ever.
    @Test func aWriteThatOverrunsItsDeadlineIsCutAndNamed() {
        let (mine, peer) = Self.pair()
        defer {
            close(mine)
            close(peer)
        }
        let socketGuard = BrokerSocketGuard()
        socketGuard.attach(mine)
        let stopped = NIOLockedValueBox(false)
        Thread { socketGuard.watch { stopped.withLockedValue { $0 } } }.start()
        defer { stopped.withLockedValue { $0 = true } }

        let started = ContinuousClock.now
        let failed = Self.onThread(within: 30) { () -> Int32 in
            socketGuard.during("basic.publish", seconds: 0.3) {
                let chunk = [UInt8](repeating: 0x41, count: 65536)
                while true {
                    // Blocking socket: fills the buffers, then waits for a reader that never comes.
                    if send(mine, chunk, chunk.count, Int32(MSG_NOSIGNAL)) < 0 { return errno }
                }
            }
        }
        let took = ContinuousClock.now - started
        #expect(failed == EPIPE, "the blocked write ended with errno \(String(describing: failed))")
        #expect(took >= .milliseconds(300), "cut before its deadline: \(took)")
        #expect(socketGuard.takeOverrun() == "basic.publish")
        #expect(socketGuard.takeOverrun() == nil)
    }

    /// A stop: `interrupt` frees a read that waits for a broker that never answers (as
    /// channel.open did before there were deadlines); after `detach` nothing is shut down.
    @Test func interruptFreesABlockedReadAndDetachForgetsTheSocket() {
        let (mine, peer) = Self.pair()
        defer {
            close(mine)
            close(peer)
        }
        let socketGuard = BrokerSocketGuard()
        #expect(!socketGuard.interrupt())
        socketGuard.attach(mine)
        // The stop comes 0.2 s into the read (or before it starts: the read then ends at once).
        let interrupted = NIOLockedValueBox(false)
        Thread {
            usleep(200_000)
            interrupted.withLockedValue { $0 = socketGuard.interrupt() }
        }.start()
        let read = Self.onThread(within: 30) { () -> Int in
            var byte: UInt8 = 0
            return recv(mine, &byte, 1, 0)
        }
        #expect(interrupted.withLockedValue { $0 })
        #expect(read == 0, "the read was not freed: \(String(describing: read))")
        socketGuard.detach()
        #expect(!socketGuard.interrupt())
        #expect(socketGuard.takeOverrun() == nil)
    }
}
