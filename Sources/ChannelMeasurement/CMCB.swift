// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// The channel-measurement characteristics block: the 32-byte response of CHSC "store
/// channel-measurement characteristics" (0x0022), Linux `struct cmg_cmcb`
/// (drivers/s390/cio/chsc.h), exposed whole as sysfs `measurement_chars_full` (Linux 6.13+).
///
/// ```
/// word 0: bit 0 not-valid | bit 1 shared | bit 2 extended | bits 3-23 reserved | bits 24-31 chpid
/// word 1: bits 0-4 CMCV | bits 5-11 reserved | bits 12-15 CMGP | bits 16-23 CMGQ | bits 24-31 CMG
/// word 2: bits 0-15 reserved (byte 9: DPU id for CMG 4 and 5) | bits 16-31 CMGS
/// words 3-7: the CMG-specific characteristics (see `CMGCharacteristics`)
/// ```
/// The older sysfs view, `measurement_chars`, is words 3-7 only (20 bytes), each word zeroed
/// unless its CMCV bit is set (chsc.c `chsc_initialize_cmg_chars`: `cmcv & (0x80 >> (i + 3))`,
/// i.e. CMCV's most significant bit for word 3). The words are kept as read, so `bytes`
/// reproduces them exactly, reserved bits included.
package struct CMCB: Hashable, Sendable {
    /// The block's size in bytes.
    package static let size = 32
    /// The size of the older `measurement_chars` view.
    package static let measurementCharsSize = 20
    /// Where `measurement_chars` starts inside the block (word 3), as chpstat places it.
    package static let measurementCharsOffset = 12

    /// The eight words, big-endian as on s390.
    package private(set) var words: [UInt32]

    /// A block of zeros (every field 0, `notValid` clear).
    package init() { words = Array(repeating: 0, count: 8) }

    /// Decodes `measurement_chars_full`.
    /// - Throws: `MeasurementBlockError.wrongSize` unless there are exactly 32 bytes.
    package init<C: Collection<UInt8>>(bytes: C) throws(MeasurementBlockError) {
        words = try BlockWords.decode(bytes, count: 8, block: "measurement_chars_full")
    }

    /// Decodes the older 20-byte `measurement_chars` into words 3-7 of an otherwise zero block,
    /// as chpstat does (`read_cmcb`); the header (chpid, CMG, CMCV, speed) is then unknown.
    /// - Throws: `MeasurementBlockError.wrongSize` unless there are exactly 20 bytes.
    package init<C: Collection<UInt8>>(measurementChars bytes: C) throws(MeasurementBlockError) {
        let data = try BlockWords.decode(bytes, count: 5, block: "measurement_chars")
        words = [0, 0, 0] + data
    }

    /// The 32 bytes of `measurement_chars_full`.
    package var bytes: [UInt8] { BlockWords.encode(words) }

    /// The 20 bytes of `measurement_chars` as the kernel derives them from this block: words
    /// 3-7, each zeroed unless its CMCV bit is set.
    package var measurementCharsBytes: [UInt8] {
        BlockWords.encode((0..<5).map { cmcv & (0x10 >> UInt8($0)) != 0 ? data[$0] : 0 })
    }

    // MARK: Word 0

    /// Bit 0: the block's contents are not valid.
    package var notValid: Bool {
        get { BlockWords.bits(words[0], 0, 0) != 0 }
        set { words[0] = BlockWords.setting(words[0], 0, 0, to: newValue ? 1 : 0) }
    }
    /// Bit 1: the channel path is shared between partitions.
    package var shared: Bool {
        get { BlockWords.bits(words[0], 1, 1) != 0 }
        set { words[0] = BlockWords.setting(words[0], 1, 1, to: newValue ? 1 : 0) }
    }
    /// Bit 2: the path has an extended measurement entry (Linux `chp->extended`).
    package var extended: Bool {
        get { BlockWords.bits(words[0], 2, 2) != 0 }
        set { words[0] = BlockWords.setting(words[0], 2, 2, to: newValue ? 1 : 0) }
    }
    /// Bits 24-31: the chpid the block describes.
    package var chpid: UInt8 {
        get { UInt8(BlockWords.bits(words[0], 24, 31)) }
        set { words[0] = BlockWords.setting(words[0], 24, 31, to: UInt32(newValue)) }
    }

    // MARK: Word 1

    /// Bits 0-4: the channel-measurement-characteristics validity, one bit per word 3-7, the
    /// most significant (0x10) for word 3.
    package var cmcv: UInt8 {
        get { UInt8(BlockWords.bits(words[1], 0, 4)) }
        set { words[1] = BlockWords.setting(words[1], 0, 4, to: UInt32(newValue)) }
    }
    /// Bits 12-15: the power of ten of the speed (`cmgs × 10^cmgp` bit/s; 0 means 8).
    package var cmgp: UInt8 {
        get { UInt8(BlockWords.bits(words[1], 12, 15)) }
        set { words[1] = BlockWords.setting(words[1], 12, 15, to: UInt32(newValue)) }
    }
    /// Bits 16-23: the channel-measurement-group qualifier.
    package var cmgq: UInt8 {
        get { UInt8(BlockWords.bits(words[1], 16, 23)) }
        set { words[1] = BlockWords.setting(words[1], 16, 23, to: UInt32(newValue)) }
    }
    /// Bits 24-31: the channel-measurement group, as a number (see `CMG`).
    package var cmg: UInt8 {
        get { UInt8(BlockWords.bits(words[1], 24, 31)) }
        set { words[1] = BlockWords.setting(words[1], 24, 31, to: UInt32(newValue)) }
    }

    // MARK: Word 2

    /// Byte 9: the data-processing unit's id (CMG 4 and 5; chpstat `cmcb4_t.dpu_id`).
    package var dpuID: UInt8 {
        get { UInt8(BlockWords.bits(words[2], 8, 15)) }
        set { words[2] = BlockWords.setting(words[2], 8, 15, to: UInt32(newValue)) }
    }
    /// Bits 16-31: the speed's significand (`scmc_get_speed`).
    package var cmgs: UInt16 {
        get { UInt16(BlockWords.bits(words[2], 16, 31)) }
        set { words[2] = BlockWords.setting(words[2], 16, 31, to: UInt32(newValue)) }
    }

    /// The operating speed in bit/s, `cmgs × 10^p` with `p = cmgp`, or 8 when `cmgp` is 0
    /// (Linux chsc.c `scmc_get_speed`); 0 means unknown (sysfs `speed_bps` prints `0`).
    package var speedBPS: UInt64 {
        let power = cmgp == 0 ? 8 : Int(cmgp)
        var speed = UInt64(cmgs)
        for _ in 0..<power {
            let (product, overflow) = speed.multipliedReportingOverflow(by: 10)
            if overflow { return .max }
            speed = product
        }
        return speed
    }

    // MARK: Words 3-7

    /// Words 3-7, the CMG-specific characteristics (`data[5]` in `struct cmg_cmcb`).
    package var data: [UInt32] {
        get { Array(words[3...7]) }
        set {
            precondition(newValue.count == 5, "CMCB data is five words")
            words.replaceSubrange(3...7, with: newValue)
        }
    }

    /// Word `index` (0...7).
    package subscript(word index: Int) -> UInt32 {
        get { words[index] }
        set { words[index] = newValue }
    }
}
