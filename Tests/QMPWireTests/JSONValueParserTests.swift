// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import JSONValues
import NIOCore
import Testing

@testable import QMPWire

/// Scans and parses one value the way a session does.
private func parse(_ text: String) -> Result<JSON, WireError> {
    let input = Array(text.utf8)
    guard case .value(let bytes, let careful)? = JSONScanner.split(input).first else {
        return .failure(WireError("no value"))
    }
    return bytes.withUnsafeReadableBytes { JSONValueParser.parse($0, careful: careful) }
}

private func errorText(_ text: String) -> String? {
    if case .failure(let error) = parse(text) { return error.description }
    return nil
}

private func value(_ text: String) -> JSON? {
    if case .success(let json) = parse(text) { return json }
    return nil
}

@Suite("JSON values with QEMU's grammar")
struct JSONValueParserTests {
    @Test(
        "syntax errors have QEMU's texts",
        arguments: [
            ("[}", "JSON parse error, expecting value"),
            (#"{"a" 1}"#, "JSON parse error, missing : in object pair"),
            (#"{"a":1 "b":2}"#, "JSON parse error, expected separator in dict"),
            ("[1 2]", "JSON parse error, expected separator in list"),
            ("{1:2}", "JSON parse error, key is not a string in object"),
            (#"{"a":}"#, "JSON parse error, expecting value"),
            (#"{"a":1,"a":2}"#, "JSON parse error, duplicate key"),
            ("[nul]", "JSON parse error, invalid keyword 'nul'"),
            ("}", "JSON parse error, expecting value"),
            (#"["\x"]"#, "JSON parse error, invalid escape sequence in string"),
            (#"["\ud800"]"#, "JSON parse error, \\ud800 is not a valid Unicode character"),
            (#"["\udc00"]"#, "JSON parse error, \\udc00 is not a valid Unicode character"),
            (#"["\ud800\u0041"]"#, "JSON parse error, \\ud800 is not a valid Unicode character"),
            (#"["\uFFFE"]"#, "JSON parse error, \\uFFFE is not a valid Unicode character"),
            (#"["\u12"]"#, "JSON parse error, \\u12\" is not a valid Unicode character"),
        ])
    func syntaxErrors(input: String, expected: String) {
        #expect(errorText(input) == expected)
    }

    @Test("invalid UTF-8 inside a string")
    func invalidUTF8() {
        let input: [UInt8] = Array("[\"a".utf8) + [0xC3, 0x28] + Array("\"]".utf8)
        let ranges = JSONScanner.split(input)
        guard case .value(let bytes, let careful)? = ranges.first else {
            Issue.record("no value")
            return
        }
        #expect(careful)
        let result = bytes.withUnsafeReadableBytes {
            JSONValueParser.parse($0, careful: careful)
        }
        guard case .failure(let error) = result else {
            Issue.record("accepted invalid UTF-8")
            return
        }
        #expect(error.description == "JSON parse error, invalid UTF-8 sequence in string")
    }

    @Test("QEMU's extensions: single quotes and \\' escapes")
    func singleQuotes() {
        let json = value(#"{'execute': 'query-version', "id": 'it\'s "quoted"'}"#)
        #expect(json?["execute"]?.stringValue == "query-version")
        #expect(json?["id"]?.stringValue == #"it's "quoted""#)
    }

    @Test("escapes, surrogate pairs and NUL decode as QEMU does")
    func escapes() {
        #expect(value(#"["\u00e9\ud83d\ude00\n\/"]"#)?[0]?.stringValue == "é😀\n/")
        #expect(value(#"["a\u0000b"]"#)?[0]?.stringValue == "a\u{0}b")
        #expect(value("[\"é\"]")?[0]?.stringValue == "é")
    }

    @Test("numbers: int64, beyond int64, floats")
    func numbers() {
        #expect(value("[9223372036854775807]")?[0]?.intValue == Int.max)
        #expect(value("[-9223372036854775808]")?[0]?.intValue == Int.min)
        #expect(value("[18446744073709551615]")?[0]?.doubleValue == 18446744073709551615.0)
        #expect(value("[-9223372036854775809]")?[0]?.doubleValue == -9223372036854775809.0)
        #expect(value("[1.5e3]")?[0]?.doubleValue == 1500)
        #expect(value("[-0]")?[0]?.intValue == 0)
    }

    @Test("keywords and scalars at top level")
    func scalars() {
        #expect(value("true ")?.boolValue == true)
        #expect(value("null ")?.kind == .null)
        #expect(value(#""x""#)?.stringValue == "x")
    }
}

@Suite("Reply encoding")
struct ReplyEncoderTests {
    @Test("replies, errors and events: one CRLF line, QEMU's separators, ASCII")
    func lines() {
        var out = ByteBufferAllocatorForTests.buffer()
        let id = JSON.string("é")
        ReplyEncoder.writeReturn(
            .object([("a", .integer(1)), ("b", .array([.bool(true), .null]))]), id: QMPReplyID(id), to: &out)
        ReplyEncoder.writeError(class: "GenericError", desc: "bad \"x\"", id: .none, to: &out)
        ReplyEncoder.writeEvent(
            "SHUTDOWN", data: .object([("guest", .bool(false))]), seconds: 5, microseconds: 7, to: &out)
        let text = out.readString(length: out.readableBytes)!
        #expect(
            text == """
                {"return": {"a": 1, "b": [true, null]}, "id": "\\u00E9"}\r
                {"error": {"class": "GenericError", "desc": "bad \\"x\\""}}\r
                {"timestamp": {"seconds": 5, "microseconds": 7}, "event": "SHUTDOWN", "data": {"guest": false}}\r

                """)
    }

    @Test("large values are written whole")
    func largeValue() {
        var out = ByteBufferAllocatorForTests.buffer()
        let big = JSON.array((0..<50_000).map { .integer($0) })
        ReplyEncoder.writeReturn(big, id: .none, to: &out)
        let text = out.readString(length: out.readableBytes)!
        #expect(text.hasSuffix("49999]}\r\n"))
        // "\r\n" is a single Character.
        #expect(JSON.parse(String(text.dropLast(1)))?["return"]?.count == 50_000)
    }
}

enum ByteBufferAllocatorForTests {
    static func buffer() -> ByteBuffer { ByteBufferAllocator().buffer(capacity: 16) }
}
