// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import JSONValues
import QMPWire

/// A request whose arguments do not match the schema; the text is QEMU's.
package struct ValidationError: Error, Equatable, Sendable {
    package let desc: String
}

/// Checks arguments against schema members the way QEMU's QObject input visitor does, so
/// the first error found, and its text, are the ones QEMU would report:
/// members in declaration order, each checked in depth before the next, and keys nobody
/// asked for reported once all declared members have been visited.
package struct ArgumentValidator: Sendable {
    package let schema: Schema

    package init(schema: Schema) { self.schema = schema }

    /// Validates an arguments object and fills in the defaults of absent optional members.
    package func validate(arguments: JSON, members: [Member]) throws(ValidationError) {
        if members.isEmpty && arguments.count == 0 { return }
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
            try check(value, type: member.wireType, full: full, name: member.name)
        }
        // Every key was visited above unless there are more keys than present members; only
        // then work out which one QEMU names (this path allocates, the common one does not).
        if object.count > members.count(where: { object[$0.name] != nil }) {
            let declared = Set(members.map(\.name))
            let key = QEMUVisitorOrder.firstUnexpected(keys: object.members.map(\.key), declared: declared)
            throw ValidationError(desc: "Parameter '\(prefix + key)' is unexpected")
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
            try check(value, builtin: builtin, full: full, name: name)
        case .array(let element):
            guard value.kind == .array else { throw wrongType("array") }
            for (index, item) in value.elements.enumerated() {
                try check(item, type: element, full: "\(full)[\(index)]", name: nil)
            }
        case .named(let typeName):
            // Aliases are resolved when the schema loads (`Member.wireType`).
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

    private func check(_ value: JSON, builtin: Builtin, full: String, name: String?) throws(ValidationError) {
        func wrongType(_ expected: String) -> ValidationError {
            ValidationError(desc: "Invalid parameter type for '\(full)', expected: \(expected)")
        }
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
    }
}

/// Which unexpected key QEMU names first. Its visitor copies the arguments' keys (in QDict
/// order) into a glib GHashTable, removes each key it visits, and reports the first key left
/// in the table's slot order. This replays glib's open addressing (g_str_hash, 8 slots, index
/// `hash * 11 % 7`, quadratic probing) for up to 7 keys, where glib never resizes; with more
/// keys it falls back to QDict order.
package enum QEMUVisitorOrder {
    package static func firstUnexpected(keys: [String], declared: Set<String>) -> String {
        let inserted = QDictOrder.iterationOrder(keys)
        let fallback = inserted.first { !declared.contains($0) }!
        guard inserted.count < 8 else { return fallback }
        var hashes = [UInt32](repeating: 0, count: 8)  // 0 unused, 1 tombstone
        var slots = [String?](repeating: nil, count: 8)
        for key in inserted {
            var hash = gStrHash(key)
            if hash < 2 { hash = 2 }
            var index = Int((hash &* 11) % 7)
            var step = 0
            while hashes[index] != 0 {
                step += 1
                index = (index + step) & 7
            }
            hashes[index] = hash
            slots[index] = key
        }
        for index in 0..<8 where slots[index].map(declared.contains) == true { hashes[index] = 1 }
        for index in 0..<8 where hashes[index] >= 2 { return slots[index]! }
        return fallback
    }

    /// glib's g_str_hash (djb2 over signed chars).
    static func gStrHash(_ key: String) -> UInt32 {
        var hash: UInt32 = 5381
        for byte in key.utf8 {
            hash = (hash << 5) &+ hash &+ UInt32(bitPattern: Int32(Int8(bitPattern: byte)))
        }
        return hash
    }
}
