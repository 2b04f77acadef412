// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
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

/// What the generated `init(decoding:)` of the arguments structs reads values with.
///
/// The ArgumentValidator has checked every member's presence, JSON type, integer range and
/// enum value before, so the errors here are for a caller that skipped it: they are the
/// validator's texts, not traps.
enum SchemaDecoding {
    static func member(_ object: JSON, _ name: String) throws(QMPError) -> JSON {
        guard let value = object[name] else { throw .generic("Parameter '\(name)' is missing") }
        return value
    }

    static func string(_ value: JSON, _ name: String) throws(QMPError) -> String {
        guard let text = value.stringValue else { throw wrongType(name, "string") }
        return text
    }

    static func bool(_ value: JSON, _ name: String) throws(QMPError) -> Bool {
        guard let flag = value.boolValue else { throw wrongType(name, "boolean") }
        return flag
    }

    static func number(_ value: JSON, _ name: String) throws(QMPError) -> Double {
        guard let number = value.doubleValue else { throw wrongType(name, "number") }
        return number
    }

    static func integer<T: FixedWidthInteger>(_ value: JSON, _ name: String, as: T.Type) throws(QMPError) -> T {
        guard let integer = value.intValue else { throw wrongType(name, "integer") }
        guard let typed = T(exactly: integer) else { throw .generic("Parameter '\(name)' expects \(T.self)") }
        return typed
    }

    static func enumeration<T>(_ value: JSON, _ name: String, _ decode: (String) -> T?) throws(QMPError) -> T {
        let text = try string(value, name)
        guard let result = decode(text) else { throw .generic("Parameter '\(name)' does not accept value '\(text)'") }
        return result
    }

    static func array<T>(_ value: JSON, _ name: String, _ element: (JSON) throws(QMPError) -> T) throws(QMPError) -> [T]
    {
        guard value.kind == .array else { throw wrongType(name, "array") }
        var result: [T] = []
        result.reserveCapacity(value.count)
        for index in 0..<value.count {
            guard let item = value[index] else { break }
            result.append(try element(item))
        }
        return result
    }

    private static func wrongType(_ name: String, _ expected: String) -> QMPError {
        .generic("Invalid parameter type for '\(name)', expected: \(expected)")
    }
}
