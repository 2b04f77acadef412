// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// The path-management-control word, the first 28 bytes of a SCHIB: how the subchannel is set
/// up (interruption parameter, ISC, enablement) and which paths it has and may use.
///
/// Fields keep their architected names and widths, because the masks are what users compare
/// with lscss and sysfs (`pimpampom`):
/// - `pim` installed paths, `pam` available (configured) paths, `pom` operational paths,
/// - `lpm` the logical path mask: the program's own enable mask (vary on/off lands here),
/// - `pnom` paths found not operational, `lpum` the last path used.
package struct PMCW: Hashable, Sendable {
    /// Architected size in bytes.
    package static let size = 28

    package var intparm: UInt32
    /// QF, W, ISC, ENA, LM, MME, MP, TF, DNV; see the `Flags` constants.
    package var flags: UInt16
    package var devno: UInt16
    package var lpm: UInt8
    package var pnom: UInt8
    package var lpum: UInt8
    package var pim: UInt8
    package var mbi: UInt16
    package var pom: UInt8
    package var pam: UInt8
    package var chpids: ChannelPathSlots
    package var chars: UInt32

    /// Bits of `flags` (QEMU's PMCW_FLAGS_MASK_*).
    package enum Flags {
        /// QF, bit 0 of word 1 (Linux `struct pmcw` `qf`, QEMU PMCW_FLAGS_MASK_QF): the
        /// subchannel has the QDIO facility (OSA, HiperSockets, FCP). The machine sets it; no
        /// instruction changes it (see `Subsystem.modifySubchannel`).
        package static let qdio: UInt16 = 0x8000
        package static let w: UInt16 = 0x4000
        package static let isc: UInt16 = 0x3800
        package static let enabled: UInt16 = 0x0080
        package static let limitMode: UInt16 = 0x0060
        package static let measurementMode: UInt16 = 0x0018
        package static let multipath: UInt16 = 0x0004
        package static let timing: UInt16 = 0x0002
        package static let deviceNumberValid: UInt16 = 0x0001
        /// Bits that must be zero in an MSCH operand (PoP: bits 0, 1, 6 and 7 of the word;
        /// bit 5 is ignored). Setting one is an operand exception, except QF in the operand
        /// for a subchannel that has the QDIO facility (`Subsystem.modifySubchannel`).
        package static let reservedForModify: UInt16 = 0xc300
        /// The bits MSCH may change: ISC, ENA, LM, MME, MP.
        package static let modifiable: UInt16 = isc | enabled | limitMode | measurementMode | multipath
    }

    /// Bits of `chars` (QEMU's PMCW_CHARS_MASK_*).
    package enum Characteristics {
        package static let subchannelType: UInt32 = 0x00e0_0000
        package static let measurementBlockFormatControl: UInt32 = 0x0000_0004
        package static let extendedMeasurementWordMode: UInt32 = 0x0000_0002
        package static let concurrentSense: UInt32 = 0x0000_0001
        /// Reserved bits; set in an MSCH operand they are an operand exception.
        package static let reserved: UInt32 = 0xff1f_fff8
        /// The bits MSCH may change.
        package static let modifiable: UInt32 = measurementBlockFormatControl | concurrentSense
    }

    package init(
        intparm: UInt32 = 0, flags: UInt16 = 0, devno: UInt16 = 0, lpm: UInt8 = 0, pnom: UInt8 = 0,
        lpum: UInt8 = 0, pim: UInt8 = 0, mbi: UInt16 = 0, pom: UInt8 = 0, pam: UInt8 = 0,
        chpids: ChannelPathSlots = ChannelPathSlots(), chars: UInt32 = 0
    ) {
        self.intparm = intparm
        self.flags = flags
        self.devno = devno
        self.lpm = lpm
        self.pnom = pnom
        self.lpum = lpum
        self.pim = pim
        self.mbi = mbi
        self.pom = pom
        self.pam = pam
        self.chpids = chpids
        self.chars = chars
    }

    /// Whether the subchannel has a path it can use: one installed (PIM), available (PAM),
    /// operational (POM) and varied online (LPM). False is what takes a DASD down (Linux
    /// dasd: "no operational path"). A subchannel without paths (PIM 0) has none either.
    package var hasOperationalPath: Bool { pim & pam & pom & lpm != 0 }
    /// Whether the subchannel does not count as one left without an operational path: it has
    /// one, or it is not an I/O subchannel (CHSC, message and EADM subchannels have no paths by
    /// design; counting them would report every real machine as having lost paths).
    package var hasOperationalPathOrIsNotIO: Bool { chars & Characteristics.subchannelType != 0 || hasOperationalPath }

    /// Interruption subclass, 0...7.
    package var isc: UInt8 {
        get { UInt8((flags & Flags.isc) >> 11) }
        set { flags = flags & ~Flags.isc | (UInt16(newValue & 7) << 11) }
    }

    /// ENA: the subchannel is enabled for I/O.
    package var isEnabled: Bool {
        get { flags & Flags.enabled != 0 }
        set { flags = newValue ? flags | Flags.enabled : flags & ~Flags.enabled }
    }

    /// QF: the subchannel has the QDIO facility. Linux vfio-ccw refuses such a subchannel
    /// (`vfio_ccw_sch_probe`: "does not support QDIO").
    package var hasQDIOFacility: Bool {
        get { flags & Flags.qdio != 0 }
        set { flags = newValue ? flags | Flags.qdio : flags & ~Flags.qdio }
    }

    /// DNV: `devno` is valid, i.e. a device is attached.
    package var deviceNumberValid: Bool {
        get { flags & Flags.deviceNumberValid != 0 }
        set { flags = newValue ? flags | Flags.deviceNumberValid : flags & ~Flags.deviceNumberValid }
    }

    /// The 28 architected bytes, big-endian.
    package var bytes: [UInt8] {
        var writer = ByteWriter(capacity: PMCW.size)
        write(to: &writer)
        return writer.bytes
    }

    /// Decodes the 28 architected bytes.
    /// - Throws: `ControlBlockSizeError` unless exactly 28 bytes are given.
    package init<C: Collection>(bytes: C) throws(ControlBlockSizeError) where C.Element == UInt8 {
        guard bytes.count == PMCW.size else {
            throw ControlBlockSizeError(block: "PMCW", expected: PMCW.size, actual: bytes.count)
        }
        var reader = ByteReader(bytes)
        self.init(from: &reader)
    }

    func write(to writer: inout ByteWriter) {
        writer.put(intparm)
        writer.put(flags)
        writer.put(devno)
        writer.put(lpm)
        writer.put(pnom)
        writer.put(lpum)
        writer.put(pim)
        writer.put(mbi)
        writer.put(pom)
        writer.put(pam)
        writer.put(chpids.rawValue)
        writer.put(chars)
    }

    init(from reader: inout ByteReader) {
        intparm = reader.get()
        flags = reader.get()
        devno = reader.get()
        lpm = reader.get()
        pnom = reader.get()
        lpum = reader.get()
        pim = reader.get()
        mbi = reader.get()
        pom = reader.get()
        pam = reader.get()
        chpids = ChannelPathSlots(rawValue: reader.get())
        chars = reader.get()
    }
}
