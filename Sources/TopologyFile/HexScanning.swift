// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

// Byte-level scanners for the file's hex notations. They read jansson's string bytes in place,
// so that decoding a quarter of a million subchannels makes no Swift String per value. Each
// accepts a subset of what CSSModel's parsers accept (the same digit counts); on a refusal the
// decoder asks CSSModel's parser, whose error text is the one users see everywhere else.

@inline(__always)
func hexNibble(_ byte: UInt8) -> Int? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte &- UInt8(ascii: "0"))
    case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte &- UInt8(ascii: "a") &+ 10)
    case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte &- UInt8(ascii: "A") &+ 10)
    default: nil
    }
}

/// Splits `h.h[.h]` (or `h/h` with `separator` "/") into up to three numbers, part `i` having
/// 1...`maxDigits.i` hex digits; a zero limit means the part is absent. Nil for anything else.
@inline(__always)
func scanHexParts(
    _ bytes: UnsafeBufferPointer<UInt8>, separator: UInt8, maxDigits: (Int, Int, Int)
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
        guard let nibble = hexNibble(byte) else { return nil }
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

/// A hex number with an optional `0x`/`0X` prefix and 1...8 digits (`0x1a`, `1a`, `01c0`).
func scanHexNumber(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
    var digits = bytes[...]
    if digits.count > 2, digits[digits.startIndex] == UInt8(ascii: "0"),
        digits[digits.startIndex + 1] | 0x20 == UInt8(ascii: "x")
    {
        digits = digits.dropFirst(2)
    }
    guard (1...8).contains(digits.count) else { return nil }
    var value = 0
    for byte in digits {
        guard let nibble = hexNibble(byte) else { return nil }
        value = value << 4 | nibble
    }
    return value
}

/// Appends `value` in lowercase hex, zero-padded to `width` digits (no prefix).
@inline(__always)
func appendHex(_ value: Int, width: Int, to out: inout [UInt8]) {
    precondition(value >= 0)
    var digits = 1
    while digits < 16, value >> (4 * digits) != 0 { digits += 1 }
    if digits < width {
        for _ in digits..<width { out.append(UInt8(ascii: "0")) }
    }
    var shift = 4 * (digits - 1)
    while shift >= 0 {
        let nibble = UInt8(truncatingIfNeeded: (value >> shift) & 0xf)
        out.append(nibble < 10 ? UInt8(ascii: "0") &+ nibble : UInt8(ascii: "a") &+ nibble &- 10)
        shift -= 4
    }
}

extension Array where Element == UInt8 {
    @inline(__always)
    mutating func append(_ text: StaticString) {
        append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func appendDecimal(_ value: Int) {
        append(contentsOf: String(value).utf8)
    }
}
