// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import JSONValues

extension Schema {
    /// The reply of query-qmp-schema: QEMU's SchemaInfo list for the given commands and events.
    ///
    /// Like QEMU, names of non-builtin types are masked as numbers (clients must not depend on
    /// them), optional members carry `"default": null`, and `allow-oob` appears only when true.
    package func introspect(commands: [Command], events: [Event]) -> JSON {
        var builder = IntrospectionBuilder(schema: self)
        for command in commands { builder.add(command) }
        for event in events { builder.add(event) }
        return .array(builder.entities)
    }
}

private struct IntrospectionBuilder {
    let schema: Schema
    var entities: [JSON] = []
    var names: [String: String] = [:]  // type description -> masked name
    var masks = 0

    mutating func nextMask() -> String {
        defer { masks += 1 }
        return String(masks)
    }

    init(schema: Schema) { self.schema = schema }

    mutating func add(_ command: Command) {
        var members: [(String, JSON)] = [
            ("name", .string(command.name)),
            ("meta-type", .string("command")),
            ("arg-type", .string(objectType(key: "args:\(command.name)", command.arguments))),
            ("ret-type", .string(command.returns.map { typeName($0) } ?? objectType(key: "empty", []))),
        ]
        if command.allowOOB { members.append(("allow-oob", .bool(true))) }
        entities.append(.object(members))
    }

    mutating func add(_ event: Event) {
        entities.append(
            .object([
                ("name", .string(event.name)),
                ("meta-type", .string("event")),
                ("arg-type", .string(objectType(key: "data:\(event.name)", event.data))),
            ]))
    }

    /// Emits an object type for a member list (once) and returns its masked name.
    mutating func objectType(key: String, _ members: [Member]) -> String {
        if members.isEmpty, let existing = names["empty"] { return existing }
        if let existing = names[key] { return existing }
        let masked = nextMask()
        names[members.isEmpty ? "empty" : key] = masked
        var list: [JSON] = []
        for member in members {
            var fields: [(String, JSON)] = [("name", .string(member.name)), ("type", .string(typeName(member.type)))]
            if member.optional { fields.append(("default", .null)) }
            list.append(.object(fields))
        }
        entities.append(
            .object([("name", .string(masked)), ("meta-type", .string("object")), ("members", .array(list))]))
        return masked
    }

    mutating func typeName(_ type: TypeRef) -> String {
        switch type {
        case .builtin(let builtin):
            let name = builtin.rawValue
            if names["builtin:\(name)"] == nil {
                names["builtin:\(name)"] = name
                entities.append(
                    .object([
                        ("name", .string(name)), ("meta-type", .string("builtin")),
                        ("json-type", .string(builtin.jsonType)),
                    ]))
            }
            return name
        case .array(let element):
            let elementName = typeName(element)
            let name = "[\(elementName)]"
            if names["array:\(name)"] == nil {
                names["array:\(name)"] = name
                entities.append(
                    .object([
                        ("name", .string(name)), ("meta-type", .string("array")),
                        ("element-type", .string(elementName)),
                    ]))
            }
            return name
        case .named(let typeName):
            // An alias is its built-in on the wire, and so to clients (QEMU has no aliases).
            if let alias = schema.aliases[typeName] { return self.typeName(.builtin(alias.base)) }
            if let existing = names["type:\(typeName)"] { return existing }
            if let definition = schema.enums[typeName] {
                let masked = nextMask()
                names["type:\(typeName)"] = masked
                entities.append(
                    .object([
                        ("name", .string(masked)), ("meta-type", .string("enum")),
                        ("members", .array(definition.values.map { .object([("name", .string($0.name))]) })),
                        ("values", .array(definition.values.map { .string($0.name) })),
                    ]))
                return masked
            }
            let members = schema.structs[typeName]?.members ?? []
            let masked = objectType(key: "type:\(typeName)", members)
            names["type:\(typeName)"] = masked
            return masked
        }
    }
}
