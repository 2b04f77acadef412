// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import JSONValues
import QMPSchema
import QMPWire

/// A Swift type that a schema alias of `str` stands for (API/css.json `ChannelPathID`, ...):
/// made from the string the client sent.
protocol SchemaString {
    /// - Parameter argument: the member's name, for the error text.
    /// - Throws: GenericError whose text names the argument, the text and the accepted form
    ///   (`chpid '0.4g': expected cssid.chpid in hex, like 0.4a`).
    init(schemaText text: String, argument: String) throws(QMPError)
}

extension ChannelPathID: SchemaString {
    init(schemaText text: String, argument: String) throws(QMPError) {
        do throws(IDParseError) { try self.init(parsing: text, argument: argument) } catch {
            throw .generic(error.description)
        }
    }
}

extension SubchannelID: SchemaString {
    init(schemaText text: String, argument: String) throws(QMPError) {
        do throws(IDParseError) { try self.init(parsing: text, argument: argument) } catch {
            throw .generic(error.description)
        }
    }
}

extension DeviceID: SchemaString {
    init(schemaText text: String, argument: String) throws(QMPError) {
        do throws(IDParseError) { try self.init(parsing: text, argument: argument) } catch {
            throw .generic(error.description)
        }
    }
}

/// Guest names (API/vfio.json `GuestName`) are kept as given: a name that is not a guest's is
/// DeviceNotFound, from the operation.
extension String: SchemaString {
    init(schemaText text: String, argument: String) throws(QMPError) { self = text }
}

/// What the generated `init(decoding:)` of the arguments structs checks and reads values with:
/// QEMU's QObject input visitor's checks, with its texts (QMPSchema's ArgumentValidator is the
/// reference, and a test runs both over the same arguments).
///
/// `full` is the path QEMU prints for type errors (`since.epoch`, `chpids[2]`), built only
/// for the error; `name` the bare name it prints for value errors (nil inside lists: `null`).
enum SchemaDecoding {
    static func missing(_ full: String) -> QMPError { .generic("Parameter '\(full)' is missing") }

    /// - Throws: GenericError naming the key QEMU names first (glib's hash order).
    static func unexpected(_ object: JSON, prefix: String, declared: Set<String>) -> QMPError {
        let key = QEMUVisitorOrder.firstUnexpected(keys: object.members.map(\.key), declared: declared)
        return .generic("Parameter '\(prefix + key)' is unexpected")
    }

    /// The arguments of a command that declares none: an empty object.
    static func noMembers(_ object: JSON) throws(QMPError) {
        if object.count > 0 { throw unexpected(object, prefix: "", declared: []) }
    }

    static func object(_ value: JSON, _ full: @autoclosure () -> String) throws(QMPError) -> JSON {
        guard value.isObject else { throw wrongType(full(), "object") }
        return value
    }

    static func string(_ value: JSON, _ full: @autoclosure () -> String) throws(QMPError) -> String {
        guard let text = value.stringValue else { throw wrongType(full(), "string") }
        return text
    }

    static func bool(_ value: JSON, _ full: @autoclosure () -> String) throws(QMPError) -> Bool {
        guard let flag = value.boolValue else { throw wrongType(full(), "boolean") }
        return flag
    }

    static func number(_ value: JSON, _ full: @autoclosure () -> String) throws(QMPError) -> Double {
        guard let number = value.doubleValue else { throw wrongType(full(), "number") }
        return number
    }

    /// - Parameters:
    ///   - builtin: the schema's type name, for the range error (`expects uint8`).
    ///   - range: the values QEMU's visitor accepts for it (within `T`'s).
    static func integer<T: FixedWidthInteger>(
        _ value: JSON, _ full: @autoclosure () -> String, _ name: String?, _ builtin: String,
        in range: ClosedRange<Int>, as: T.Type
    ) throws(QMPError) -> T {
        guard let integer = value.intValue else { throw wrongType(full(), "integer") }
        guard range.contains(integer) else { throw .generic("Parameter '\(name ?? "null")' expects \(builtin)") }
        return T(truncatingIfNeeded: integer)
    }

    static func enumeration<T>(
        _ value: JSON, _ full: @autoclosure () -> String, _ name: String?, _ decode: (String) -> T?
    ) throws(QMPError) -> T {
        guard let text = value.stringValue else { throw wrongType(full(), "string") }
        guard let result = decode(text) else {
            throw .generic("Parameter '\(name ?? "null")' does not accept value '\(text)'")
        }
        return result
    }

    /// - Parameter element: checks and decodes the element at an index.
    static func array<T>(
        _ value: JSON, _ full: @autoclosure () -> String, _ element: (JSON, Int) throws(QMPError) -> T
    ) throws(QMPError) -> [T] {
        guard value.kind == .array else { throw wrongType(full(), "array") }
        var result: [T] = []
        result.reserveCapacity(value.count)
        for index in 0..<value.count {
            guard let item = value[index] else { break }
            result.append(try element(item, index))
        }
        return result
    }

    private static func wrongType(_ full: String, _ expected: String) -> QMPError {
        .generic("Invalid parameter type for '\(full)', expected: \(expected)")
    }
}
