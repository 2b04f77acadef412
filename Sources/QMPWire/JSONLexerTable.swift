// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// The lexer's deterministic automaton: `table[state << 8 | byte]` gives the next state, or a
/// completed token type, possibly flagged `lookahead` (the byte belongs to the next token).
///
/// The automaton accepts exactly what QEMU 7.2's QMP lexer accepts (RFC 8259 tokens plus
/// single-quoted strings and `\'`), and recovers from errors the same way: after a bad byte it
/// skips input up to a structural character, a control character or 0xFE/0xFF. Matching it
/// byte for byte is what makes our error replies and resynchronisation identical to QEMU's.
enum Lex {
    // Lexer states.
    static let error: UInt8 = 0  // also the "error token"; every unset cell
    static let recovery: UInt8 = 1
    static let dqEscape: UInt8 = 2
    static let dqString: UInt8 = 3
    static let sqEscape: UInt8 = 4
    static let sqString: UInt8 = 5
    static let zero: UInt8 = 6
    static let expDigits: UInt8 = 7
    static let expSign: UInt8 = 8
    static let expE: UInt8 = 9
    static let mantissa: UInt8 = 10
    static let mantissaDigits: UInt8 = 11
    static let digits: UInt8 = 12
    static let sign: UInt8 = 13
    static let keyword: UInt8 = 14
    static let start: UInt8 = 15

    // Completed tokens (values >= firstToken).
    static let firstToken: UInt8 = 16
    static let lCurly: UInt8 = 16
    static let rCurly: UInt8 = 17
    static let lSquare: UInt8 = 18
    static let rSquare: UInt8 = 19
    static let colon: UInt8 = 20
    static let comma: UInt8 = 21
    static let integer: UInt8 = 22
    static let float: UInt8 = 23
    static let keywordToken: UInt8 = 24
    static let string: UInt8 = 25

    /// Set on a transition that does not consume its byte.
    static let lookahead: UInt8 = 0x80

    static let table: [UInt8] = {
        var t = [UInt8](repeating: error, count: 16 * 256)
        func set(_ state: UInt8, _ bytes: ClosedRange<UInt8>, _ next: UInt8) {
            for b in bytes { t[Int(state) << 8 | Int(b)] = next }
        }
        func set(_ state: UInt8, _ chars: String, _ next: UInt8) {
            for b in chars.utf8 { t[Int(state) << 8 | Int(b)] = next }
        }
        /// A token that ends at any ASCII byte not otherwise listed, without consuming it.
        func terminal(_ state: UInt8, _ token: UInt8) { set(state, 0x00...0x7F, token | lookahead) }
        let digit: ClosedRange<UInt8> = 0x30...0x39

        set(recovery, 0x00...0x1F, start | lookahead)
        set(recovery, 0x20...0xFD, recovery)
        set(recovery, 0xFE...0xFF, start | lookahead)
        set(recovery, "\t", recovery)
        set(recovery, "[]{}:,", start | lookahead)

        set(dqEscape, 0x20...0xFD, dqString)
        set(dqString, 0x20...0xFD, dqString)
        set(dqString, "\\", dqEscape)
        set(dqString, "\"", string)
        set(sqEscape, 0x20...0xFD, sqString)
        set(sqString, 0x20...0xFD, sqString)
        set(sqString, "\\", sqEscape)
        set(sqString, "'", string)

        terminal(zero, integer)
        set(zero, digit, error)
        set(zero, ".", mantissa)
        terminal(expDigits, float)
        set(expDigits, digit, expDigits)
        set(expSign, digit, expDigits)
        set(expE, "+-", expSign)
        set(expE, digit, expDigits)
        terminal(mantissaDigits, float)
        set(mantissaDigits, digit, mantissaDigits)
        set(mantissaDigits, "eE", expE)
        set(mantissa, digit, mantissaDigits)
        terminal(digits, integer)
        set(digits, digit, digits)
        set(digits, "eE", expE)
        set(digits, ".", mantissa)
        set(sign, "0", zero)
        set(sign, 0x31...0x39, digits)
        terminal(keyword, keywordToken)
        set(keyword, 0x61...0x7A, keyword)

        set(start, "\"", dqString)
        set(start, "'", sqString)
        set(start, "0", zero)
        set(start, 0x31...0x39, digits)
        set(start, "-", sign)
        set(start, "{", lCurly)
        set(start, "}", rCurly)
        set(start, "[", lSquare)
        set(start, "]", rSquare)
        set(start, ",", comma)
        set(start, ":", colon)
        set(start, 0x61...0x7A, keyword)
        set(start, " \t\r\n", start)
        return t
    }()
}
