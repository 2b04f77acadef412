// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// The subchannel-status word (command mode), 12 bytes of the SCHIB. The model performs no I/O,
/// so it only matters here for what MSCH checks (status pending, busy) and for the PNO bit,
/// which tells the program "a path became not operational, look at pnom".
public struct SCSW: Hashable, Sendable {
    /// Architected size in bytes.
    public static let size = 12

    /// Key, S, L, CC, F, P, I, A, U, Z, E, N (PNO); see `Flags`.
    public var flags: UInt16
    /// Function, activity and status control; see `Control`.
    public var ctrl: UInt16
    public var cpa: UInt32
    public var dstat: UInt8
    public var cstat: UInt8
    public var count: UInt16

    /// Bits of `flags` (QEMU's SCSW_FLAGS_MASK_*).
    public enum Flags {
        public static let key: UInt16 = 0xf000
        public static let suspendControl: UInt16 = 0x0800
        public static let extendedStatusWordFormat: UInt16 = 0x0400
        public static let deferredConditionCode: UInt16 = 0x0300
        public static let format: UInt16 = 0x0080
        public static let prefetch: UInt16 = 0x0040
        public static let initialStatusInterruption: UInt16 = 0x0020
        public static let addressLimitCheckingControl: UInt16 = 0x0010
        public static let suppressSuspendedInterruption: UInt16 = 0x0008
        public static let zeroConditionCode: UInt16 = 0x0004
        public static let extendedControl: UInt16 = 0x0002
        /// PNO: path not operational.
        public static let pathNotOperational: UInt16 = 0x0001
    }

    /// Bits of `ctrl` (QEMU's SCSW_FCTL_*, SCSW_ACTL_*, SCSW_STCTL_*).
    public enum Control {
        public static let startFunction: UInt16 = 0x4000
        public static let haltFunction: UInt16 = 0x2000
        public static let clearFunction: UInt16 = 0x1000
        public static let functionMask: UInt16 = 0x7000
        public static let activityMask: UInt16 = 0x0fe0
        public static let alertStatus: UInt16 = 0x0010
        public static let intermediateStatus: UInt16 = 0x0008
        public static let primaryStatus: UInt16 = 0x0004
        public static let secondaryStatus: UInt16 = 0x0002
        public static let statusPending: UInt16 = 0x0001
    }

    public init(
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
    public var pathNotOperational: Bool {
        get { flags & Flags.pathNotOperational != 0 }
        set { flags = newValue ? flags | Flags.pathNotOperational : flags & ~Flags.pathNotOperational }
    }

    /// Status pending: MSCH answers cc 1.
    public var isStatusPending: Bool { ctrl & Control.statusPending != 0 }

    /// A start, halt or clear function is in progress: MSCH answers cc 2.
    public var isBusy: Bool { ctrl & Control.functionMask != 0 }

    /// The 12 architected bytes, big-endian.
    public var bytes: [UInt8] {
        var writer = ByteWriter(capacity: SCSW.size)
        write(to: &writer)
        return writer.bytes
    }

    /// Decodes the 12 architected bytes.
    /// - Throws: `ControlBlockSizeError` unless exactly 12 bytes are given.
    public init<C: Collection>(bytes: C) throws(ControlBlockSizeError) where C.Element == UInt8 {
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
