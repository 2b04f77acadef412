// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// Big-endian 32-bit words, the unit every measurement block is defined in (s390 is
/// big-endian; bit 0 is the most significant bit). The blocks keep their words as read, so
/// that encoding gives back exactly the bytes the kernel exposed, reserved bits included.
enum BlockWords {
    /// Decodes `bytes` into words.
    /// - Throws: `MeasurementBlockError.wrongSize` when there are not exactly `count` words.
    static func decode<C: Collection<UInt8>>(_ bytes: C, count: Int, block: String) throws(MeasurementBlockError)
        -> [UInt32]
    {
        guard bytes.count == count * 4 else {
            throw .wrongSize(block: block, expected: count * 4, actual: bytes.count)
        }
        var words = [UInt32]()
        words.reserveCapacity(count)
        var word: UInt32 = 0
        for (index, byte) in bytes.enumerated() {
            word = word << 8 | UInt32(byte)
            if index % 4 == 3 {
                words.append(word)
                word = 0
            }
        }
        return words
    }

    /// The words as big-endian bytes.
    static func encode(_ words: [UInt32]) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(words.count * 4)
        for word in words {
            bytes.append(UInt8(truncatingIfNeeded: word >> 24))
            bytes.append(UInt8(truncatingIfNeeded: word >> 16))
            bytes.append(UInt8(truncatingIfNeeded: word >> 8))
            bytes.append(UInt8(truncatingIfNeeded: word))
        }
        return bytes
    }

    /// Bits `first...last` of `word` (bit 0 the most significant), right-aligned.
    static func bits(_ word: UInt32, _ first: Int, _ last: Int) -> UInt32 {
        let width = last - first + 1
        let mask: UInt32 = width == 32 ? .max : (1 << width) - 1
        return (word >> (31 - last)) & mask
    }

    /// `word` with bits `first...last` replaced by `value` (truncated to the field's width).
    static func setting(_ word: UInt32, _ first: Int, _ last: Int, to value: UInt32) -> UInt32 {
        let width = last - first + 1
        let mask: UInt32 = width == 32 ? .max : (1 << width) - 1
        let shift = 31 - last
        return (word & ~(mask << shift)) | ((value & mask) << shift)
    }
}
