// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// A place in a scenario file: 1-based line and column (the column counts UTF-8 bytes, as
/// jansson's error positions do).
package struct ScenarioPosition: Hashable, Sendable, CustomStringConvertible {
    package let line: Int
    package let column: Int

    package init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    package var description: String { "\(line):\(column)" }
}

/// A JSON value together with where it starts in the file.
///
/// Why not jansson (JSONValues): its tree keeps no positions, and every refusal of a scenario
/// must name the line and column of the offending step or value (issue 26), not only syntax
/// errors. The reader accepts exactly RFC 8259 JSON (no comments, no trailing commas, no
/// duplicate keys, no NaN), nests at most `ScenarioJSON.maximumDepth` deep, and costs O(n) in
/// the length of the text.
package struct ScenarioJSON: Sendable {
    package enum Value: Sendable {
        case object([Member])
        case array([ScenarioJSON])
        case string(String)
        /// An integer that fits in 64 bits.
        case integer(Int)
        /// Any other number (a fraction, an exponent, or too large for an integer).
        case real(Double)
        case bool(Bool)
        case null
    }

    /// One member of an object, in file order.
    package struct Member: Sendable {
        package let key: String
        package let keyPosition: ScenarioPosition
        package let value: ScenarioJSON
    }

    package let value: Value
    package let position: ScenarioPosition

    /// How deep arrays and objects may nest: a scenario needs 5; the limit keeps a hostile file
    /// from exhausting the stack.
    package static let maximumDepth = 32

    /// Parses `text` as one JSON document.
    /// - Throws: `ScenarioError` at the line and column of the first syntax problem.
    package static func parse(_ text: String) throws(ScenarioError) -> ScenarioJSON {
        var reader = Reader(bytes: Array(text.utf8))
        reader.skipWhitespace()
        let value = try reader.value(depth: 0)
        reader.skipWhitespace()
        guard reader.index == reader.bytes.count else {
            throw ScenarioError(reader.position, "unexpected text after the scenario's closing brace")
        }
        return value
    }

    /// A short name of the value's kind for error texts ("an object", "a string").
    package var kindName: String {
        switch value {
        case .object: "an object"
        case .array: "an array"
        case .string: "a string"
        case .integer, .real: "a number"
        case .bool: "a boolean"
        case .null: "null"
        }
    }
}

private struct Reader {
    let bytes: [UInt8]
    var index = 0
    var line = 1
    var lineStart = 0

