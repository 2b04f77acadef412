// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Foundation

/// A sysfs tree in a temporary directory, written file by file as Linux shows it
/// (`ROOT/devices/css0/chp0.40/status`, ...), removed on deinit: what the linux-sysfs backend
/// reads, in the tests of the backend and of the sessions that use it.
package final class SysfsTree {
    package let root: String

    package init() {
        root = NSTemporaryDirectory() + "sysfs-" + UUID().uuidString
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    /// Writes `text` as is (no newline added) to ROOT/`relative`, creating the directories.
    package func write(_ relative: String, _ text: String) {
        let path = root + "/" + relative
        try! FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try! text.write(toFile: path, atomically: false, encoding: .ascii)
    }

    /// The contents of ROOT/`relative`; "" when it cannot be read.
    package func read(_ relative: String) -> String {
        (try? String(contentsOfFile: root + "/" + relative, encoding: .ascii)) ?? ""
    }

    /// Channel path 0.`id`'s directory with each attribute file as Linux writes it (a newline
    /// after each value; chid and chid_external empty when not given).
    package func chp(
        _ id: String, status: String = "online", configure: String = "1", type: String = "1a",
        shared: String = "1", cmg: String = "2", chid: String = "", external: String = ""
    ) {
        let dir = "devices/css0/chp0.\(id)/"
        write(dir + "status", status + "\n")
        write(dir + "configure", configure + "\n")
        write(dir + "type", type + "\n")
        write(dir + "shared", shared + "\n")
        write(dir + "cmg", cmg + "\n")
        write(dir + "chid", chid.isEmpty ? "" : chid + "\n")
        write(dir + "chid_external", external.isEmpty ? "" : external + "\n")
    }

    /// Subchannel `busid`'s directory (type, chpids, pimpampom, dev_busid, vpm when given) and,
    /// with `device`, the ccw device's directory under it (devtype, cutype, online).
    package func sch(
        _ busid: String, chpids: String, pimpampom: String, device: String? = nil, devtype: String = "3390/0c",
        online: String = "1", type: String = "0", vpm: String? = nil
    ) {
        let dir = "devices/css0/\(busid)/"
        write(dir + "type", type + "\n")
        if let vpm { write(dir + "vpm", vpm + "\n") }
        write(dir + "chpids", chpids + " \n")
        write(dir + "pimpampom", pimpampom + "\n")
        write(dir + "dev_busid", (device ?? "none") + "\n")
        if let device {
            write(dir + device + "/devtype", devtype + "\n")
            write(dir + device + "/cutype", "3990/e9\n")
            write(dir + device + "/online", online + "\n")
        }
    }
}
