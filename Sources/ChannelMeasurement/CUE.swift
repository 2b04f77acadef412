// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// A channel-utilization entry: the 32 bytes of sysfs `measurement` (Linux `struct
/// cmg_entry`, one entry of the channel-utilization block the machine updates).
///
/// ```
/// word 0: byte 0 CUIV | bytes 1-3 timestamp (24 bits, in units of 128 µs)
/// words 1-7: the CMG's counters (see `CMGCounter`), each 32 bits
/// ```
/// Word `n` is valid iff `cuiv & (0x80 >> n)` (chpstat `_cue_valid`). Kept as read.
package struct CUE: Hashable, Sendable {
    /// The entry's size in bytes.
    package static let size = 32
    /// The timestamp's width in bits (chpstat `CUE_TS_WIDTH`).
    package static let timestampWidth = 24
    /// Seconds per timestamp unit (chpstat `CM_TICK`, 128 µs).
    package static let secondsPerTick = 0.000128

    /// The eight words, big-endian as on s390.
    package private(set) var words: [UInt32]

    /// An entry of zeros (nothing valid, timestamp 0).
    package init() { words = Array(repeating: 0, count: 8) }

    /// Decodes `measurement`.
    /// - Throws: `MeasurementBlockError.wrongSize` unless there are exactly 32 bytes.
    package init<C: Collection<UInt8>>(bytes: C) throws(MeasurementBlockError) {
        words = try BlockWords.decode(bytes, count: 8, block: "measurement")
    }

    /// The 32 bytes of `measurement`.
    package var bytes: [UInt8] { BlockWords.encode(words) }

    /// The channel-utilization-entry validity: bit `n` (0x80 >> n) for word `n`.
    package var cuiv: UInt8 {
        get { UInt8(BlockWords.bits(words[0], 0, 7)) }
        set { words[0] = BlockWords.setting(words[0], 0, 7, to: UInt32(newValue)) }
    }

    /// When the machine last updated the entry, in 128 µs units, wrapping at 2^24 (about
    /// 2147 s).
    package var timestamp: UInt32 {
        get { BlockWords.bits(words[0], 8, 31) }
        set { words[0] = BlockWords.setting(words[0], 8, 31, to: newValue) }
    }

    /// Whether word `n` (1...7) holds a valid counter.
    package func isValid(word n: Int) -> Bool { cuiv & (0x80 >> UInt8(n)) != 0 }

    /// Word `index` (0...7).
    package subscript(word index: Int) -> UInt32 {
        get { words[index] }
        set { words[index] = newValue }
    }
}

/// An extended channel-utilization entry: the 64 bytes of sysfs `ext_measurement` (Linux 6.10+,
/// `struct cmg_ext_entry`), 16 words whose meaning depends on the CMG (see `CMGCounter`). It
/// has no validity bits: chpstat takes it as valid when all 64 bytes could be read.
package struct ExtendedCUE: Hashable, Sendable {
    /// The entry's size in bytes.
    package static let size = 64

    /// The sixteen words, big-endian as on s390.
    package private(set) var words: [UInt32]

    /// An entry of zeros.
    package init() { words = Array(repeating: 0, count: 16) }

    /// Decodes `ext_measurement`.
    /// - Throws: `MeasurementBlockError.wrongSize` unless there are exactly 64 bytes.
    package init<C: Collection<UInt8>>(bytes: C) throws(MeasurementBlockError) {
        words = try BlockWords.decode(bytes, count: 16, block: "ext_measurement")
    }

    /// The 64 bytes of `ext_measurement`.
    package var bytes: [UInt8] { BlockWords.encode(words) }

    /// Word `index` (0...15).
    package subscript(word index: Int) -> UInt32 {
        get { words[index] }
        set { words[index] = newValue }
    }

    /// The 64-bit big-endian value in words `index` and `index + 1`.
    package subscript(doubleword index: Int) -> UInt64 {
        get { UInt64(words[index]) << 32 | UInt64(words[index + 1]) }
        set {
            words[index] = UInt32(truncatingIfNeeded: newValue >> 32)
            words[index + 1] = UInt32(truncatingIfNeeded: newValue)
        }
    }
}

/// One reading of a chpid's measurement entries, taken consistently (the CUE re-read until its
/// timestamp is stable around the extended CUE's read, chpstat `read_util`).
package struct MeasurementSample: Hashable, Sendable {
    /// The entry (`measurement`).
    package var cue: CUE
    /// The extended entry, when all 64 bytes were read (chpstat `util_t.extended`); nil on
    /// kernels before 6.10 and for paths without one.
    package var extendedCUE: ExtendedCUE?

    package init(cue: CUE, extendedCUE: ExtendedCUE? = nil) {
        self.cue = cue
        self.extendedCUE = extendedCUE
    }
}

extension CUE {
    /// The entry with chpstat's firmware fix applied (`read_cue`): "Some firmware levels
    /// incorrectly report a CUIV of 0xfe for CMG 3", which hides nothing the CMG defines, so a
    /// CMG 3 CUIV of 0xfe becomes 0xff. Any other entry is returned unchanged.
    package func correctingFirmwareCUIV(for cmg: CMG) -> CUE {
        guard cmg == .cmg3, cuiv == 0xfe else { return self }
        var fixed = self
        fixed.cuiv = 0xff
        return fixed
    }
}
