// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// A channel path id `cssid.chpid`, written like Linux does: `0.4a`, `fe.00`.
///
/// A chpid is only unique within its channel subsystem, so the css is part of the id; packed
/// into a `UInt16` (cssid << 8 | chpid) whose numeric order is lschp's order.
package struct ChannelPathID: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The packed form: cssid << 8 | chpid.
    package let rawValue: UInt16

    package init(cssid: UInt8, chpid: UInt8) {
        rawValue = UInt16(cssid) << 8 | UInt16(chpid)
    }

    /// Creates an id from unchecked integers, as a decoded file gives them.
    /// - Throws: `IDParseError` naming the part that is out of range.
    package init(checkingCSSID cssid: Int, chpid: Int, argument: String = "chpid") throws(IDParseError) {
        let text = "\(cssid).\(chpid)"
        try checkRange(cssid, 0xff, "cssid", argument: argument, text: text)
        try checkRange(chpid, 0xff, "chpid", argument: argument, text: text)
        self.init(cssid: UInt8(cssid), chpid: UInt8(chpid))
    }

    /// Parses Linux notation: `cssid.chpid` in hex, e.g. `0.4a`.
    /// - Parameter argument: the name used in the error text.
    /// - Throws: `IDParseError`, e.g. "chpid '0.4g': expected cssid.chpid in hex, like 0.4a".
    package init(parsing text: String, argument: String = "chpid") throws(IDParseError) {
        guard let parts = Hex.parts(text, maxDigits: (2, 2, 0)) else {
            throw IDParseError(argument: argument, text: text, reason: "expected cssid.chpid in hex, like 0.4a")
        }
        self.init(cssid: UInt8(parts.0), chpid: UInt8(parts.1))
    }

    package var cssid: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 8) }
    package var chpid: UInt8 { UInt8(truncatingIfNeeded: rawValue) }

    /// `0.4a`: cssid `%x`, chpid `%02x` (sysfs `chp0.4a`).
    package var description: String { "\(Hex.string(cssid)).\(Hex.string(chpid, width: 2))" }

    package static func < (a: ChannelPathID, b: ChannelPathID) -> Bool { a.rawValue < b.rawValue }
}
