// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// Appending JSON text of a fixed shape byte by byte, for the writers that emit thousands of
/// entries per reply or event burst (a jansson tree per entry costs ~30 allocations).
extension Array where Element == UInt8 {
    private static let hexDigits = Array("0123456789abcdef".utf8)

    public mutating func append(text literal: StaticString) {
        append(contentsOf: UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    /// Decimal, as jansson prints integers.
    public mutating func append(decimal value: Int) {
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

    /// Lowercase hex with exactly `width` digits.
    public mutating func append(hex value: UInt64, width: Int) {
        for shift in stride(from: (width - 1) * 4, through: 0, by: -4) {
            append(Self.hexDigits[Int(value >> UInt64(shift) & 0xF)])
        }
    }

    /// Lowercase hex without leading zeros (`%x`).
    public mutating func append(hex value: UInt64) {
        var width = 1
        while width < 16 && value >> UInt64(width * 4) != 0 { width += 1 }
        append(hex: value, width: width)
    }

    /// `c.s.nnnn`: subchannel ids and device numbers in Linux notation.
    public mutating func append(busID cssid: UInt8, _ ssid: UInt8, _ number: UInt16) {
        append(hex: UInt64(cssid))
        append(UInt8(ascii: "."))
        append(hex: UInt64(ssid))
        append(UInt8(ascii: "."))
        append(hex: UInt64(number), width: 4)
    }

    /// `c.xx`: chpids in Linux notation.
    public mutating func append(chpid cssid: UInt8, _ chpid: UInt8) {
        append(hex: UInt64(cssid))
        append(UInt8(ascii: "."))
        append(hex: UInt64(chpid), width: 2)
    }
}
