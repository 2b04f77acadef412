// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// The subchannel-status word (command mode), 12 bytes of the SCHIB. The model performs no I/O,
/// so it only matters here for what MSCH checks (status pending, busy) and for the PNO bit,
/// which tells the program "a path became not operational, look at pnom".
package struct SCSW: Hashable, Sendable {
    /// Architected size in bytes.
    package static let size = 12

    /// Key, S, L, CC, F, P, I, A, U, Z, E, N (PNO); see `Flags`.
    package var flags: UInt16
    /// Function, activity and status control; see `Control`.
    package var ctrl: UInt16
    package var cpa: UInt32
    package var dstat: UInt8
    package var cstat: UInt8
    package var count: UInt16

    /// Bits of `flags` (QEMU's SCSW_FLAGS_MASK_*).
    package enum Flags {
        package static let key: UInt16 = 0xf000
        package static let suspendControl: UInt16 = 0x0800
        package static let extendedStatusWordFormat: UInt16 = 0x0400
        package static let deferredConditionCode: UInt16 = 0x0300
        package static let format: UInt16 = 0x0080
        package static let prefetch: UInt16 = 0x0040
        package static let initialStatusInterruption: UInt16 = 0x0020
        package static let addressLimitCheckingControl: UInt16 = 0x0010
        package static let suppressSuspendedInterruption: UInt16 = 0x0008
        package static let zeroConditionCode: UInt16 = 0x0004
        package static let extendedControl: UInt16 = 0x0002
        /// PNO: path not operational.
        package static let pathNotOperational: UInt16 = 0x0001
    }

    /// Bits of `ctrl` (QEMU's SCSW_FCTL_*, SCSW_ACTL_*, SCSW_STCTL_*).
    package enum Control {
        package static let startFunction: UInt16 = 0x4000
        package static let haltFunction: UInt16 = 0x2000
        package static let clearFunction: UInt16 = 0x1000
        package static let functionMask: UInt16 = 0x7000
        package static let activityMask: UInt16 = 0x0fe0
        package static let alertStatus: UInt16 = 0x0010
        package static let intermediateStatus: UInt16 = 0x0008
        package static let primaryStatus: UInt16 = 0x0004
        package static let secondaryStatus: UInt16 = 0x0002
        package static let statusPending: UInt16 = 0x0001
    }

    package init(
        flags: UInt16 = 0, ctrl: UInt16 = 0, cpa: UInt32 = 0, dstat: UInt8 = 0, cstat: UInt8 = 0, count: UInt16 = 0
    ) {
        self.flags = flags
        self.ctrl = ctrl
        self.cpa = cpa
        self.dstat = dstat
        self.cstat = cstat
        self.count = count
    }

    /// PNO: a path became not operational; the program should look at pnom.
    package var pathNotOperational: Bool {
        get { flags & Flags.pathNotOperational != 0 }
        set { flags = newValue ? flags | Flags.pathNotOperational : flags & ~Flags.pathNotOperational }
    }

    /// Status pending: MSCH answers cc 1.
    package var isStatusPending: Bool { ctrl & Control.statusPending != 0 }

    /// A start, halt or clear function is in progress: MSCH answers cc 2.
    package var isBusy: Bool { ctrl & Control.functionMask != 0 }

    /// The 12 architected bytes, big-endian.
    package var bytes: [UInt8] {
        var writer = ByteWriter(capacity: SCSW.size)
        write(to: &writer)
        return writer.bytes
    }

    /// Decodes the 12 architected bytes.
    /// - Throws: `ControlBlockSizeError` unless exactly 12 bytes are given.
    package init<C: Collection>(bytes: C) throws(ControlBlockSizeError) where C.Element == UInt8 {
        guard bytes.count == SCSW.size else {
            throw ControlBlockSizeError(block: "SCSW", expected: SCSW.size, actual: bytes.count)
        }
        var reader = ByteReader(bytes)
        self.init(from: &reader)
    }

    func write(to writer: inout ByteWriter) {
        writer.put(flags)
        writer.put(ctrl)
        writer.put(cpa)
        writer.put(dstat)
        writer.put(cstat)
        writer.put(count)
    }

    init(from reader: inout ByteReader) {
        flags = reader.get()
        ctrl = reader.get()
        cpa = reader.get()
        dstat = reader.get()
        cstat = reader.get()
        count = reader.get()
    }
}
