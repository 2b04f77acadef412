// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// A device number qualified by its css and subchannel set, `cssid.ssid.devno`: the ccw bus id
/// Linux shows (`0.0.1000`). Device numbers are unique within a subchannel set, not globally,
/// which is why the bare 16-bit devno is not enough to find a device.
package struct DeviceID: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The packed form: cssid << 24 | ssid << 16 | devno.
    package let rawValue: UInt32

    /// Creates an id from its parts.
    /// - Precondition: `ssid <= 3`.
    package init(cssid: UInt8, ssid: UInt8, devno: UInt16) {
        precondition(ssid <= 3, "ssid out of range")
        rawValue = UInt32(cssid) << 24 | UInt32(ssid) << 16 | UInt32(devno)
    }

    /// Parses Linux notation, `cssid.ssid.devno` in hex (`0.0.0042`).
    /// - Parameter argument: the name used in the error text.
    /// - Throws: `IDParseError`, e.g. "devno '0.0.zz': expected cssid.ssid.devno in hex, like 0.0.0042".
    package init(parsing text: String, argument: String = "devno") throws(IDParseError) {
        let (cssid, ssid, devno) = try parseThreePart(text, argument: argument, last: "devno")
        self.init(cssid: cssid, ssid: ssid, devno: devno)
    }

    package var cssid: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 24) }
    package var ssid: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 16) }
    package var devno: UInt16 { UInt16(truncatingIfNeeded: rawValue) }

    /// `0.0.1000`.
    package var description: String { "\(Hex.string(cssid)).\(Hex.string(ssid)).\(Hex.string(devno, width: 4))" }

    package static func < (a: DeviceID, b: DeviceID) -> Bool { a.rawValue < b.rawValue }
}
