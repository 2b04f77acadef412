// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// A channel-measurement group: the format of a channel path's characteristics (CMCB) and
/// measurement entries (CUE, extended CUE). Raw values are the architecture's numbers, as
/// sysfs `cmg` prints them (`%x` before Linux 6.7, decimal since; the same for 1-5). A path
/// without one (sysfs `unknown`, kernel `cmg == -1`) has no `CMG` value at all (nil).
package enum CMG: UInt8, Hashable, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    /// Channel-path busy time (s390-tools chpstat `cmg1.c`); no characteristics.
    case cmg1 = 1
    /// Work units, bus cycles and data units, FICON/zHPF operations in the extended CUE
    /// (`cmg2.c`).
    case cmg2 = 2
    /// Message units sent and refused, data units sent (coupling links, `cmg3.c`).
    case cmg3 = 3
    /// As CMG 2, with the DPU's execution time in the extended CUE (`cmg4.c`).
    case cmg4 = 4
    /// CMG 4's DPU time, then CMG 2's FICON/zHPF block, in the extended CUE (`cmg5.c`).
    case cmg5 = 5

    /// Creates the group for a number.
    /// - Throws: `MeasurementBlockError.unknownCMG` for anything but 1-5.
    package init(checking value: Int) throws(MeasurementBlockError) {
        guard let cmg = value >= 0 && value <= 0xff ? CMG(rawValue: UInt8(value)) : nil else {
            throw .unknownCMG(value)
        }
        self = cmg
    }

    /// Whether chpstat reads a CMCB for this group (`cmg_t.has_cmcb`: all but CMG 1).
    package var hasCharacteristics: Bool { self != .cmg1 }

    /// Whether the group defines an extended CUE (`ext_measurement`): CMG 2, 4 and 5.
    package var hasExtendedEntry: Bool { self == .cmg2 || self == .cmg4 || self == .cmg5 }

    /// The CMGs that count in channel work units and data units (`cmg2.c`, `cmg4.c`, `cmg5.c`
    /// share this CUE layout).
    package var countsWorkUnits: Bool { self == .cmg2 || self == .cmg4 || self == .cmg5 }

    /// `1` ... `5`.
    package var description: String { String(rawValue) }

    package static func < (a: CMG, b: CMG) -> Bool { a.rawValue < b.rawValue }
}
