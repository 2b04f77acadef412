// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import NIOCore
import NIOTestUtils
import Testing

@testable import QMPWire

/// What the scanner reports, with value ranges turned back into text.
private enum Found: Equatable, CustomStringConvertible {
    case value(String)
    case error(String)
    init(_ frame: JSONFrame) {
        switch frame {
        case .value(let bytes, _): self = .value(String(buffer: bytes))
        case .error(let error): self = .error(error.description)
        }
    }
    var description: String {
        switch self {
        case .value(let text): return "value(\(text))"
        case .error(let text): return "error(\(text))"
        }
    }
}

private func scanWhole(_ input: [UInt8], limits: WireLimits = WireLimits()) -> [Found] {
    JSONScanner.split(input, limits: limits).map(Found.init)
}

/// Feeds the input in pieces of `chunk` bytes into one buffer, as a session does; the scanner
/// consumes what it no longer needs.
private func scanChunked(_ input: [UInt8], chunk: Int, limits: WireLimits = WireLimits()) -> ([Found], Int) {
    var scanner = JSONScanner(limits: limits)
    var buffer = ByteBuffer()
    var found: [Found] = []
    var maxBuffered = 0
    var offset = 0
    while offset < input.count {
        buffer.writeBytes(input[offset..<min(offset + chunk, input.count)])
        offset += chunk
        maxBuffered = max(maxBuffered, buffer.readableBytes)
        while let frame = scanner.decode(buffer: &buffer) { found.append(Found(frame)) }
        if buffer.readerIndex > 4096 { buffer.discardReadBytes() }
    }
    return (found, maxBuffered)
}

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

