// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// Splits a byte stream into complete JSON values by structure, incrementally and in linear
/// time, the way QEMU's QMP monitor does (its lexer, then brace/bracket counting).
///
/// The scanner never copies input. It works on the caller's buffer, reports values and errors as
/// byte ranges of that buffer, and remembers where it stopped, so a value may arrive in any
/// number of pieces (one byte at a time included) and is scanned exactly once. Between calls
/// the caller may drop the bytes before `retainedFrom` and must then call `rebase(by:)`.
///
/// Semantics copied from QEMU 7.2, because clients see them:
/// - a value ends when its brackets balance, or as soon as a count drops below zero (a stray
///   `]` is a value of its own, which the parser then rejects),
/// - a lexical error or an exceeded limit discards the pending value and resets the counts;
///   after a lexical error, input is skipped up to a structural or control character,
/// - whitespace and anything skipped in recovery belong to no value.
public struct JSONScanner: Sendable {
    /// What one step of scanning found.
    public enum Event: Equatable, Sendable {
        /// A complete value; `careful` means it holds escapes, non-ASCII bytes or single quotes,
        /// the cases where QEMU's parser and jansson's could disagree.
        case value(Range<Int>, careful: Bool)
        case error(WireError)
    }

    public let limits: WireLimits

    // Lexer.
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

    public init(limits: WireLimits = WireLimits()) {
        self.limits = limits
    }

    /// Offset of the first byte the scanner still needs; everything before it may be dropped.
    public var retainedFrom: Int {
        if valueStart >= 0 { return valueStart }
        if state != Lex.start && state != Lex.recovery { return tokenStart }
        return position
    }

    /// Whether part of a value (or of a token) is pending.
    public var isMidValue: Bool { valueStart >= 0 || (state != Lex.start && state != Lex.recovery) }

    /// Shifts all offsets after the caller dropped `count` leading bytes of its buffer.
    public mutating func rebase(by count: Int) {
        precondition(count <= retainedFrom)
        position -= count
        tokenStart -= count
        if valueStart >= 0 { valueStart -= count }
    }

    /// Scans `bytes` (the caller's whole buffer, of which the prefix up to the last call's
    /// position was seen before) up to the next value or error.
    /// - Returns: the event, or nil when all bytes are scanned and more input is needed.
    public mutating func next(in bytes: UnsafeRawBufferPointer) -> Event? {
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
    /// Splits a whole buffer at once; for tests and tools.
    public static func split(_ input: [UInt8], limits: WireLimits = WireLimits()) -> [Event] {
        var scanner = JSONScanner(limits: limits)
        var events: [Event] = []
        input.withUnsafeBytes { bytes in
            while let event = scanner.next(in: bytes) { events.append(event) }
        }
        return events
    }
}
