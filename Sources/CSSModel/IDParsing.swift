// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// A string that is not a valid id in Linux notation. The description names the argument, the
/// text, and the accepted form, because it becomes a QMP GenericError text verbatim.
package struct IDParseError: CSSModelError, Equatable {
    /// What was being parsed, as the caller named it ("subchannel", "devno", "chpid").
    package let argument: String
    /// The text as given.
    package let text: String
    /// Why it was refused: the expected form, or which part is out of range.
    package let reason: String

    package init(argument: String, text: String, reason: String) {
        self.argument = argument
        self.text = text
        self.reason = reason
    }

    package var description: String { "\(argument) '\(text)': \(reason)" }
}

/// Parses the three-part form shared by subchannel ids and device numbers.
func parseThreePart(_ text: String, argument: String, last: String) throws(IDParseError) -> (UInt8, UInt8, UInt16) {
    let form = "expected cssid.ssid.\(last) in hex, like 0.0.0042"
    guard let parts = Hex.parts(text, maxDigits: (2, 1, 4)) else {
        throw IDParseError(argument: argument, text: text, reason: form)
    }
    guard parts.1 <= 3 else {
        throw IDParseError(argument: argument, text: text, reason: "ssid \(Hex.string(parts.1)) is out of range (0..3)")
    }
    return (UInt8(parts.0), UInt8(parts.1), UInt16(parts.2))
}

/// Checks integer parts given separately (a topology built from numbers rather than strings).
func checkRange(_ value: Int, _ max: Int, _ name: String, argument: String, text: String) throws(IDParseError) {
    guard (0...max).contains(value) else {
        throw IDParseError(
            argument: argument, text: text, reason: "\(name) \(value) is out of range (0..0x\(Hex.string(max)))")
    }
}