@Suite("JSON stream framing")
struct JSONScannerTests {
    @Test("values without separators, with whitespace, and scalars")
    func splitsByStructure() {
        #expect(
            scanWhole(bytes(#"{"execute":"a"}{"execute":"b"}  [1, {"x": "}"}] "s" true "#)) == [
                .value(#"{"execute":"a"}"#), .value(#"{"execute":"b"}"#), .value(#"[1, {"x": "}"}]"#),
                .value(#""s""#), .value("true"),
            ])
    }

    @Test("braces inside strings and escaped quotes do not count")
    func stringsAreOpaque() {
        #expect(scanWhole(bytes(#"{"a":"}]\"{["}"#)) == [.value(#"{"a":"}]\"{["}"#)])
        #expect(scanWhole(bytes(#"{'a':'"}\''}"#)) == [.value(#"{'a':'"}\''}"#)])
    }

    @Test("a number at the end of input waits for the byte that ends it")
    func numbersNeedLookahead() {
        #expect(scanWhole(bytes("12")) == [])
        #expect(scanWhole(bytes("12 ")) == [.value("12")])
        #expect(scanWhole(bytes("[12]")) == [.value("[12]")])
    }

    @Test("a closing bracket too many is a value of its own, as in QEMU")
    func strayClosers() {
        #expect(scanWhole(bytes("[}")) == [.value("[}")])
        #expect(scanWhole(bytes("{}}]")) == [.value("{}"), .value("}"), .value("]")])
    }

    @Test("lexical errors carry the token so far and skip to a structural character")
    func lexicalErrorsRecover() {
        #expect(
            scanWhole(bytes(#"{"execute": 01}"#)) == [
                .error("JSON parse error, stray '01'"), .value("}"),
            ])
        // A keyword ends at the control byte, which is then an error of its own.
        #expect(
            scanWhole(bytes("abc\u{01}def {\"a\":1}")) == [
                .value("abc"), .error("JSON parse error, stray '\u{01}'"), .value(#"{"a":1}"#),
            ])
        #expect(scanWhole([0xFF] + bytes("{}")) == [.error("JSON parse error, stray '\u{FFFD}'"), .value("{}")])
        #expect(scanWhole(bytes("\"abc\n{}")) == [.error("JSON parse error, stray '\"abc\n'"), .value("{}")])
        // Text after a NUL is not shown (QEMU prints the token with %s).
        #expect(scanWhole(bytes("\"a\u{00}b\" {}")) == [.error("JSON parse error, stray '\"a'"), .value("{}")])
        #expect(scanWhole(bytes("True {}")) == [.error("JSON parse error, stray 'T'"), .value("{}")])
    }

    @Test("nesting beyond the limit is refused and the rest is read as new values")
    func nestingLimit() {
        let deep = String(repeating: "[", count: 1025) + String(repeating: "]", count: 2)
        let found = scanWhole(bytes(deep))
        #expect(found == [.error("JSON nesting depth limit exceeded"), .value("]"), .value("]")])
        let ok = String(repeating: "[", count: 1024) + String(repeating: "]", count: 1024)
        #expect(scanWhole(bytes(ok)) == [.value(ok)])
    }

    @Test("token size, token count and whitespace limits")
    func sizeLimits() {
        let limits = WireLimits(maxValueSize: 64, maxTokens: 10, maxNesting: 1024)
        // A single string token longer than the limit.
        let long = "\"" + String(repeating: "a", count: 100) + "\""
        #expect(scanWhole(bytes(long + " {}"), limits: limits).first == .error("JSON token size limit exceeded"))
        // The sum of token lengths.
        let wide = "[" + Array(repeating: "\"aaaaaaaaaa\"", count: 6).joined(separator: ",") + "]"
        #expect(scanWhole(bytes(wide), limits: limits).first == .error("JSON token size limit exceeded"))
        // Token count.
        let many = "[" + Array(repeating: "1", count: 8).joined(separator: ",") + "]"
        #expect(scanWhole(bytes(many), limits: limits).first == .error("JSON token count limit exceeded"))
        // Whitespace inside a value is bounded too.
        let spaced = "[" + String(repeating: " ", count: 200) + "]"
        #expect(scanWhole(bytes(spaced), limits: limits).first == .error("JSON token size limit exceeded"))
        // Whitespace between values is not.
        #expect(scanWhole(bytes(String(repeating: " ", count: 500) + "{}"), limits: limits) == [.value("{}")])
    }

    @Test("any split of the input gives the same result, and the buffer stays bounded")
    func chunkingInvariance() {
        let inputs = [
            #"{"execute":"query-version","id":1}{"execute": 01}[}{'a':'\''}"#,
            "\u{FF}\"abc\n{\"x\":[1,2,{\"y\":null}]}  17 -0.5e+3 true]]",
            String(repeating: "[", count: 1030) + String(repeating: "]", count: 10),
            #"{"a":"\u00e9\ud83d\ude00", "b": [true, false, null]}{"c"  :  1 }"#,
        ]
        for input in inputs {
            let whole = scanWhole(bytes(input))
            for chunk in [1, 2, 3, 7, 64] {
                let (found, maxBuffered) = scanChunked(bytes(input), chunk: chunk)
                #expect(found == whole, "chunk \(chunk) of \(input.prefix(40))")
                #expect(maxBuffered <= WireLimits().maxBufferedValueBytes + chunk)
            }
        }
    }

    @Test("scanning is linear: a large value fed byte by byte is scanned once")
    func linearTime() {
        // 200,000 elements fed in 1-byte pieces: quadratic rescanning would take minutes.
        let input = "[" + Array(repeating: "1", count: 200_000).joined(separator: ",") + "]"
        let (found, _) = scanChunked(bytes(input), chunk: 1)
        #expect(found.count == 1)
    }
}

@Suite("JSON stream framing under NIO's decoder verifier")
struct JSONScannerVerifierTests {
    private static func value(_ text: String, careful: Bool = false) -> JSONFrame {
        .value(ByteBuffer(string: text), careful: careful)
    }

    @Test("ByteToMessageDecoderVerifier: drip-fed, one buffer per message, all at once")
    func verifier() throws {
        let pairs: [(String, [JSONFrame])] = [
            (#"{"execute":"query-version","id":1}"#, [Self.value(#"{"execute":"query-version","id":1}"#)]),
            ("  [1, {\"a\": \"}\"}]\r\n", [Self.value("[1, {\"a\": \"}\"}]")]),
            (#"{'a':'\''}"#, [Self.value(#"{'a':'\''}"#, careful: true)]),
            (#"{"s":"\u00e9"}"#, [Self.value(#"{"s":"\u00e9"}"#, careful: true)]),
            ("{}}", [Self.value("{}"), Self.value("}")]),
            ("\u{01}", [.error(WireError("JSON parse error, stray '\u{01}'"))]),
            (#"{"execute": 01}"#, [.error(WireError("JSON parse error, stray '01'")), Self.value("}")]),
            ("[true, null] ", [Self.value("[true, null]")]),
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(stringInputOutputPairs: pairs) { JSONScanner() }
    }

    @Test("the end of input inside a value drops it and says how much, as QEMU's reset does")
    func incompleteAtEnd() throws {
        var scanner = JSONScanner()
        var buffer = ByteBuffer(string: #"{"execute":"a"} {"execute""#)
        #expect(scanner.decode(buffer: &buffer) == Self.value(#"{"execute":"a"}"#))
        #expect(scanner.decode(buffer: &buffer) == nil)
        #expect(throws: JSONScanner.IncompleteInput(byteCount: 10)) {
            _ = try scanner.decodeLast(buffer: &buffer, seenEOF: true)
        }
        #expect(buffer.readableBytes == 0)
        // A number needs the byte after it, which never comes: dropped too.
        var number = ByteBuffer(string: "12")
        var fresh = JSONScanner()
        #expect(throws: JSONScanner.IncompleteInput(byteCount: 2)) {
            _ = try fresh.decodeLast(buffer: &number, seenEOF: true)
        }
    }
}
