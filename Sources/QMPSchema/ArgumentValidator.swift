// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import QMPWire

/// A request whose arguments do not match the schema; the text is QEMU's.
public struct ValidationError: Error, Equatable, Sendable {
    public let desc: String
}

/// Checks arguments against schema members the way QEMU's QObject input visitor does, so
/// the first error found, and its text, are the ones QEMU would report:
/// members in declaration order, each checked in depth before the next, and keys nobody
/// asked for reported once all declared members have been visited.
public struct ArgumentValidator: Sendable {
    public let schema: Schema

    public init(schema: Schema) { self.schema = schema }

    /// Validates an arguments object and fills in the defaults of absent optional members.
    public func validate(arguments: JSON, members: [Member]) throws(ValidationError) {
        try checkStruct(arguments, members: members, prefix: "")
    }

    private func checkStruct(_ object: JSON, members: [Member], prefix: String) throws(ValidationError) {
        for member in members {
            let full = prefix + member.name
            guard let value = object[member.name] else {
                if !member.optional {
                    throw ValidationError(desc: "Parameter '\(full)' is missing")
                }
                if let text = member.defaultText, let value = JSON.parse(text) {
                    object[member.name] = value
                }
                continue
            }
            try check(value, type: member.type, full: full, name: member.name)
        }
        if object.count > members.count || members.contains(where: { object[$0.name] == nil }) {
            let declared = Set(members.map(\.name))
            for (key, _) in object.members where !declared.contains(key) {
                throw ValidationError(desc: "Parameter '\(prefix + key)' is unexpected")
            }
        }
    }

    /// - Parameters:
    ///   - full: the path QEMU prints for type errors (`a.b`, `a[0]`).
    ///   - name: the bare name QEMU prints for value errors (`null` inside lists).
    private func check(_ value: JSON, type: TypeRef, full: String, name: String?) throws(ValidationError) {
        func wrongType(_ expected: String) -> ValidationError {
            ValidationError(desc: "Invalid parameter type for '\(full)', expected: \(expected)")
        }
        switch type {
        case .builtin(let builtin):
            switch builtin {
            case .str:
                guard value.kind == .string else { throw wrongType("string") }
            case .number:
                guard value.kind == .integer || value.kind == .real else { throw wrongType("number") }
            case .bool:
                guard value.kind == .bool else { throw wrongType("boolean") }
            case .null:
                guard value.kind == .null else { throw wrongType("null") }
            case .any:
                return
            default:
                guard let int = value.intValue else { throw wrongType("integer") }
                if let range = builtin.range, !range.contains(int) {
                    throw ValidationError(desc: "Parameter '\(name ?? "null")' expects \(builtin.rawValue)")
                }
            }
        case .array(let element):
            guard value.kind == .array else { throw wrongType("array") }
            for (index, item) in value.elements.enumerated() {
                try check(item, type: element, full: "\(full)[\(index)]", name: nil)
            }
        case .named(let typeName):
            if let definition = schema.enums[typeName] {
                guard let text = value.stringValue else { throw wrongType("string") }
                guard definition.contains(text) else {
                    throw ValidationError(desc: "Parameter '\(name ?? "null")' does not accept value '\(text)'")
                }
            } else if let definition = schema.structs[typeName] {
                guard value.isObject else { throw wrongType("object") }
                try checkStruct(value, members: definition.members, prefix: full + ".")
            }
        }
    }
}
