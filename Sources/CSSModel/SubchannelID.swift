// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// A subchannel id `cssid.ssid.schno`, written like Linux does: `0.0.0042`, `fe.0.0001`.
///
/// Packed into one `UInt32` (cssid << 24 | ssid << 16 | schno) so that ids are cheap to hash,
/// compare and store by the hundred thousand, and so that numeric order is subchannel-id order.
package struct SubchannelID: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The packed form: cssid << 24 | ssid << 16 | schno.
    package let rawValue: UInt32

    /// Creates an id from its parts.
    /// - Precondition: `ssid <= 3`.
    package init(cssid: UInt8, ssid: UInt8, schno: UInt16) {
        precondition(ssid <= 3, "ssid out of range")
        rawValue = UInt32(cssid) << 24 | UInt32(ssid) << 16 | UInt32(schno)
    }

    /// Creates an id from unchecked integers, as a decoded file gives them.
    /// - Throws: `IDParseError` naming the part that is out of range.
    package init(checkingCSSID cssid: Int, ssid: Int, schno: Int, argument: String = "subchannel") throws(IDParseError)
    {
        let text = "\(cssid).\(ssid).\(schno)"
        try checkRange(cssid, 0xff, "cssid", argument: argument, text: text)
        try checkRange(ssid, 3, "ssid", argument: argument, text: text)
        try checkRange(schno, 0xffff, "schno", argument: argument, text: text)
        self.init(cssid: UInt8(cssid), ssid: UInt8(ssid), schno: UInt16(schno))
    }

    /// Parses Linux notation: `cssid.ssid.schno` in hex (`0.0.0042`; short parts like
    /// `0.0.42` are accepted, as s390-tools do).
    /// - Parameter argument: the name used in the error text, e.g. the QMP argument name.
    /// - Throws: `IDParseError`, e.g. "subchannel '0.0.zz': expected cssid.ssid.schno in hex,
    ///   like 0.0.0042".
    package init(parsing text: String, argument: String = "subchannel") throws(IDParseError) {
        let (cssid, ssid, schno) = try parseThreePart(text, argument: argument, last: "schno")
        self.init(cssid: cssid, ssid: ssid, schno: schno)
    }

    package var cssid: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 24) }
    package var ssid: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 16) }
    package var schno: UInt16 { UInt16(truncatingIfNeeded: rawValue) }

    /// `0.0.0042`: cssid and ssid `%x`, schno `%04x`.
    package var description: String { "\(Hex.string(cssid)).\(Hex.string(ssid)).\(Hex.string(schno, width: 4))" }

    package static func < (a: SubchannelID, b: SubchannelID) -> Bool { a.rawValue < b.rawValue }
}
