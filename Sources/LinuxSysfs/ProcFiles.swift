// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// What cssd reads from procfs, under a root that `--proc-root` moves as `--backend
/// linux-sysfs:ROOT` moves `/sys` (a test, or a host's copy): `/proc/sysinfo` (the partition
/// the metrics are labelled with) and `/proc/sys/kernel/osrelease` (the kernel's notation
/// for `cmg`).
package struct ProcFiles: Sendable {
    /// The directory that stands for `/proc`.
    package let root: String

    package init(root: String = "/proc") {
        self.root = root
    }

    /// `ROOT/sysinfo`, parsed; nil when there is none (not an s390 kernel) or it cannot be read.
    package func systemInformation() -> SystemInformation? {
        (try? SysfsFiles.read(root + "/sysinfo")).flatMap { $0 }.map(SystemInformation.init(parsing:))
    }

    /// `ROOT/cio_ignore`, parsed; nil when it cannot be read (no such file: not an s390
    /// kernel, or a `--proc-root` without it).
    package func cioIgnore() -> CIOIgnoreList? {
        (try? SysfsFiles.read(root + "/cio_ignore")).flatMap { $0 }.map(CIOIgnoreList.init(parsing:))
    }

    /// `ROOT/sys/kernel/osrelease`, parsed; nil when missing or not `MAJOR.MINOR...`.
    package func kernelRelease() -> KernelRelease? {
        (try? SysfsFiles.line(root + "/sys/kernel/osrelease")).flatMap { $0 }.flatMap(KernelRelease.init(parsing:))
    }
}

/// The partition and machine as `/proc/sysinfo` states them (arch/s390/kernel/sysinfo.c: the
/// STSI 1.1.1 and 2.2.2 blocks, one `Key:   value` per line, values padded with blanks).
package struct SystemInformation: Sendable, Equatable {
    /// `LPAR Name`: the partition's name of at most 8 characters, as the HMC shows it for a
    /// classic-mode LPAR (and as `zhmc_*` metrics of the HMC's exporter name it); nil outside
    /// an LPAR, or blank.
    package var partitionName: String?
    /// `LPAR Number`.
    package var partitionNumber: Int?
    /// `LPAR Extended Name`: the partition's name of up to 256 characters (a DPM partition's
    /// name); nil when the machine does not provide one, or blank.
    package var partitionExtendedName: String?
    /// `Type`: the machine type (`3931`).
    package var machineType: String?
    /// `Sequence Code`: the machine's serial number (`00000000000987F6`).
    package var sequenceCode: String?

    package init(
        partitionName: String? = nil, partitionNumber: Int? = nil, partitionExtendedName: String? = nil,
        machineType: String? = nil, sequenceCode: String? = nil
    ) {
        self.partitionName = partitionName
        self.partitionNumber = partitionNumber
        self.partitionExtendedName = partitionExtendedName
        self.machineType = machineType
        self.sequenceCode = sequenceCode
    }

    /// Takes the first line of each key it knows; other lines (the CPU counts, a z/VM or KVM
    /// guest's `VM00 ...` lines) are ignored. Never fails: a key that is missing stays nil.
    package init(parsing text: String) {
        self.init()
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingBlanks
            let value = line[line.index(after: colon)...].trimmingBlanks
            let present = value.isEmpty ? nil : value
            switch key {
            case "LPAR Name" where partitionName == nil: partitionName = present
            case "LPAR Number" where partitionNumber == nil: partitionNumber = Int(value)
            case "LPAR Extended Name" where partitionExtendedName == nil: partitionExtendedName = present
            case "Type" where machineType == nil: machineType = present
            case "Sequence Code" where sequenceCode == nil: sequenceCode = present
            default: continue
            }
        }
    }
}

/// A Linux kernel's version as `uname -r` prints it (`6.6.0-28-generic`, `6.13.0-rc1`).
package struct KernelRelease: Sendable, Comparable, CustomStringConvertible {
    package var major: Int
    package var minor: Int

    package init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    /// The first two dot-separated numbers; nil when the text does not start so.
    package init?(parsing text: String) {
        let parts = text.trimmingBlanks.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, let major = Int(parts[0]) else { return nil }
        let minorDigits = parts[1].prefix(while: { ("0"..."9").contains($0) })
        guard let minor = Int(minorDigits) else { return nil }
        self.init(major: major, minor: minor)
    }

    /// The notation of the chpid's `cmg` file: `%x` until Linux 6.7 made it decimal ("s390/cio:
    /// export CMG value as decimal"). Groups 1 to 9 read the same in both.
    package var cmgRadix: Int { self < KernelRelease(major: 6, minor: 7) ? 16 : 10 }

    package static func < (a: KernelRelease, b: KernelRelease) -> Bool {
        (a.major, a.minor) < (b.major, b.minor)
    }

    package var description: String { "\(major).\(minor)" }
}

extension StringProtocol {
    /// Without leading and trailing blanks (spaces, tabs, carriage returns).
    var trimmingBlanks: String {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !blank($0) }), let last = lastIndex(where: { !blank($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}

/// `/proc/cio_ignore` as the kernel prints it (drivers/s390/cio/blacklist.c
/// `cio_ignore_proc_seq_show`): one entry a line, `0.S.DDDD` or a range `0.S.DDDD-0.S.DDDD`.
package struct CIOIgnoreList: Sendable, Equatable {
    /// Inclusive ranges of `ssid << 16 | devno`.
    package var ranges: [ClosedRange<UInt32>] = []

    /// A line that is neither an id nor a range is skipped: it can match nothing.
    package init(parsing text: String) {
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(parts.count), let first = Self.key(parts[0]),
                let last = parts.count == 2 ? Self.key(parts[1]) : first, first <= last
            else { continue }
            ranges.append(first...last)
        }
    }

    /// Whether device number `devno` of subchannel set `ssid` is on the list.
    package func contains(ssid: UInt8, devno: UInt16) -> Bool {
        let key = UInt32(ssid) << 16 | UInt32(devno)
        return ranges.contains { $0.contains(key) }
    }

    private static func key(_ text: Substring) -> UInt32? {
        guard let (ssid, number) = parseBusID(String(text.filter { $0 != " " })) else { return nil }
        return UInt32(ssid) << 16 | UInt32(number)
    }
}
