// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import TestSupport
import Testing

@testable import LinuxSysfs

/// Linux has no `qf` attribute in sysfs: the linux-sysfs backend gives the QDIO facility to a
/// device on the QDIO control unit 1731 (OSA, HiperSockets, FCP) and to nothing else.
@Suite struct QDIOSysfsTests {
    @Test func theFacilityFollowsTheControlUnit() throws {
        let tree = SysfsTree()
        tree.chp("40")
        tree.chp("60", type: "11")
        tree.sch("0.0.0000", chpids: "40 00 00 00 00 00 00 00", pimpampom: "80 80 ff", device: "0.0.1000")
        for (n, cutype) in ["1731/01", "1731/05", "1731/03"].enumerated() {
            let busid = "0.0.000\(n + 1)"
            let device = "0.0.060\(n)"
            tree.sch(
                busid, chpids: "60 00 00 00 00 00 00 00", pimpampom: "80 80 ff", device: device, devtype: "1732/01")
            tree.write("devices/css0/\(busid)/\(device)/cutype", cutype + "\n")
        }
        // A subchannel whose ccw device is gone (no cutype to go by): no facility known.
        tree.sch("0.0.0004", chpids: "60 00 00 00 00 00 00 00", pimpampom: "80 80 ff")
        tree.write("devices/css0/0.0.0004/dev_busid", "0.0.0603\n")
        let model = try SysfsBackend(root: tree.root).subsystem
        #expect(model.subchannels.map(\.schib.pmcw.hasQDIOFacility) == [false, true, true, true, false])
    }
}
