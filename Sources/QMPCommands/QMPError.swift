// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// An error reply: `{"error": {"class": CLASS, "desc": DESC}}`.
///
/// The classes are QEMU's (qapi/error.json); clients such as qemu.qmp dispatch on them.
public struct QMPError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Class: String, Sendable {
        case genericError = "GenericError"
        case commandNotFound = "CommandNotFound"
        case deviceNotActive = "DeviceNotActive"
        case deviceNotFound = "DeviceNotFound"
    }

    public let errorClass: Class
    public let desc: String

    public init(_ errorClass: Class, _ desc: String) {
        self.errorClass = errorClass
        self.desc = desc
    }

    public static func generic(_ desc: String) -> QMPError { QMPError(.genericError, desc) }

    public var description: String { "\(errorClass.rawValue): \(desc)" }
}
