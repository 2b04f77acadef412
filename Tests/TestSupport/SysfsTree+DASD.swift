// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Foundation

extension SysfsTree {
    /// Makes the ccw device `device` of subchannel `busid` a DASD as Linux shows one
    /// (drivers/s390/block/dasd_devmap.c): a `driver` link to `bus/ccw/drivers/<driver>`,
    /// `path_masks` (`"%02x %02x %02x %02x %02x %02x\n"`: opm nppm cablepm cuirpm hpfpm ifccpm),
    /// the knobs (nil: no such file), and `paths_info/<chpid>/fc_security` per `pathSecurity`.
    /// `path_reset` is a writable empty file, as a fixture stands in for the kernel's 0200 file.
    package func dasd(
        _ busid: String, device: String, driver: String = "dasd-eckd", pathMasks: String? = "f0 00 00 00 00 00",
        autodisable: String? = "1", threshold: String? = "256", interval: String? = "300", hpf: String? = "1",
        fcSecurity: String? = "Unsupported", pathSecurity: [String: String] = [:]
    ) {
        let dir = "devices/css0/\(busid)/\(device)/"
        write("bus/ccw/drivers/\(driver)/.keep", "")
        let link = root + "/" + dir + "driver"
        try? FileManager.default.removeItem(atPath: link)
        try! FileManager.default.createSymbolicLink(
            atPath: link, withDestinationPath: "../../../../bus/ccw/drivers/\(driver)")
        if let pathMasks { write(dir + "path_masks", pathMasks + "\n") }
        if let autodisable { write(dir + "path_autodisable", autodisable + "\n") }
        if let threshold { write(dir + "path_threshold", threshold + "\n") }
        if let interval { write(dir + "path_interval", interval + "\n") }
        if let hpf { write(dir + "hpf", hpf + "\n") }
        if let fcSecurity { write(dir + "fc_security", fcSecurity + "\n") }
        for (chpid, value) in pathSecurity { write(dir + "paths_info/\(chpid)/fc_security", value + "\n") }
        write(dir + "path_reset", "")
    }
}
