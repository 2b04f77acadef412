// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// Big-endian writing and reading for the architected control blocks; z/Architecture is
/// big-endian, and the 52-byte SCHIB layout is what STSCH stores.
struct ByteWriter {
    var bytes: [UInt8] = []

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    mutating func put<T: FixedWidthInteger>(_ value: T) {
        var shift = T.bitWidth - 8
        while shift >= 0 {
            bytes.append(UInt8(truncatingIfNeeded: value >> shift))
            shift -= 8
        }
    }
}

struct ByteReader {
    let bytes: [UInt8]
    var offset = 0

    init<C: Collection>(_ bytes: C) where C.Element == UInt8 { self.bytes = Array(bytes) }

    mutating func get<T: FixedWidthInteger>(_: T.Type = T.self) -> T {
        var value: T = 0
        for _ in 0..<(T.bitWidth / 8) {
            value = value << 8 | T(bytes[offset])
            offset += 1
        }
        return value
    }
}

/// A control block that does not have its architected size.
package struct ControlBlockSizeError: CSSModelError, Equatable {
    package let block: String
    package let expected: Int
    package let actual: Int

    package var description: String { "\(block) must be \(expected) bytes, got \(actual)" }
}
