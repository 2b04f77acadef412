// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// An input that cannot become a JSON value. The description is QEMU's exact text, which the
/// server returns as a GenericError.
///
/// Errors the wire layer produces:
/// - lexical: a byte no token can contain (`stray`),
/// - limits: token size, token count, nesting depth,
/// - syntax: what QEMU's parser reports (`expecting value`, `missing : in object pair`, ...).
package struct WireError: Error, Equatable, Sendable, CustomStringConvertible {
    package let description: String

    package init(_ description: String) { self.description = description }

    /// A lexical error: the token text so far, up to and including the bad byte.
    static func stray<C: Collection>(_ token: C) -> WireError where C.Element == UInt8 {
        // QEMU formats the token with %s: text after a NUL byte is not shown.
        let shown = token.prefix { $0 != 0 }
        return WireError("JSON parse error, stray '\(ModifiedUTF8.displayString(shown))'")
    }

    static func syntax(_ message: String) -> WireError { WireError("JSON parse error, \(message)") }

    static let tokenSizeLimit = WireError("JSON token size limit exceeded")
    static let tokenCountLimit = WireError("JSON token count limit exceeded")
    static let nestingLimit = WireError("JSON nesting depth limit exceeded")
}
