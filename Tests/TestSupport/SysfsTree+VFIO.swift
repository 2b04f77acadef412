// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Foundation

/// vfio-ccw passthrough in a fixture tree, laid out as Linux 6.1 showed it (host-paths.md,
/// "Seen on a real kernel"), with a `/run` (libvirt's status files) and `/proc` stand-in.
extension SysfsTree {
    /// Makes ROOT/`relative` a symbolic link to `target` (which need not exist).
    package func link(_ relative: String, to target: String) {
        let path = root + "/" + relative
        try? FileManager.default.removeItem(atPath: path)
        try! FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try! FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: target)
    }

    /// Binds subchannel `busid` to vfio_ccw as the kernel shows it: the ccw device child gone,
    /// `driver` -> vfio_ccw, `driver_override` (`(null)` unless given), the mdev type directory
    /// with `available_instances` 1, and no `vpm`.
    package func bindVFIO(_ busid: String, override: String? = nil) {
        let dir = "devices/css0/\(busid)/"
        if let device = Optional(read(dir + "dev_busid").trimmingCharacters(in: .whitespacesAndNewlines)),
            device != "none"
        {
            remove(dir + device)
        }
        remove(dir + "vpm")
        link(dir + "driver", to: "../../../bus/css/drivers/vfio_ccw")
        write(dir + "driver_override", (override ?? "(null)") + "\n")
        write(dir + "mdev_supported_types/vfio_ccw-io/available_instances", "1\n")
        write(dir + "mdev_supported_types/vfio_ccw-io/name", "I/O subchannel (Non-QDIO)\n")
    }

    /// Creates mdev `uuid` on vfio-bound subchannel `busid` (IOMMU group `group`; nil: none).
    package func createMdev(_ busid: String, uuid: String, group: Int?) {
        let dir = "devices/css0/\(busid)/\(uuid)/"
        link(dir + "driver", to: "../../../../bus/mdev/drivers/vfio_ccw_mdev")
        if let group { link(dir + "iommu_group", to: "../../../../kernel/iommu_groups/\(group)") }
        link("bus/mdev/devices/\(uuid)", to: "../../../devices/css0/\(busid)/\(uuid)")
        write("devices/css0/\(busid)/mdev_supported_types/vfio_ccw-io/available_instances", "0\n")
    }

    /// A removal of a held mdev, blocked: gone from the mdev bus, its directory left with
    /// `iommu_group` only.
    package func removeMdevPending(_ busid: String, uuid: String) {
        remove("bus/mdev/devices/\(uuid)")
        remove("devices/css0/\(busid)/\(uuid)/driver")
    }

    /// The removal completed.
    package func removeMdev(_ busid: String, uuid: String) {
        remove("bus/mdev/devices/\(uuid)")
        remove("devices/css0/\(busid)/\(uuid)")
        write("devices/css0/\(busid)/mdev_supported_types/vfio_ccw-io/available_instances", "1\n")
    }

    /// `ROOT/proc/<pid>`: `cmdline` (NUL-separated) and `fd/N` links to `files`.
    package func process(_ pid: Int, arguments: [String], files: [String]) {
        write("proc/\(pid)/cmdline", arguments.joined(separator: "\0") + "\0")
        write("proc/\(pid)/comm", String((arguments.first ?? "").split(separator: "/").last ?? "").prefix(15) + "\n")
        for (n, file) in files.enumerated() { link("proc/\(pid)/fd/\(n + 3)", to: file) }
    }

    /// A process whose `fd/` cannot be listed (stands for another user's, which needs
    /// CAP_SYS_PTRACE: the tests run as root, so a loop stands in for the refusal).
    package func unreadableProcess(_ pid: Int) {
        write("proc/\(pid)/cmdline", "sleep\0")
        link("proc/\(pid)/fd", to: "fd")
    }

    /// `ROOT/run/libvirt/qemu/<name>.xml` as libvirt writes a running domain's status.
    package func libvirtDomain(_ name: String, pid: Int, mdevs: [String]) {
        let hostdevs = mdevs.map { uuid in
            """
                <hostdev mode='subsystem' type='mdev' managed='no' model='vfio-ccw'>
                  <source>
                    <address uuid='\(uuid)'/>
                  </source>
                  <alias name='hostdev0'/>
                  <address type='ccw' cssid='0xfe' ssid='0x0' devno='0x0001'/>
                </hostdev>

            """
        }.joined()
        write(
            "run/libvirt/qemu/\(name).xml",
            """
            <!--
            WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE
            OVERWRITTEN AND LOST.
            -->
            <domstatus state='running' reason='booted' pid='\(pid)'>
              <monitor path='/var/lib/libvirt/qemu/domain-1-\(name)/monitor.sock' type='unix'/>
              <domain type='kvm' id='1'>
                <name>\(name)</name>
                <uuid>0b1c2d3e-0000-4000-8000-00000000000\(pid % 10)</uuid>
                <devices>
                  <emulator>/usr/bin/qemu-system-s390x</emulator>
            \(hostdevs)    </devices>
              </domain>
            </domstatus>

            """)
    }

    /// `ROOT/run`.
    package var runRoot: String { root + "/run" }
}
