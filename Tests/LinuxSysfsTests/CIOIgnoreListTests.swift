// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Testing

@testable import LinuxSysfs

/// `/proc/cio_ignore` as blacklist.c prints it: what tells a purge (Linux 6.18+) from a
/// subchannel that went for another reason.
@Suite struct CIOIgnoreListTests {
    @Test("ids and ranges per line, any subchannel set; lines that are neither match nothing")
    func parsing() {
        let list = CIOIgnoreList(parsing: "0.0.1000-0.0.10ff\n0.1.2000\n0.0.3000-0.0.2fff\ngarbage\n0.0.12345\n\n")
        #expect(list.ranges.count == 2)  // the reversed range, the garbage and the 5-digit number are left out
        #expect(list.contains(ssid: 0, devno: 0x1000) && list.contains(ssid: 0, devno: 0x10ff))
        #expect(!list.contains(ssid: 0, devno: 0x1100) && !list.contains(ssid: 1, devno: 0x1000))
        #expect(list.contains(ssid: 1, devno: 0x2000) && !list.contains(ssid: 0, devno: 0x2000))
        #expect(!list.contains(ssid: 0, devno: 0x3000))
        #expect(CIOIgnoreList(parsing: "").ranges.isEmpty)
    }
}