    var position: ScenarioPosition { ScenarioPosition(line: line, column: index - lineStart + 1) }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"): index += 1
            case UInt8(ascii: "\n"):
                index += 1
                line += 1
                lineStart = index
            default: return
            }
        }
    }

    mutating func value(depth: Int) throws(ScenarioError) -> ScenarioJSON {
        let start = position
        guard index < bytes.count else { throw ScenarioError(start, "the text ends where a value was expected") }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            guard depth < ScenarioJSON.maximumDepth else {
                throw ScenarioError(start, "nested more than \(ScenarioJSON.maximumDepth) deep")
            }
            return ScenarioJSON(value: .object(try object(depth: depth)), position: start)
        case UInt8(ascii: "["):
            guard depth < ScenarioJSON.maximumDepth else {
                throw ScenarioError(start, "nested more than \(ScenarioJSON.maximumDepth) deep")
            }
            return ScenarioJSON(value: .array(try array(depth: depth)), position: start)
        case UInt8(ascii: "\""): return ScenarioJSON(value: .string(try string()), position: start)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return ScenarioJSON(value: try number(), position: start)
        default:
            for (word, value) in [("true", ScenarioJSON.Value.bool(true)), ("false", .bool(false)), ("null", .null)]
            where bytes[index...].starts(with: word.utf8) {
                index += word.utf8.count
                return ScenarioJSON(value: value, position: start)
            }
            throw ScenarioError(start, "not JSON: expected a value")
        }
    }

    mutating func object(depth: Int) throws(ScenarioError) -> [ScenarioJSON.Member] {
        index += 1
        var members: [ScenarioJSON.Member] = []
        var seen: Set<String> = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return members
        }
        while true {
            skipWhitespace()
            let keyPosition = position
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw ScenarioError(keyPosition, "not JSON: expected a member name in double quotes")
            }
            let key = try string()
            guard seen.insert(key).inserted else { throw ScenarioError(keyPosition, "'\(key)' is given twice") }
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                throw ScenarioError(position, "not JSON: expected ':' after '\(key)'")
            }
            index += 1
            skipWhitespace()
            members.append(.init(key: key, keyPosition: keyPosition, value: try value(depth: depth + 1)))
            if try closes(with: "}", inside: "an object") { return members }
        }
    }

    mutating func array(depth: Int) throws(ScenarioError) -> [ScenarioJSON] {
        index += 1
        var elements: [ScenarioJSON] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return elements
        }
        while true {
            skipWhitespace()
            elements.append(try value(depth: depth + 1))
            if try closes(with: "]", inside: "an array") { return elements }
        }
    }

    /// After a member or an element: consumes the ',' that continues the container (false) or
    /// the `closing` bracket that ends it (true).
    /// - Throws: at the end of the text, or at anything else, naming what was expected.
    private mutating func closes(with closing: Unicode.Scalar, inside container: String) throws(ScenarioError)
        -> Bool
    {
        skipWhitespace()
        guard index < bytes.count else { throw ScenarioError(position, "the text ends inside \(container)") }
        let byte = bytes[index]
        guard byte == UInt8(ascii: ",") || byte == UInt8(ascii: closing) else {
            throw ScenarioError(position, "not JSON: expected ',' or '\(closing)'")
        }
        index += 1
        return byte == UInt8(ascii: closing)
    }

    mutating func string() throws(ScenarioError) -> String {
        let start = position
        index += 1
        var scalars = String.UnicodeScalarView()
        var run = index
        func flush(_ end: Int) {
            scalars.append(contentsOf: String(decoding: bytes[run..<end], as: UTF8.self).unicodeScalars)
        }
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                flush(index)
                index += 1
                return String(scalars)
            }
            if byte < 0x20 { throw ScenarioError(position, "a control character inside a string (escape it)") }
            if byte == UInt8(ascii: "\\") {
                flush(index)
                index += 1
                guard index < bytes.count else { break }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): scalars.append("\"")
                case UInt8(ascii: "\\"): scalars.append("\\")
                case UInt8(ascii: "/"): scalars.append("/")
                case UInt8(ascii: "b"): scalars.append("\u{8}")
                case UInt8(ascii: "f"): scalars.append("\u{c}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800..<0xDC00).contains(code), bytes[index...].starts(with: "\\u".utf8) {
                        index += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else {
                            throw ScenarioError(position, "an unpaired UTF-16 surrogate in a \\u escape")
                        }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(code) else {
                        throw ScenarioError(position, "an unpaired UTF-16 surrogate in a \\u escape")
                    }
                    scalars.append(scalar)
                default: throw ScenarioError(position, "not JSON: an unknown escape in a string")
                }
                run = index
                continue
            }
            index += 1
        }
        throw ScenarioError(start, "the text ends inside a string")
    }

    mutating func hex4() throws(ScenarioError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw ScenarioError(position, "not JSON: a short \\u escape") }
        var code: UInt32 = 0
        for byte in bytes[index..<index + 4] {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw ScenarioError(position, "not JSON: a \\u escape needs four hex digits")
            }
            code = code << 4 | UInt32(digit)
        }
        index += 4
        return code
    }

    mutating func number() throws(ScenarioError) -> ScenarioJSON.Value {
        let start = index
        let startPosition = position
        func digits() -> Int {
            let from = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            return index - from
        }
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        let intStart = index
        guard digits() > 0 else { throw ScenarioError(startPosition, "not JSON: a number needs digits") }
        if bytes[intStart] == UInt8(ascii: "0"), index - intStart > 1 {
            throw ScenarioError(startPosition, "not JSON: a number with a leading zero")
        }
        var integral = true
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            integral = false
            index += 1
            guard digits() > 0 else { throw ScenarioError(startPosition, "not JSON: a fraction needs digits") }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            integral = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                index += 1
            }
            guard digits() > 0 else { throw ScenarioError(startPosition, "not JSON: an exponent needs digits") }
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        if integral, let value = Int(text) { return .integer(value) }
        guard let value = Double(text), value.isFinite else {
            throw ScenarioError(startPosition, "the number \(text) is out of range")
        }
        return .real(value)
    }
}
