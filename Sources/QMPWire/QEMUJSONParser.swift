// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import JSONValues

#if canImport(Glibc)
import Glibc
#endif

/// A recursive-descent parser with QEMU 7.2's grammar, extensions and error texts
/// (qobject/json-parser.c), producing jansson values.
///
/// jansson parses the common case. This parser takes over where the two disagree: QEMU's
/// single-quoted strings and `\'`, integers beyond 64 bits, `\u0000`, noncharacters and
/// surrogates, and for every invalid value, to report exactly what QEMU reports. It only
/// ever sees a complete value cut out by `JSONScanner`, so it has no lexical errors to find
/// and nests at most `WireLimits.maxNesting` deep.
struct QEMUJSONParser {
    private struct Token {
        var type: UInt8
        var range: Range<Int>
    }

    private let bytes: UnsafeRawBufferPointer
    private var tokens: [Token] = []
    private var next = 0
    private var error: WireError?

    /// Parses one value cut out by the scanner.
    static func parse(_ bytes: UnsafeRawBufferPointer) -> Result<JSON, WireError> {
        var parser = QEMUJSONParser(bytes: bytes)
        parser.tokenize()
        let value = parser.parseValue()
        if let error = parser.error { return .failure(error) }
        guard let value else { return .failure(.syntax("expecting value")) }
        return .success(value)
    }

    private init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    private mutating func tokenize() {
        var state = Lex.start
        var start = 0
        var i = 0
        let table = Lex.table
        while i <= bytes.count {
            // A value ends with a complete token; feed a space to flush a trailing number.
            let byte = i < bytes.count ? bytes[i] : UInt8(ascii: " ")
            if state == Lex.start { start = i }
            let cell = table[Int(state) << 8 | Int(byte)]
            let next = cell & ~Lex.lookahead
            if next >= Lex.firstToken {
                let end = cell & Lex.lookahead == 0 ? i + 1 : i
                tokens.append(Token(type: next, range: start..<end))
                state = Lex.start
                i = end
            } else {
                // The scanner saw no lexical error in this range, so `next` is a state.
                state = next == Lex.error ? Lex.start : next
                i += 1
            }
        }
    }

    // MARK: Grammar (json-parser.c); the first error wins, as in QEMU.

    private mutating func fail(_ message: String) {
        if error == nil { error = .syntax(message) }
    }

    private func peek() -> Token? { next < tokens.count ? tokens[next] : nil }

    private mutating func pop() -> Token? {
        guard next < tokens.count else { return nil }
        defer { next += 1 }
        return tokens[next]
    }

    private mutating func parseValue() -> JSON? {
        guard let token = peek() else {
            fail("premature EOI")
            return nil
        }
        switch token.type {
        case Lex.lCurly: return parseObject()
        case Lex.lSquare: return parseArray()
        case Lex.integer, Lex.float, Lex.string: return parseLiteral()
        case Lex.keywordToken: return parseKeyword()
        default:
            fail("expecting value")
            return nil
        }
    }

    private mutating func parseObject() -> JSON? {
        _ = pop()  // {
        let object = JSON.emptyObject()
        guard let peeked = peek() else {
            fail("premature EOI")
            return nil
        }
        if peeked.type == Lex.rCurly {
            _ = pop()
            return object
        }
        guard parsePair(into: object) else { return nil }
        guard var token = pop() else {
            fail("premature EOI")
            return nil
        }
        while token.type != Lex.rCurly {
            guard token.type == Lex.comma else {
                fail("expected separator in dict")
                return nil
            }
            guard parsePair(into: object) else { return nil }
            guard let following = pop() else {
                fail("premature EOI")
                return nil
            }
            token = following
        }
        return object
    }

    private mutating func parsePair(into object: JSON) -> Bool {
        guard peek() != nil else {
            fail("premature EOI")
            return false
        }
        let key = parseValue()
        guard let key, key.isString else {
            fail("key is not a string in object")
            return false
        }
        guard let colon = pop() else {
            fail("premature EOI")
            return false
        }
        guard colon.type == Lex.colon else {
            fail("missing : in object pair")
            return false
        }
        guard let value = parseValue() else {
            fail("Missing value in dict")
            return false
        }
        guard object.addMember(key: key, value: value) else {
            fail("duplicate key")
            return false
        }
        return true
    }

