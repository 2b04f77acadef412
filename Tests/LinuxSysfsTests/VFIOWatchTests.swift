// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import Foundation
import TestSupport
import Testing

@testable import LinuxSysfs

/// vfio-ccw discovery off the poll tick (issue 24, API/linux-sysfs.md "vfio-ccw passthrough",
/// detection bounds): an idle tick reads its share of the candidates, lists libvirt's status
/// directory only when it moved and scans `/proc` only when due; each kind of change is seen
/// within its bound, counted in ticks (the follower ticks every poll interval).
@Suite struct VFIOWatchTests {
    /// 32 subchannels on chpid 40, every one bound to vfio_ccw with an mdev (group = number):
    /// 0-15 held by libvirt domain `db` (pid 5150), 16-31 by a QEMU started by hand (pid 4242).
    static func tree(held: Bool = true) -> SysfsTree {
        let tree = SysfsTree()
        tree.chp("40")
        for n in 0..<32 {
            let sch = String(format: "0.0.%04x", 0x10 + n)
            tree.sch(
                sch, chpids: "40 00 00 00 00 00 00 00", pimpampom: "80 80 ff",
                device: String(format: "0.0.%04x", 0x1000 + n))
            tree.bindVFIO(sch)
            tree.createMdev(sch, uuid: uuid(n), group: n)
        }
        tree.write("proc/sys/kernel/osrelease", "6.1.0\n")
        if held {
            tree.libvirtDomain("db", pid: 5150, mdevs: (0..<16).map(uuid))
            tree.process(
                4242, arguments: ["/usr/bin/qemu-system-s390x", "-name", "guest=scratch"],
                files: (16..<32).map { "/dev/vfio/\($0)" })
        }
        return tree
    }

    static func uuid(_ n: Int) -> String { String(format: "%08x-0000-4000-8000-%012x", n, n) }

    static func backend(_ tree: SysfsTree) throws -> SysfsBackend {
        try SysfsBackend(root: tree.root, procRoot: tree.procRoot, runRoot: tree.runRoot)
    }

    /// `ticks` poll ticks of a follower whose sweep period is `ticksPerSweep` ticks.
    static func tick(_ backend: SysfsBackend, _ ticks: Int = 1, ticksPerSweep: Int = 8) {
        for _ in 0..<ticks {
            backend.follower.inspect { backend.follower.vfio!.poll($0, ticksPerSweep: ticksPerSweep) }
        }
    }

    static func counts(_ backend: SysfsBackend) -> VFIOFollowState.Counts { backend.follower.vfio!.counts }

    @Test func anIdleTickReadsItsShareAndNeitherLibvirtNorProc() throws {
        let tree = Self.tree()  // kept: the tree goes with it
        let backend = try Self.backend(tree)
        let view = try #require(backend.hostPassthrough)
        #expect(view.guests.map(\.name) == ["db", "scratch"])
        Self.tick(backend)  // the first tick after start-up: the status directory's stamp is new
        let before = Self.counts(backend)
        Self.tick(backend, 3)
        let after = Self.counts(backend)
        // 32 candidates over 8 ticks: 4 a tick (it read all 32, listed libvirt and scanned
        // /proc on every tick before).
        #expect(after.subchannelReads - before.subchannelReads == 12)
        #expect(after.libvirtReads == before.libvirtReads)
        #expect(after.procScans == before.procScans)
        #expect(backend.hostPassthrough == view)
        // Over a sweep period, each once more.
        Self.tick(backend, 5)
        let round = Self.counts(backend)
        #expect(round.subchannelReads - before.subchannelReads == 32)
        #expect(round.libvirtReads - before.libvirtReads == 1)
        #expect(round.procScans - before.procScans == 1)
        #expect(backend.hostPassthrough == view)
        withExtendedLifetime(tree) {}
    }

    @Test func anMdevCreatedOrRemovedIsSeenWithinASweepPeriod() throws {
        let tree = Self.tree(held: false)
        let backend = try Self.backend(tree)
        let sch = SubchannelID(cssid: 0, ssid: 0, schno: 0x13)
        tree.removeMdev("0.0.0013", uuid: Self.uuid(3))
        Self.tick(backend, 8)
        #expect(backend.hostPassthrough?.passthrough(sch)?.mdev == nil)
        tree.createMdev("0.0.0013", uuid: Self.uuid(99), group: 99)
        Self.tick(backend, 8)
        #expect(backend.hostPassthrough?.passthrough(sch)?.mdev?.uuid == Self.uuid(99))
    }

    @Test func aBindingIsReadAtTheTickAfterTheLayoutReadingThatSawTheDeviceGo() throws {
        let tree = Self.tree(held: false)
        tree.sch("0.0.0040", chpids: "40 00 00 00 00 00 00 00", pimpampom: "80 80 ff", device: "0.0.2000")
        let backend = try Self.backend(tree)
        let sch = SubchannelID(cssid: 0, ssid: 0, schno: 0x40)
        #expect(backend.hostPassthrough?.passthrough(sch) == nil)
        tree.bindVFIO("0.0.0040")
        // The sweep sees the ccw device go and reads the layout again (here: now).
        _ = backend.follower.withMirror { $0.fullRead() }
        Self.tick(backend, ticksPerSweep: 1000)
        #expect(backend.hostPassthrough?.passthrough(sch) != nil)
    }

    @Test func aLibvirtDomainStartingOrStoppingIsSeenAtTheNextTick() throws {
        let tree = Self.tree(held: false)
        let backend = try Self.backend(tree)
        Self.tick(backend, ticksPerSweep: 1000)
        tree.libvirtDomain("web", pid: 7, mdevs: [Self.uuid(5)])
        Self.tick(backend, ticksPerSweep: 1000)
        #expect(backend.hostPassthrough?.guests.map(\.name) == ["web"])
        tree.remove("run/libvirt/qemu/web.xml")
        Self.tick(backend, ticksPerSweep: 1000)
        #expect(backend.hostPassthrough?.guests.map(\.name) == [])
    }

    @Test func aHandStartedGuestIsSeenWithinASweepPeriodAndItsExitAtTheNextTick() throws {
        let tree = Self.tree(held: false)
        let backend = try Self.backend(tree)
        Self.tick(backend, 2)
        let scans = Self.counts(backend).procScans
        tree.process(4242, arguments: ["qemu", "-name", "guest=scratch"], files: ["/dev/vfio/7"])
        Self.tick(backend, 8)
        #expect(backend.hostPassthrough?.guests.map(\.name) == ["scratch"])
        #expect(Self.counts(backend).procScans - scans == 1)
        tree.remove("proc/4242")
        Self.tick(backend, ticksPerSweep: 1000)
        #expect(backend.hostPassthrough?.guests.map(\.name) == [])
    }
}
