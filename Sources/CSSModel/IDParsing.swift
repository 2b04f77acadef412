// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// A string that is not a valid id in Linux notation. The description names the argument, the
/// text, and the accepted form, because it becomes a QMP GenericError text verbatim.
public struct IDParseError: CSSModelError, Equatable {
    /// What was being parsed, as the caller named it ("subchannel", "devno", "chpid").
    public let argument: String
    /// The text as given.
    public let text: String
    /// Why it was refused: the expected form, or which part is out of range.
    public let reason: String

    public init(argument: String, text: String, reason: String) {
        self.argument = argument
        self.text = text
        self.reason = reason
    }

    public var description: String { "\(argument) '\(text)': \(reason)" }
}

/// Splits dotted hex notation (`0.0.0042`, `0.4a`) into numbers. Each part is 1...`maxDigits[i]`
/// hex digits, either case. Returns nil for anything else so callers can phrase the error.
func parseDottedHex(_ text: String, maxDigits: [Int]) -> [Int]? {
    var parts: [Int] = []
    parts.reserveCapacity(maxDigits.count)
    var value = 0
    var digits = 0
    for byte in text.utf8 {
        if byte == UInt8(ascii: ".") {
            guard digits > 0, parts.count < maxDigits.count - 1 else { return nil }
            parts.append(value)
            value = 0
            digits = 0
            continue
        }
        guard let nibble = hexValue(byte) else { return nil }
        digits += 1
        guard digits <= maxDigits[parts.count] else { return nil }
        value = value << 4 | nibble
    }
    guard digits > 0, parts.count == maxDigits.count - 1 else { return nil }
    parts.append(value)
    return parts
}

@inline(__always)
func hexValue(_ byte: UInt8) -> Int? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
    case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a") + 10)
    case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A") + 10)
    default: nil
    }
}

/// Lowercase hex, zero-padded to `width` digits (Linux prints `%04x`, `%02x`, `%x`).
func hex<T: BinaryInteger>(_ value: T, width: Int = 1) -> String {
    let digits = String(value, radix: 16)
    return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
}

/// Parses the three-part form shared by subchannel ids and device numbers.
func parseThreePart(_ text: String, argument: String, last: String) throws(IDParseError) -> (UInt8, UInt8, UInt16) {
    let form = "expected cssid.ssid.\(last) in hex, like 0.0.0042"
    guard let parts = parseDottedHex(text, maxDigits: [2, 1, 4]) else {
        throw IDParseError(argument: argument, text: text, reason: form)
    }
    guard parts[1] <= 3 else {
        throw IDParseError(argument: argument, text: text, reason: "ssid \(hex(parts[1])) is out of range (0..3)")
    }
    return (UInt8(parts[0]), UInt8(parts[1]), UInt16(parts[2]))
}

/// Checks integer parts given separately (a topology built from numbers rather than strings).
func checkRange(_ value: Int, _ max: Int, _ name: String, argument: String, text: String) throws(IDParseError) {
    guard (0...max).contains(value) else {
        throw IDParseError(
            argument: argument, text: text, reason: "\(name) \(value) is out of range (0..0x\(hex(max)))")
    }
}