    private mutating func parseArray() -> JSON? {
        _ = pop()  // [
        let array = JSON.array()
        guard let peeked = peek() else {
            fail("premature EOI")
            return nil
        }
        if peeked.type == Lex.rSquare {
            _ = pop()
            return array
        }
        guard let first = parseValue() else {
            fail("expecting value")
            return nil
        }
        array.append(first)
        guard var token = pop() else {
            fail("premature EOI")
            return nil
        }
        while token.type != Lex.rSquare {
            guard token.type == Lex.comma else {
                fail("expected separator in list")
                return nil
            }
            guard let element = parseValue() else {
                fail("expecting value")
                return nil
            }
            array.append(element)
            guard let following = pop() else {
                fail("premature EOI")
                return nil
            }
            token = following
        }
        return array
    }

    private mutating func parseKeyword() -> JSON? {
        let token = pop()!
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[token.range]), as: UTF8.self)
        switch text {
        case "true": return .bool(true)
        case "false": return .bool(false)
        case "null": return .null
        default:
            fail("invalid keyword '\(text)'")
            return nil
        }
    }

    private mutating func parseLiteral() -> JSON? {
        let token = pop()!
        let text = UnsafeRawBufferPointer(rebasing: bytes[token.range])
        switch token.type {
        case Lex.string:
            return parseString(text)
        case Lex.integer:
            let digits = String(decoding: text, as: UTF8.self)
            if let value = Int64(digits) { return JSON.integer(Int(value)) }
            // Beyond int64: QEMU keeps uint64 exactly; jansson holds only int64, so the
            // value travels as a real (exact up to 2^53, like QEMU's own qnum_get_double).
            if let value = UInt64(digits) { return .real(Double(value)) }
            return .real(strtod(digits, nil))
        default:
            return .real(strtod(String(decoding: text, as: UTF8.self), nil))
        }
    }

    /// json-parser.c parse_string: escapes, `\u` with surrogate pairs, modified UTF-8.
    private mutating func parseString(_ token: UnsafeRawBufferPointer) -> JSON? {
        let quote = token[0]
        var out: [UInt8] = []
        out.reserveCapacity(token.count)
        var p = 1
        /// Text of an escape for an error message: at most `length` bytes, never past the token.
        func escapeText(_ from: Int, _ length: Int) -> String {
            ModifiedUTF8.displayString(token[from..<min(from + length, token.count)])
        }
        func hex4(_ at: Int) -> Int {
            var cp = 0
            for k in 0..<4 {
                guard at + k < token.count, let digit = hexValue(token[at + k]) else { return -1 }
                cp = cp << 4 | digit
            }
            return cp
        }
        while p < token.count && token[p] != quote {
            let byte = token[p]
            if byte == UInt8(ascii: "\\") {
                let begin = p
                p += 1
                let escape = token[p]
                p += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "\\"), UInt8(ascii: "/"):
                    out.append(escape)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var cp = hex4(p)
                    p += 4
                    if cp >= 0xD800 && cp <= 0xDBFF && p + 1 < token.count
                        && token[p] == UInt8(ascii: "\\") && token[p + 1] == UInt8(ascii: "u")
                    {
                        cp = 0x10000 + ((cp & 0x3FF) << 10)
                        let trailing = hex4(p + 2)
                        if trailing >= 0xDC00 && trailing <= 0xDFFF {
                            cp |= trailing & 0x3FF
                            p += 6
                        } else {
                            cp = -1
                        }
                    }
                    guard ModifiedUTF8.isValid(cp) else {
                        fail("\(escapeText(begin, p - begin)) is not a valid Unicode character")
                        return nil
                    }
                    ModifiedUTF8.append(cp, to: &out)
                default:
                    fail("invalid escape sequence in string")
                    return nil
                }
            } else {
                let window = token[p..<min(p + 6, token.count)]
                let (cp, end) = ModifiedUTF8.codepoint(window, at: p)
                guard cp >= 0 else {
                    fail("invalid UTF-8 sequence in string")
                    return nil
                }
                ModifiedUTF8.append(cp, to: &out)
                p = end
            }
        }
        return out.withUnsafeBufferPointer { JSON.string(checkedUTF8: $0) }
    }
}

@inline(__always) private func hexValue(_ byte: UInt8) -> Int? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte - UInt8(ascii: "0"))
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(byte - UInt8(ascii: "a")) + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(byte - UInt8(ascii: "A")) + 10
    default: return nil
    }
}

/// Turns a value cut out by `JSONScanner` into a jansson value, with QEMU's semantics.
package enum JSONValueParser {
    package static func parse(_ bytes: UnsafeRawBufferPointer, careful: Bool) -> Result<JSON, WireError> {
        if !careful, let value = JSON.parse(bytes: bytes) {
            return .success(value)
        }
        return QEMUJSONParser.parse(bytes)
    }
}
