// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// Appending JSON text of a fixed shape byte by byte, for the writers that emit thousands of
/// entries per reply or event burst (a jansson tree per entry costs ~30 allocations). Hex and
/// ids in Linux notation are CSSModel's (`append(hex:width:)`, `append(busID:)`, `append(chpid:)`).
extension Array where Element == UInt8 {
    @inlinable
    package mutating func append(text literal: StaticString) {
        append(contentsOf: UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    /// Decimal, as jansson prints integers.
    @inlinable
    package mutating func append(decimal value: Int) {
        if value < 0 { append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for 20 digits
        var count = 0
        Swift.withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            for index in stride(from: count - 1, through: 0, by: -1) { append(buffer[index]) }
        }
    }
}
