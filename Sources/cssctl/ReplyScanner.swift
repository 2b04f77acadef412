// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// What the benchmark needs from a reply line, found without building a JSON tree.
///
/// Walks the line once, tracking depth and strings, and looks only at top-level keys, so a
/// `"id"` inside the returned value cannot be mistaken for the reply's id and the order of the
/// members does not matter (cssd puts `id` last, QEMU puts it first on errors).
struct ReplySummary {
    enum Kind { case success, error, event, other }
    var kind = Kind.other
    /// The reply's `id` when it is an integer (the benchmark only sends integer ids).
    var id: Int?
    var hasID = false

    init(scanning line: UnsafeRawBufferPointer) {
        let bytes = line.bindMemory(to: UInt8.self)
        let n = bytes.count
        var depth = 0
        var inString = false
        var escaped = false
        var expectingKey = false
        var inKey = false
        var keyStart = 0
        var keyEnd = 0
        var i = 0
        while i < n {
            let c = bytes[i]
            if inString {
                if escaped {
                    escaped = false
                } else if c == UInt8(ascii: "\\") {
                    escaped = true
                } else if c == UInt8(ascii: "\"") {
                    inString = false
                    if inKey {
                        inKey = false
                        keyEnd = i
                    }
                }
                i += 1
                continue
            }
            switch c {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                expectingKey = depth == 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
            case UInt8(ascii: ","):
                if depth == 1 { expectingKey = true }
            case UInt8(ascii: "\""):
                inString = true
                if depth == 1 && expectingKey {
                    inKey = true
                    expectingKey = false
                    keyStart = i + 1
                }
            case UInt8(ascii: ":") where depth == 1:
                let key = UnsafeBufferPointer(rebasing: bytes[keyStart..<keyEnd])
                if Self.equals(key, "id") {
                    hasID = true
                    id = Self.integer(in: bytes, from: i + 1)
                } else if Self.equals(key, "return") {
                    kind = .success
                } else if Self.equals(key, "error") {
                    kind = .error
                } else if Self.equals(key, "event") {
                    kind = .event
                }
            default:
                break
            }
            i += 1
        }
    }

    @inline(__always)
    private static func equals(_ bytes: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
        guard bytes.count == literal.utf8CodeUnitCount else { return false }
        let other = literal.utf8Start
        for index in 0..<bytes.count where bytes[index] != other[index] { return false }
        return true
    }

    /// A JSON integer starting at `start` (after optional spaces), if the value is exactly that.
    private static func integer(in bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        var i = start
        while i < bytes.count && (bytes[i] == UInt8(ascii: " ") || bytes[i] == UInt8(ascii: "\t")) { i += 1 }
        var negative = false
        if i < bytes.count && bytes[i] == UInt8(ascii: "-") {
            negative = true
            i += 1
        }
        var value = 0
        var digits = 0
        while i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9"), digits < 18 {
            value = value * 10 + Int(bytes[i] - UInt8(ascii: "0"))
            digits += 1
            i += 1
        }
        guard digits > 0 else { return nil }
        // Anything but a delimiter after the digits means a real, a longer number, or garbage.
        if i < bytes.count {
            let c = bytes[i]
            guard c == UInt8(ascii: ",") || c == UInt8(ascii: "}") || c == UInt8(ascii: " ") else { return nil }
        }
        return negative ? -value : value
    }
}
