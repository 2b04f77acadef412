// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Foundation

/// The channel-measurement files in a fixture tree, as the kernel versions that matter show
/// them (/work/shared/reference/channel-measurement.md 1.3, 1.6).
extension SysfsTree {
    /// Which files a kernel has, and how it prints `cmg`.
    package enum MeasurementKernel: Sendable, CaseIterable {
        /// Before 6.7: `cmg` in hex, `measurement_chars` and `measurement` only.
        case linux6_6
        /// 6.10 to 6.12: `cmg` decimal; `ext_measurement` and `speed_bps` added.
        case linux6_10
        /// 6.13 and later: `measurement_chars_full` added.
        case linux6_13

        /// `/proc/sys/kernel/osrelease` of such a kernel.
        package var release: String {
            switch self {
            case .linux6_6: "6.6.0-28-generic"
            case .linux6_10: "6.10.14-200.fc40.s390x"
            case .linux6_13: "6.13.0-rc1"
            }
        }
    }

    /// Writes `bytes` as they are to ROOT/`relative`, creating the directories.
    package func writeBytes(_ relative: String, _ bytes: [UInt8]) {
        let path = root + "/" + relative
        try! FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try! Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Removes ROOT/`relative` (a file the kernel does not have).
    package func remove(_ relative: String) {
        try? FileManager.default.removeItem(atPath: root + "/" + relative)
    }

    /// `css0/cm_enable` with `value` and a newline, as the kernel prints it (`%x`).
    package func cmEnable(_ value: Int) {
        write("devices/css0/cm_enable", "\(value)\n")
    }

    /// Channel path 0.`id`'s measurement files as `kernel` has them: `cmg` (in its notation),
    /// the characteristics (`measurement_chars_full` on 6.13+, and the 20-byte
    /// `measurement_chars`, words 3-7 of `characteristics`, on all), `measurement`,
    /// `ext_measurement` (6.10+; empty when `extended` is nil) and `speed_bps` (6.10+).
    package func measurement(
        _ id: String, kernel: MeasurementKernel = .linux6_13, cmg: Int, characteristics: [UInt8] = [],
        entry: [UInt8], extended: [UInt8]? = nil, speed: String = "0"
    ) {
        let dir = "devices/css0/chp0.\(id)/"
        write(dir + "cmg", (kernel == .linux6_6 ? String(cmg, radix: 16) : String(cmg)) + "\n")
        let cmcb = characteristics.isEmpty ? [UInt8](repeating: 0, count: 32) : characteristics
        writeBytes(dir + "measurement_chars", Array(cmcb[12..<32]))
        writeBytes(dir + "measurement", entry)
        if kernel != .linux6_6 {
            writeBytes(dir + "ext_measurement", extended ?? [])
            write(dir + "speed_bps", speed + "\n")
        }
        if kernel == .linux6_13 { writeBytes(dir + "measurement_chars_full", cmcb) }
    }

    /// `ROOT`-relative `proc/sys/kernel/osrelease` and, when given, `proc/sysinfo`: a `/proc`
    /// for `--proc-root ROOT/proc`.
    package func proc(kernel: MeasurementKernel, sysinfo: String? = nil) {
        write("proc/sys/kernel/osrelease", kernel.release + "\n")
        if let sysinfo { write("proc/sysinfo", sysinfo) }
    }

    /// `ROOT/proc`.
    package var procRoot: String { root + "/proc" }
}

/// `words` big-endian, 4 bytes each: a block written from the architecture's layout.
package func bigEndian(_ words: [UInt32]) -> [UInt8] {
    words.flatMap { [UInt8($0 >> 24), UInt8($0 >> 16 & 0xff), UInt8($0 >> 8 & 0xff), UInt8($0 & 0xff)] }
}
