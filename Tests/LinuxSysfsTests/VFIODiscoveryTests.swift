// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import Foundation
import TestSupport
import Testing

@testable import LinuxSysfs

/// vfio-ccw passthrough on linux-sysfs (issue 24): bindings, mdevs and the guest holding each
/// one, from fixture trees laid out as Linux 6.1 shows them, with `/run` and `/proc` stand-ins.
@Suite struct VFIODiscoveryTests {
    static let uuid1 = "9c2a8b4e-1f3d-4e5a-9b6c-7d8e9f0a1b2c"
    static let uuid2 = "0a1b2c3d-4e5f-4061-8273-8495a6b7c8d9"

    /// Three DASD subchannels on chpid 40, one QDIO; the proc root holds an osrelease only.
    static func tree() -> SysfsTree {
        let tree = SysfsTree()
        tree.chp("40")
        tree.chp("41")
        tree.sch("0.0.0010", chpids: "40 41 00 00 00 00 00 00", pimpampom: "c0 c0 ff", device: "0.0.1000")
        tree.sch("0.0.0011", chpids: "40 41 00 00 00 00 00 00", pimpampom: "c0 c0 ff", device: "0.0.1001")
        tree.sch("0.0.0012", chpids: "40 00 00 00 00 00 00 00", pimpampom: "80 80 ff", device: "0.0.1002")
        tree.write("proc/sys/kernel/osrelease", "6.1.0\n")
        return tree
    }

    static func backend(_ tree: SysfsTree) throws -> SysfsBackend {
        try SysfsBackend(root: tree.root, procRoot: tree.procRoot, runRoot: tree.runRoot)
    }

    static let s10 = SubchannelID(cssid: 0, ssid: 0, schno: 0x10)
    static let s11 = SubchannelID(cssid: 0, ssid: 0, schno: 0x11)

