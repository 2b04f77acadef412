// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// An error reply: `{"error": {"class": CLASS, "desc": DESC}}`.
///
/// The classes are QEMU's (qapi/error.json); clients such as qemu.qmp dispatch on them.
package struct QMPError: Error, Equatable, Sendable, CustomStringConvertible {
    package enum Class: String, Sendable {
        case genericError = "GenericError"
        case commandNotFound = "CommandNotFound"
        case deviceNotActive = "DeviceNotActive"
        case deviceNotFound = "DeviceNotFound"
    }

    package let errorClass: Class
    package let desc: String

    package init(_ errorClass: Class, _ desc: String) {
        self.errorClass = errorClass
        self.desc = desc
    }

    package static func generic(_ desc: String) -> QMPError { QMPError(.genericError, desc) }

    package var description: String { "\(errorClass.rawValue): \(desc)" }
}
