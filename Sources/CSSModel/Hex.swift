// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// Hex notation, read and written in one place: ids in Linux notation (`0.0.0042`, `0.4a`),
/// sysfs attributes, topology files, listings. Lowercase on output, as Linux prints (`%x`,
/// `%02x`, `%04x`); either case on input. The byte-level forms are `@inlinable` so that the
/// topology reader (a quarter of a million ids per file) keeps them inlined across modules.
package enum Hex {
    /// The value of one ASCII hex digit, either case; nil for any other byte.
    @inlinable @inline(__always)
    package static func digit(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte &- UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte &- UInt8(ascii: "a") &+ 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte &- UInt8(ascii: "A") &+ 10)
        default: nil
        }
    }

    /// Splits `h`, `h.h` or `h.h.h` (another `separator`, e.g. "/" for `3390/0c`, works alike)
    /// into up to three numbers, part `i` having 1...`maxDigits.i` hex digits; a zero limit
    /// means the part is absent, so `(2, 2, 0)` reads `cssid.chpid` and `(4, 0, 0)` a lone
    /// number. Nil for anything else: no sign, prefix, blank or empty part. Absent parts are 0.
    @inlinable @inline(__always)
    package static func parts(
        _ bytes: UnsafeBufferPointer<UInt8>, separator: UInt8 = UInt8(ascii: "."), maxDigits: (Int, Int, Int)
    ) -> (Int, Int, Int)? {
        let parts = maxDigits.2 > 0 ? 3 : maxDigits.1 > 0 ? 2 : 1
        var values = (0, 0, 0)
        var part = 0
        var value = 0
        var digits = 0
        for byte in bytes {
            if byte == separator {
                guard digits > 0, part < parts - 1 else { return nil }
                if part == 0 { values.0 = value } else { values.1 = value }
                part += 1
                value = 0
                digits = 0
                continue
            }
            guard let nibble = digit(byte) else { return nil }
            digits += 1
            let limit = part == 0 ? maxDigits.0 : part == 1 ? maxDigits.1 : maxDigits.2
            guard digits <= limit else { return nil }
            value = value << 4 | nibble
        }
        guard digits > 0, part == parts - 1 else { return nil }
        switch part {
        case 0: values.0 = value
        case 1: values.1 = value
        default: values.2 = value
        }
        return values
    }

    /// `parts(_:separator:maxDigits:)` over a string's UTF-8.
    @inlinable
    package static func parts<Text: StringProtocol>(
        _ text: Text, separator: UInt8 = UInt8(ascii: "."), maxDigits: (Int, Int, Int)
    ) -> (Int, Int, Int)? {
        if let result = text.utf8.withContiguousStorageIfAvailable({
            parts($0, separator: separator, maxDigits: maxDigits)
        }) {
            return result
        }
        return Array(text.utf8).withUnsafeBufferPointer { parts($0, separator: separator, maxDigits: maxDigits) }
    }

    /// A number of 1...`maxDigits` hex digits, nothing else (`4a`, `3390`); nil otherwise.
    @inlinable
    package static func number<Text: StringProtocol>(_ text: Text, maxDigits: Int) -> Int? {
        parts(text, maxDigits: (maxDigits, 0, 0))?.0
    }

    /// A number as topology files and `--cssid` take it: an optional `0x`/`0X` prefix, then
    /// 1...8 hex digits (`0x1a`, `1a`, `01c0`); nil otherwise.
    @inlinable
    package static func prefixedNumber(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        var digits = UnsafeBufferPointer(rebasing: bytes[...])
        if digits.count > 2, digits[0] == UInt8(ascii: "0"), digits[1] | 0x20 == UInt8(ascii: "x") {
            digits = UnsafeBufferPointer(rebasing: digits[2...])
        }
        return parts(digits, maxDigits: (8, 0, 0))?.0
    }

    /// `prefixedNumber(_:)` over a string's UTF-8.
    package static func prefixedNumber<Text: StringProtocol>(_ text: Text) -> Int? {
        Array(text.utf8).withUnsafeBufferPointer { prefixedNumber($0) }
    }

    /// Lowercase hex, zero-padded to `width` digits (`%0*x`); a negative number is `-` and the
    /// digits of its magnitude.
    package static func string<Value: BinaryInteger>(_ value: Value, width: Int = 1) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(max(width, 4))
        if value < 0 {
            bytes.append(UInt8(ascii: "-"))
            bytes.append(hex: value.magnitude, width: width)
        } else {
            bytes.append(hex: value, width: width)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Array where Element == UInt8 {
    /// Appends `value` in lowercase hex, zero-padded to `width` digits (`%0*x`; no prefix).
    /// `value` must not be negative and must fit in 64 bits.
    @inlinable @inline(__always)
    package mutating func append<Value: BinaryInteger>(hex value: Value, width: Int = 1) {
        precondition(value >= 0, "hex digits of a negative number")
        let value = UInt64(value)
        var digits = 1
        while digits < 16, value >> UInt64(4 * digits) != 0 { digits += 1 }
        if digits < width {
            for _ in digits..<width { append(UInt8(ascii: "0")) }
        }
        var shift = 4 * (digits - 1)
        while shift >= 0 {
            let nibble = UInt8(truncatingIfNeeded: value >> UInt64(shift)) & 0xf
            append(nibble < 10 ? UInt8(ascii: "0") &+ nibble : UInt8(ascii: "a") &+ nibble &- 10)
            shift -= 4
        }
    }

    /// `c.s.nnnn`: a subchannel id or device number in Linux notation.
    @inlinable
    package mutating func append(busID cssid: UInt8, _ ssid: UInt8, _ number: UInt16) {
        append(hex: cssid)
        append(UInt8(ascii: "."))
        append(hex: ssid)
        append(UInt8(ascii: "."))
        append(hex: number, width: 4)
    }

    /// `c.xx`: a chpid in Linux notation.
    @inlinable
    package mutating func append(chpid cssid: UInt8, _ chpid: UInt8) {
        append(hex: cssid)
        append(UInt8(ascii: "."))
        append(hex: chpid, width: 2)
    }
}