    @Test func aBindingWithoutMdevIsListedWithNone() throws {
        let tree = Self.tree()
        tree.bindVFIO("0.0.0010", override: "vfio_ccw")
        let backend = try Self.backend(tree)
        let view = try #require(backend.hostPassthrough)
        #expect(
            view.subchannels == [
                HostPassthrough(subchannel: Self.s10, driverOverride: "vfio_ccw", availableInstances: 1)
            ])
    }

    @Test func theStagesOfAPassthroughAreFollowed() throws {
        let tree = Self.tree()
        let backend = try Self.backend(tree)
        #expect(backend.hostPassthrough?.subchannels == [])
        // Bound (driverctl without override: "(null)").
        tree.bindVFIO("0.0.0011")
        _ = try backend.refresh()
        #expect(backend.hostPassthrough?.subchannels.map(\.subchannel) == [Self.s11])
        #expect(backend.hostPassthrough?.subchannels.first?.driverOverride == nil)
        #expect(backend.hostPassthrough?.subchannels.first?.mdev == nil)
        // An mdev, nobody holding it.
        tree.createMdev("0.0.0011", uuid: Self.uuid1, group: 0)
        _ = try backend.refresh()
        var sch = try #require(backend.hostPassthrough?.subchannels.first)
        #expect(sch.availableInstances == 0)
        #expect(sch.mdev == MediatedDevice(uuid: Self.uuid1, state: .active, iommuGroup: 0, holder: .none))
        // A QEMU started by hand holds it: named from -name guest=NAME.
        tree.process(
            4242,
            arguments: ["/usr/bin/qemu-system-s390x", "-name", "guest=web-1,debug-threads=on", "-device", "vfio-ccw"],
            files: ["/dev/vfio/vfio", "/dev/vfio/0", "anon_inode:[vfio-device]"])
        tree.process(77, arguments: ["/bin/bash"], files: ["/dev/pts/0"])
        _ = try backend.refresh()
        sch = try #require(backend.hostPassthrough?.subchannels.first)
        #expect(sch.mdev?.holder == .process(guest: "web-1", pid: 4242))
        // Removal requested while the guest runs: pending.
        tree.removeMdevPending("0.0.0011", uuid: Self.uuid1)
        _ = try backend.refresh()
        sch = try #require(backend.hostPassthrough?.subchannels.first)
        #expect(sch.mdev?.state == .removalPending)
        #expect(sch.mdev?.holder == .process(guest: "web-1", pid: 4242))
        // The guest exits: the removal completes.
        tree.remove("proc/4242")
        tree.removeMdev("0.0.0011", uuid: Self.uuid1)
        _ = try backend.refresh()
        sch = try #require(backend.hostPassthrough?.subchannels.first)
        #expect(sch.mdev == nil)
        #expect(sch.availableInstances == 1)
    }

    @Test func libvirtStatusFilesNameTheDomainWithoutProc() throws {
        let tree = Self.tree()
        tree.bindVFIO("0.0.0010")
        tree.createMdev("0.0.0010", uuid: Self.uuid1, group: 3)
        tree.bindVFIO("0.0.0011")
        tree.createMdev("0.0.0011", uuid: Self.uuid2, group: 4)
        tree.libvirtDomain("db&co", pid: 5150, mdevs: [Self.uuid1.uppercased()])
        // Under ProtectProc=invisible other processes have no /proc entry at all.
        tree.write(
            "proc/mounts",
            "sysfs /sys sysfs rw 0 0\nproc /proc proc rw,nosuid,nodev,noexec,relatime,hidepid=invisible 0 0\n")
        let backend = try Self.backend(tree)
        let view = try #require(backend.hostPassthrough)
        #expect(view.subchannels[0].mdev?.holder == .libvirt(domain: "db&co", pid: 5150))
        guard case .unknown(let reason) = view.subchannels[1].mdev?.holder else {
            Issue.record("expected unknown, got \(String(describing: view.subchannels[1].mdev?.holder))")
            return
        }
        #expect(reason.contains("hidepid=invisible"))
        #expect(view.guests.map(\.name) == ["db&co"])
    }

    /// A real status file is tens of KiB (the whole live domain XML): the mdev named after the
    /// first page is found too.
    @Test func aLongStatusFileIsReadWhole() throws {
        let tree = Self.tree()
        tree.bindVFIO("0.0.0010")
        tree.createMdev("0.0.0010", uuid: Self.uuid1, group: 0)
        let others = (0..<40).map { String(format: "%08x-0000-4000-8000-%012x", $0, $0) }
        tree.libvirtDomain("big", pid: 7, mdevs: others + [Self.uuid1])
        #expect(tree.read("run/libvirt/qemu/big.xml").utf8.count > 8192)
        let backend = try Self.backend(tree)
        #expect(backend.hostPassthrough?.subchannels.first?.mdev?.holder == .libvirt(domain: "big", pid: 7))
    }

    @Test func unreadableProcessesMakeTheHolderUnknownNotFree() throws {
        let tree = Self.tree()
        tree.bindVFIO("0.0.0010")
        tree.createMdev("0.0.0010", uuid: Self.uuid1, group: 0)
        tree.unreadableProcess(900)
        let backend = try Self.backend(tree)
        guard case .unknown(let reason) = backend.hostPassthrough?.subchannels.first?.mdev?.holder else {
            Issue.record("expected unknown")
            return
        }
        #expect(reason.contains("could not be read"))
    }

    @Test func badEntriesAreShownNotGuessed() throws {
        let tree = Self.tree()
        // A dangling driver link to vfio_ccw still names it (lscss takes the basename).
        tree.bindVFIO("0.0.0010")
        // An mdev without an IOMMU group.
        tree.createMdev("0.0.0010", uuid: Self.uuid1, group: nil)
        // A link to another driver: not bound.
        tree.sch("0.0.0013", chpids: "40 00 00 00 00 00 00 00", pimpampom: "80 80 ff")
        tree.link("devices/css0/0.0.0013/driver", to: "../../../bus/css/drivers/io_subchannel")
        // A garbled libvirt status file is skipped.
        tree.write("run/libvirt/qemu/broken.xml", "<domstatus pid='1'><domain><nam")
        let backend = try Self.backend(tree)
        let view = try #require(backend.hostPassthrough)
        #expect(view.subchannels.map(\.subchannel) == [Self.s10])
        guard case .unknown(let reason) = view.subchannels[0].mdev?.holder else {
            Issue.record("expected unknown")
            return
        }
        #expect(reason.contains("no iommu_group"))
    }

    /// vfio_ccw refuses a QDIO subchannel ("vfio: ccw: does not support QDIO"), so an OSA stays
    /// with its ccw device and qeth: not a candidate, not listed, while a DASD beside it is.
    @Test func aQDIOSubchannelKeepsItsDeviceAndIsNotListed() throws {
        let tree = Self.tree()
        tree.chp("60", type: "11")
        tree.sch(
            "0.0.0020", chpids: "60 00 00 00 00 00 00 00", pimpampom: "80 80 ff", device: "0.0.f500",
            devtype: "1732/01")
        tree.write("devices/css0/0.0.0020/0.0.f500/cutype", "1731/01\n")
        tree.link("devices/css0/0.0.0020/driver", to: "../../../bus/css/drivers/io_subchannel")
        tree.link("devices/css0/0.0.0020/0.0.f500/driver", to: "../../../../bus/ccwgroup/drivers/qeth")
        tree.bindVFIO("0.0.0012")
        let backend = try Self.backend(tree)
        #expect(
            backend.hostPassthrough?.subchannels.map(\.subchannel) == [SubchannelID(cssid: 0, ssid: 0, schno: 0x12)])
        #expect(
            backend.subsystem.subchannel(SubchannelID(cssid: 0, ssid: 0, schno: 0x20))?.schib.pmcw.hasQDIOFacility
                == true)
    }

    @Test func qemuNameForms() {
        #expect(ProcessScan.guestName(arguments: ["qemu", "-name", "guest=a,,b,debug-threads=on"]) == "a,b")
        #expect(ProcessScan.guestName(arguments: ["qemu", "-name", "plain"]) == "plain")
        #expect(ProcessScan.guestName(arguments: ["qemu", "-name", "debug-threads=on,guest=x"]) == "x")
        #expect(ProcessScan.guestName(arguments: ["qemu", "-m", "1024"]) == nil)
        #expect(ProcessScan.guestName(arguments: ["qemu", "-name"]) == nil)
        // An empty name is none: a guest="" series reads as no label.
        #expect(ProcessScan.guestName(arguments: ["qemu", "-name", "guest=,debug-threads=on"]) == nil)
    }

    /// Numeric character references are decoded like the named entities, in one pass (an
    /// escaped entity stays escaped once); a reference that names nothing is left as written.
    @Test func statusFileNamesAreUnescapedOnce() {
        #expect(LibvirtDomainStatus.unescape("a&#10;b&#x41;&amp;lt;&bogus;&") == "a\nbA&lt;&bogus;&")
        #expect(LibvirtDomainStatus.unescape("&#xD800;&#99999999999;&") == "&#xD800;&#99999999999;&")
        #expect(LibvirtDomainStatus.unescape("db&amp;co") == "db&co")
    }

    /// A status file that cannot be read or parsed may name the mdev nobody is seen holding:
    /// unknown with the file, not free.
    @Test func anUnreadableStatusFileMakesAnUnheldMdevUnknown() throws {
        let tree = Self.tree()
        tree.bindVFIO("0.0.0010")
        tree.createMdev("0.0.0010", uuid: Self.uuid1, group: 0)
        tree.write("run/libvirt/qemu/broken.xml", "<domstatus state='running' pid='7'><domain")
        let backend = try Self.backend(tree)
        guard case .unknown(let reason) = backend.hostPassthrough?.subchannels.first?.mdev?.holder else {
            Issue.record("expected unknown, got \(String(describing: backend.hostPassthrough?.subchannels.first))")
            return
        }
        #expect(reason.contains("libvirt status file") && reason.contains("broken.xml"))
    }
}
