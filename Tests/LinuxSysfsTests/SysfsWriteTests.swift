// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import Foundation
import Synchronization
import TestSupport
import Testing

@testable import LinuxSysfs

/// A write's reading goes back to the event loop with the write's outcome, and the readings
/// after it wait for the loop to take it, so that every update reaches the loop in the order
/// it was read.
@Suite struct SysfsWriteTests {
    private func tree() -> SysfsTree {
        let tree = SysfsTree()
        tree.chp("40")
        tree.chp("41")
        tree.sch("0.0.0000", chpids: "40 00 00 00 00 00 00 00", pimpampom: "80 80 ff", device: "0.0.1000")
        tree.sch("0.0.0001", chpids: "40 41 00 00 00 00 00 00", pimpampom: "c0 c0 ff", device: "0.0.1001")
        return tree
    }

    private static let chp40 = ChannelPathID(cssid: 0, chpid: 0x40)
    private static let chp41 = ChannelPathID(cssid: 0, chpid: 0x41)

    /// The blocking part returns its reading: the loop part applies it and takes the written
    /// chpid's change from it, and what it found on other chpids is published as observed.
    @Test func theBlockingPartReturnsItsReading() throws {
        let tree = tree()
        let backend = try SysfsBackend(root: tree.root)
        tree.write("devices/css0/0.0.0001/pimpampom", "c0 80 ff\n")  // 0.41's PAM bit went meanwhile
        let write = try backend.planVary(Self.chp40, to: .offline)
        let reading = try #require(try write.perform!().get())
        #expect(reading.write == Self.chp40)
        #expect(backend.subsystem.channelPath(Self.chp40)?.vary == .online)  // not applied off the loop
        let (_, observed) = backend.apply(reading)
        #expect(observed.map(\.chpid) == [Self.chp41])
        let change = try backend.completeWrite(write, .success(reading))
        #expect(change.chpid == Self.chp40 && change.after.vary == .offline && change.affected.count == 2)
        #expect(backend.subsystem.channelPath(Self.chp40)?.vary == .offline)
    }

    /// While a write's reading is on its way to the loop no reading starts; once the loop took
    /// it, the next one does.
    @Test func readingsWaitForTheLoopToTakeAWritesReading() throws {
        let tree = tree()
        let backend = try SysfsBackend(root: tree.root)
        let write = try backend.planVary(Self.chp40, to: .offline)
        let reading = try #require(try write.perform!().get())
        tree.write("devices/css0/chp0.41/status", "offline\n")
        let follower = backend.follower
        let tick = TickOnAnotherThread()
        DispatchQueue.global().async {
            let update = follower.withMirror { mirror in
                tick.started.withLock { $0 = true }
                return mirror.tick()
            }
            tick.update.withLock { $0 = update }
            tick.done.signal()
        }
        // Had the tick not waited, it would have started by now (a slow machine only weakens this).
        Thread.sleep(forTimeInterval: 0.2)
        #expect(tick.started.withLock { $0 } == false)
        _ = backend.apply(reading)
        _ = try backend.completeWrite(write, .success(reading))
        #expect(tick.done.wait(timeout: .now() + 60) == .success)
        let update = try #require(tick.update.withLock { $0 })
        #expect(update.generation > reading.generation && update.changes.map(\.chpid) == [Self.chp41])
    }

    /// A write released without the loop taking its reading (the server stopped the session
    /// and dropped the reply, as at shutdown): its reading is delivered as observed, the written chpid's
    /// change included, and readings go on.
    @Test func aWriteWhoseReplyWasDroppedIsDeliveredAsObserved() throws {
        let tree = tree()
        let backend = try SysfsBackend(root: tree.root)
        let delivered = Mutex<[ObservedUpdate]>([])
        backend.startFollowing(FollowOptions(pollInterval: nil)) { update in delivered.withLock { $0.append(update) } }
        defer { backend.stopFollowing() }
        do {
            let write = try backend.planVary(Self.chp40, to: .offline)
            _ = write.perform!()
        }
        let updates = delivered.withLock { $0 }
        #expect(updates.count == 1 && updates.first?.write == nil)
        #expect(updates.first?.changes.map(\.chpid) == [Self.chp40])
        tree.write("devices/css0/chp0.41/status", "offline\n")
        #expect(backend.follower.withMirror { $0.tick() }?.changes.map(\.chpid) == [Self.chp41])
    }
}

private final class TickOnAnotherThread: Sendable {
    let started = Mutex(false)
    let update = Mutex<ObservedUpdate?>(nil)
    let done = DispatchSemaphore(value: 0)
}
