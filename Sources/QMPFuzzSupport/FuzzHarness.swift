// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import JSONValues
import NIOCore
import QMPCommands
import QMPServer
import QMPWire
import VFIOCCW

#if canImport(Glibc)
import Glibc
#endif

/// One fuzz input through framing + parsing + dispatch, with the invariants every output must
/// keep. Shared by the libFuzzer target (Sources/QMPFuzz) and the test suite, which replays the
/// seed corpus and every input that once failed.
///
/// Input format: the first byte selects the session (bit 0 read-only, bit 1 negotiate first,
/// bits 2-5 chunk size - 1, bit 7 whole input at once); the rest is the client's byte stream.
package enum FuzzHarness {
    /// Small limits, so that fuzzing reaches them.
    package static let fuzzLimits = WireLimits(maxValueSize: 4096, maxTokens: 512, maxNesting: 64)

    nonisolated(unsafe) static let fuzzServer: ServerState = {
        let host = try! Subsystem(topology: .embeddedDefault)
        return try! ServerState.standard(
            options: ServerOptions(conditions: [.allowQuit], limits: fuzzLimits), backend: ModelBackend(host),
            guests: try! Guests(topology: .embeddedDefault, host: host))
    }()

    /// The model every input starts from, so that inputs stay independent (libFuzzer
    /// assumes a deterministic target).
    nonisolated(unsafe) static let pristineSubsystem = fuzzServer.subsystem
    nonisolated(unsafe) static let model = fuzzServer.backend as! ModelBackend
    nonisolated(unsafe) static let pristineGuests = fuzzServer.guests

    /// Runs one input; traps (a crash libFuzzer reports) when an invariant breaks.
    package static func runOne(_ input: UnsafeRawBufferPointer) {
        guard let control = input.first else { return }
        model.subsystem = pristineSubsystem
        fuzzServer.guests = pristineGuests
        let session = QMPSession(server: fuzzServer, readOnly: control & 0x01 != 0)
        var output = ByteBuffer()
        try! session.writeGreeting(into: &output)  // a new session is negotiating
        if control & 0x02 != 0 {
            var negotiate = ByteBuffer(
                string: "{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[\"oob\"]}}")
            _ = session.receive(&negotiate, into: &output, budget: .max)
        }
        // Chunk sizes from the control byte: 1..16 bytes, or everything at once.
        let chunk = control & 0x80 != 0 ? input.count : Int((control >> 2) & 0x0F) + 1
        var offset = 1
        while offset < input.count {
            let end = min(offset + chunk, input.count)
            var piece = ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: input[offset..<end]))
            // A small budget exercises pausing and resuming between values.
            var progress = session.receive(&piece, into: &output, budget: 256)
            while progress == .outputFull {
                check(&output)
                progress = session.process(into: &output, budget: 256)
            }
            precondition(
                session.bufferedInputBytes <= fuzzLimits.maxBufferedValueBytes + chunk,
                "input buffer exceeds its bound: \(session.bufferedInputBytes)")
            offset = end
        }
        check(&output)
        // Subscriptions end with their connection; none may outlive it.
        session.close()
        precondition(fuzzServer.pathEvents.subscriptionCount == 0, "subscriptions outlived their connection")
    }

    /// Every line: CRLF-terminated, ASCII, one JSON object that is a greeting, reply or event.
    static func check(_ output: inout ByteBuffer) {
        let bytes = output.readableBytesView
        var lineStart = bytes.startIndex
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let byte = bytes[i]
            precondition(byte < 0x80, "non-ASCII output")
            if byte == UInt8(ascii: "\n") {
                precondition(i > lineStart && bytes[i - 1] == UInt8(ascii: "\r"), "line not CRLF-terminated")
                let line = Array(bytes[lineStart..<(i - 1)])
                // \u0000 is valid JSON (QEMU prints it for a modified-UTF-8 NUL too).
                let value = line.withUnsafeBytes { JSON.parse(bytes: $0) }
                precondition(value != nil, "unparseable output line: \(String(decoding: line, as: UTF8.self))")
                let json = value!
                precondition(json.isObject, "output is not an object")
                let kinds = ["QMP", "return", "error", "event"].filter { json[$0] != nil }
                precondition(kinds.count == 1, "output line is not exactly one message kind")
                if let error = json["error"] {
                    precondition(
                        error["class"]?.stringValue != nil && error["desc"]?.stringValue != nil,
                        "malformed error")
                }
                lineStart = i + 1
            }
            i += 1
        }
        // Keep an unterminated tail for the next check.
        output.moveReaderIndex(forwardBy: lineStart - bytes.startIndex)
    }
}
