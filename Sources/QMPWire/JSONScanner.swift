// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import NIOCore

/// One unit of a client's byte stream, as `JSONScanner` cuts it.
package enum JSONFrame: Equatable, Sendable {
    /// A complete value's bytes (a slice of the input: no copy). `careful` means it holds
    /// escapes, non-ASCII bytes or single quotes, the cases where QEMU's parser and jansson's
    /// could disagree.
    case value(ByteBuffer, careful: Bool)
    /// Input that cannot become a value; the text is QEMU's, sent back as a GenericError.
    case error(WireError)
}

/// Splits a byte stream into complete JSON values by structure, incrementally and in linear
/// time, the way QEMU's QMP monitor does (qobject/json-lexer.c, then json-streamer.c's
/// brace/bracket counting): a `NIOSingleStepByteToMessageDecoder`, so that NIO's
/// `ByteToMessageHandler` or a session can drive it, and `ByteToMessageDecoderVerifier` checks it.
///
/// The decoder never copies input: a value is a slice of the buffer it was given. It remembers
/// where it stopped scanning (relative to the buffer's reader index, like NIO's
/// `LineBasedFrameDecoder`), so a value may arrive in any number of pieces, one byte at a time
/// included, and is scanned exactly once. It consumes (moves the reader index past) everything
/// it no longer needs: whitespace, skipped input, and each value it returns; what stays is at
/// most one pending value (`WireLimits.maxBufferedValueBytes`) or token.
///
/// Semantics copied from QEMU 7.2, because clients see them:
/// - a value ends when its brackets balance, or as soon as a count drops below zero (a stray
///   `]` is a value of its own, which the parser then rejects),
/// - a lexical error or an exceeded limit discards the pending value and resets the counts;
///   after a lexical error, input is skipped up to a structural or control character,
/// - whitespace and anything skipped in recovery belong to no value,
/// - at the end of input a pending value or unterminated token (`1`, `true` need a byte after
///   them) is dropped without a reply: `decodeLast` reports it as `IncompleteInput`.
package struct JSONScanner: NIOSingleStepByteToMessageDecoder, Sendable {
    package typealias InboundOut = JSONFrame

    /// What one step of scanning found, as offsets from the reader index.
    enum Event: Equatable {
        case value(Range<Int>, careful: Bool)
        case error(WireError)
    }

    /// The input ended inside a value or token; QEMU drops such bytes silently.
    package struct IncompleteInput: Error, Equatable {
        /// Bytes dropped.
        package let byteCount: Int
    }

    package let limits: WireLimits

    // Lexer. Offsets are relative to the buffer's reader index.
    private var state = Lex.start
    private var tokenStart = 0
    private var position = 0
    // Streamer: the value being collected.
    private var braces = 0
    private var brackets = 0
    private var tokenCount = 0
    private var tokenBytes = 0
    private var whitespaceBytes = 0
    private var valueStart = -1
    private var careful = false

    package init(limits: WireLimits = WireLimits()) {
        self.limits = limits
    }

    /// The next value or error of `buffer`, or nil when more input is needed.
    package mutating func decode(buffer: inout ByteBuffer) -> JSONFrame? {
        let event = buffer.withUnsafeReadableBytes { next(in: $0) }
        var frame: JSONFrame?
        switch event {
        case .value(let range, let careful)?:
            frame = .value(
                buffer.getSlice(at: buffer.readerIndex + range.lowerBound, length: range.count)!, careful: careful)
        case .error(let error)?:
            frame = .error(error)
        case nil:
            break
        }
        consume(&buffer)
        return frame
    }

    /// The values still complete at the end of input; then, if a value or token was pending,
    /// drops it and throws `IncompleteInput` (QEMU resets its parser on close and says nothing).
    package mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> JSONFrame? {
        if let frame = decode(buffer: &buffer) { return frame }
        let left = buffer.readableBytes
        guard left == 0 else {
            buffer.moveReaderIndex(forwardBy: left)
            self = JSONScanner(limits: limits)
            throw IncompleteInput(byteCount: left)
        }
        return nil
    }

    /// Drops the bytes the scanner no longer needs from `buffer` and shifts its offsets.
    private mutating func consume(_ buffer: inout ByteBuffer) {
        let count: Int
        if valueStart >= 0 {
            count = valueStart
        } else if state != Lex.start && state != Lex.recovery {
            count = tokenStart
        } else {
            count = position
        }
        guard count > 0 else { return }
        buffer.moveReaderIndex(forwardBy: count)
        position -= count
        tokenStart -= count
        if valueStart >= 0 { valueStart -= count }
    }

    /// Scans `bytes` (the readable bytes, of which the prefix up to the last call's position
    /// was seen before) up to the next value or error.
    /// - Returns: the event, or nil when all bytes are scanned and more input is needed.
    private mutating func next(in bytes: UnsafeRawBufferPointer) -> Event? {
        let end = bytes.count
        let table = Lex.table
        var i = position
        var state = self.state
        defer { self.state = state }
        return table.withUnsafeBufferPointer { table -> Event? in
            while i < end {
                let byte = bytes[i]
                if state == Lex.start { tokenStart = i }
                let cell = table[Int(state) << 8 | Int(byte)]
                let next = cell & ~Lex.lookahead
                if next >= Lex.firstToken {
                    let tokenEnd = cell & Lex.lookahead == 0 ? i + 1 : i
                    i = tokenEnd
                    state = Lex.start
                    position = i
                    if let event = token(next, tokenStart..<tokenEnd) { return event }
                } else if next == Lex.start {
                    // Whitespace, or recovery reaching a resynchronisation point.
                    if cell & Lex.lookahead == 0 {
                        i += 1
                        if valueStart >= 0 {
                            whitespaceBytes += 1
                            if whitespaceBytes > limits.maxValueSize {
                                state = Lex.start
                                position = i
                                reset()
                                return .error(.tokenSizeLimit)
                            }
                        }
                    }
                    state = Lex.start
                } else if next == Lex.error {
                    i += 1
                    state = Lex.recovery
                    position = i
                    let event = Event.error(.stray(UnsafeRawBufferPointer(rebasing: bytes[tokenStart..<i])))
                    reset()
                    return event
                } else {
                    // Inside a token (or skipping in recovery).
                    if state >= Lex.dqEscape && state <= Lex.sqString
                        && (byte >= 0x80 || byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "'"))
                    {
                        careful = true
                    } else if state == Lex.start && byte == UInt8(ascii: "'") {
                        careful = true
                    }
                    state = next
                    i += 1
                    if next != Lex.recovery && i - tokenStart > limits.maxValueSize {
                        // QEMU hands an overlong token to the streamer, which rejects it, and
                        // lexes what follows from the start state.
                        state = Lex.start
                        position = i
                        reset()
                        return .error(.tokenSizeLimit)
                    }
                }
            }
            position = i
            return nil
        }
    }

    /// The streamer: counts brackets, applies the limits, and ends values.
    private mutating func token(_ type: UInt8, _ range: Range<Int>) -> Event? {
        switch type {
        case Lex.lCurly: braces += 1
        case Lex.rCurly: braces -= 1
        case Lex.lSquare: brackets += 1
        case Lex.rSquare: brackets -= 1
        default: break
        }
        if tokenBytes + range.count + 1 > limits.maxValueSize {
            reset()
            return .error(.tokenSizeLimit)
        }
        if tokenCount + 1 > limits.maxTokens {
            reset()
            return .error(.tokenCountLimit)
        }
        if braces + brackets > limits.maxNesting {
            reset()
            return .error(.nestingLimit)
        }
        tokenBytes += range.count
        tokenCount += 1
        if valueStart < 0 { valueStart = range.lowerBound }
        if (braces > 0 || brackets > 0) && braces >= 0 && brackets >= 0 { return nil }
        let event = Event.value(valueStart..<range.upperBound, careful: careful)
        reset()
        return event
    }

    private mutating func reset() {
        braces = 0
        brackets = 0
        tokenCount = 0
        tokenBytes = 0
        whitespaceBytes = 0
        valueStart = -1
        careful = false
    }
}

extension JSONScanner {
    /// Splits a whole input at once; for tests and tools.
    package static func split(_ input: [UInt8], limits: WireLimits = WireLimits()) -> [JSONFrame] {
        var scanner = JSONScanner(limits: limits)
        var buffer = ByteBuffer(bytes: input)
        var frames: [JSONFrame] = []
        while let frame = scanner.decode(buffer: &buffer) { frames.append(frame) }
        return frames
    }
}
