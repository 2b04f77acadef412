// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import QMPWire

/// The command and event schema, loaded from the files under API/ (compiled in at build time).
///
/// API/ is the single source of truth: the server validates arguments against it, answers
/// introspection from it, and the Markdown docs in API/ are generated from it. The format is
/// QAPI's, written as JSON: `"*name"` marks an optional member, `["T"]` an array of T, and a
/// member is either a type or `{"type": T, "doc": TEXT, "default": VALUE}`. Beyond QAPI, an
/// `alias` names a built-in for a kind of value (ids: `{"alias": "ChannelPathID", "type": "str"}`),
/// which the wire and introspection see as the built-in and generated code as its Swift type;
/// `"swift"` on an enum or alias names the existing Swift type it is (CSSModel's `VaryState`);
/// a document's `"handlers"` names the Swift type implementing its commands (Sources/api-embed);
/// `"changes"` on a command says which state kept across restarts a successful call changes
/// (`ChangedState`: what `--state-dir` records for replay), and is not introspected (QEMU has
/// no such key: query-qmp-schema stays QEMU's).
package final class Schema: @unchecked Sendable {
    // Immutable after init; jansson values inside are only read.

    package let modules: [Module]
    package let commands: [Command]
    package let events: [Event]
    package let structs: [String: Struct]
    package let enums: [String: Enum]
    package let aliases: [String: Alias]
    private let commandIndex: [String: Int]

    package struct Module: Sendable {
        package let name: String
        package let doc: String
    }

    /// Loads the schema compiled into the binary.
    package static func embedded() throws(SchemaError) -> Schema {
        try Schema(documents: embeddedAPIDocuments.map { ($0.name, $0.text) })
    }

    /// Loads and cross-checks schema documents.
    package init(documents: [(name: String, text: String)]) throws(SchemaError) {
        var modules: [Module] = []
        var commands: [Command] = []
        var events: [Event] = []
        var structs: [String: Struct] = [:]
        var enums: [String: Enum] = [:]
        var aliases: [String: Alias] = [:]
        var seen: Set<String> = []
        var files: [String: String] = [:]  // definition name -> document, for error messages
        for (file, text) in documents {
            guard let root = JSON.parse(text), root.isObject else {
                throw SchemaError("\(file): not a JSON object")
            }
            let moduleName = root["module"]?.stringValue ?? file
            modules.append(Module(name: moduleName, doc: root["doc"]?.stringValue ?? ""))
            guard let definitions = root["definitions"], definitions.kind == .array else {
                throw SchemaError("\(file): missing \"definitions\" array")
            }
            for (index, definition) in definitions.elements.enumerated() {
                let place = "\(file): definition #\(index + 1)"
                let entry = try Definition(definition, place: place, module: moduleName)
                guard seen.insert(entry.name).inserted else {
                    throw SchemaError("\(place): '\(entry.name)' is defined twice")
                }
                files[entry.name] = file
                switch entry.kind {
                case .command(let command): commands.append(command)
                case .event(let event): events.append(event)
                case .struct(let value): structs[value.name] = value
                case .enum(let value): enums[value.name] = value
                case .alias(let value): aliases[value.name] = value
                }
            }
        }
        func resolve(_ type: TypeRef) -> TypeRef {
            switch type {
            case .builtin: return type
            case .array(let element): return .array(resolve(element))
            case .named(let name): return aliases[name].map { .builtin($0.base) } ?? type
            }
        }
        func resolve(_ members: inout [Member]) {
            for index in members.indices { members[index].wireType = resolve(members[index].type) }
        }
        for index in commands.indices { resolve(&commands[index].arguments) }
        for name in structs.keys { resolve(&structs[name]!.members) }
        self.modules = modules
        self.commands = commands
        self.events = events
        self.structs = structs
        self.enums = enums
        self.aliases = aliases
        self.commandIndex = Dictionary(uniqueKeysWithValues: commands.enumerated().map { ($1.name, $0) })
        try checkReferences(files: files)
    }

    package func command(named name: String) -> Command? {
        commandIndex[name].map { commands[$0] }
    }

    /// Every type a member refers to must exist.
    private func checkReferences(files: [String: String]) throws(SchemaError) {
        func check(_ type: TypeRef, _ place: String) throws(SchemaError) {
            switch type {
            case .builtin: return
            case .array(let element): try check(element, place)
            case .named(let name):
                guard structs[name] != nil || enums[name] != nil || aliases[name] != nil else {
                    throw SchemaError("\(place): unknown type '\(name)'")
                }
            }
        }
        for command in commands {
            let place = "\(files[command.name] ?? "?"): command \(command.name)"
            for member in command.arguments { try check(member.type, "\(place) member '\(member.name)'") }
            if let returns = command.returns { try check(returns, "\(place) returns") }
        }
        for event in events {
            let place = "\(files[event.name] ?? "?"): event \(event.name)"
            for member in event.data { try check(member.type, "\(place) member '\(member.name)'") }
        }
        for value in structs.values.sorted(by: { $0.name < $1.name }) {
            let place = "\(files[value.name] ?? "?"): struct \(value.name)"
            for member in value.members { try check(member.type, "\(place) member '\(member.name)'") }
        }
    }
}

/// A malformed schema document; the server refuses to start with one.
package struct SchemaError: Error, CustomStringConvertible, Sendable {
    package let description: String
    package init(_ description: String) { self.description = description }
}

/// A reference to a type: a built-in, a named struct or enum, or an array.
package indirect enum TypeRef: Sendable, Equatable, CustomStringConvertible {
    case builtin(Builtin)
    case named(String)
    case array(TypeRef)

    package var description: String {
        switch self {
        case .builtin(let builtin): return builtin.rawValue
        case .named(let name): return name
        case .array(let element): return "[\(element)]"
        }
    }
}

/// QAPI's built-in types.
package enum Builtin: String, Sendable, CaseIterable {
    case str, int, int8, int16, int32, int64, uint8, uint16, uint32, uint64, size, number, bool, any, null

    /// The JSON type QEMU's introspection reports.
    package var jsonType: String {
        switch self {
        case .str: return "string"
        case .number: return "number"
        case .bool: return "boolean"
        case .any: return "value"
        case .null: return "null"
        default: return "int"
        }
    }

    /// The integer range, for integer types.
    var range: ClosedRange<Int>? {
        switch self {
        case .int, .int64: return Int.min...Int.max
        case .int8: return Int(Int8.min)...Int(Int8.max)
        case .int16: return Int(Int16.min)...Int(Int16.max)
        case .int32: return Int(Int32.min)...Int(Int32.max)
        case .uint8: return 0...Int(UInt8.max)
        case .uint16: return 0...Int(UInt16.max)
        case .uint32: return 0...Int(UInt32.max)
        case .uint64, .size: return 0...Int.max
        default: return nil
        }
    }
}

/// A member of a struct, of a command's arguments or of an event's data.
package struct Member: Sendable {
    package let name: String
    package let type: TypeRef
    package let optional: Bool
    package let doc: String
    /// The value an absent optional member takes (its text, parsed when used).
    package let defaultText: String?
    /// `type` with aliases replaced by their built-ins, resolved once when the schema loads:
    /// what the validator checks (a lookup per alias per request would be on the hot path).
    package internal(set) var wireType: TypeRef
}

package struct Struct: Sendable {
    package let name: String
    package internal(set) var members: [Member]
    package let doc: String
}

package struct Enum: Sendable {
    package let name: String
    package let values: [(name: String, doc: String)]
    package let doc: String
    package func contains(_ value: String) -> Bool { values.contains { $0.name == value } }
}

/// A name for a built-in type that stands for one kind of value (an id), e.g. `ChannelPathID`
/// for `str`. Requests and introspection see the built-in.
package struct Alias: Sendable {
    package let name: String
    package let base: Builtin
    package let doc: String
}

package struct Command: Sendable {
    package let name: String
    package let module: String
    package internal(set) var arguments: [Member]
    package let returns: TypeRef?
    package let doc: String
    /// May be sent with exec-oob.
    package let allowOOB: Bool
    /// Accepted in capabilities negotiation mode.
    package let negotiation: Bool
    /// A server option that must be on for the command to exist (QAPI's "if").
    package let condition: String?
    /// The state a successful call changes that outlives the connection (the schema's
    /// "changes"); nil for a command that changes none (queries, negotiation, subscriptions,
    /// which belong to their connection, and `quit`).
    package let changes: ChangedState?
    /// Accepted on read-only connections: query-* commands, and negotiation.
    package var isReadOnly: Bool { name.hasPrefix("query-") || negotiation }
}

/// The state kept across restarts that a command changes (the schema's `"changes"` on a
/// command, cssd's own key, like `"handlers"`). With `--state-dir` a successful call of such a
/// command is recorded and replayed at start, when cssd owns that state (API/resume.md); a
/// test runs every command of the schema and checks that exactly these change the state.
package enum ChangedState: String, Sendable, CaseIterable {
    /// The channel subsystem behind the backend: paths, subchannels, the CRW queue. cssd owns
    /// it with the model (recorded); with linux-sysfs the host does and stays the truth (not
    /// recorded: the host keeps it, and what changed while cssd was down is read at start).
    case subsystem
    /// Guests, their passthrough devices (masks, counters, CRW queues) and strategies: cssd's
    /// own on every backend (recorded).
    case guests
}

package struct Event: Sendable {
    package let name: String
    package let module: String
    package let data: [Member]
    package let doc: String
}

// MARK: Parsing definitions

private struct Definition {
    enum Kind {
        case command(Command)
        case event(Event)
        case `struct`(Struct)
        case `enum`(Enum)
        case alias(Alias)
    }
    let name: String
    let kind: Kind

    init(_ json: JSON, place: String, module: String) throws(SchemaError) {
        guard json.isObject else { throw SchemaError("\(place): not an object") }
        let doc = json["doc"]?.stringValue ?? ""
        let known: Set<String>
        if let name = json["command"]?.stringValue {
            self.name = name
            known = ["command", "doc", "data", "returns", "allow-oob", "negotiation", "if", "changes"]
            let returns = try json["returns"].map { (value) throws(SchemaError) in
                try parseType(value, "\(place) (\(name)) returns")
            }
            var changes: ChangedState?
            if let value = json["changes"] {
                guard let parsed = value.stringValue.flatMap(ChangedState.init(rawValue:)) else {
                    let allowed = ChangedState.allCases.map { "'\($0.rawValue)'" }.joined(separator: " or ")
                    throw SchemaError("\(place) (\(name)): \"changes\" is \(allowed), not \(value)")
                }
                changes = parsed
            }
            kind = .command(
                Command(
                    name: name, module: module,
                    arguments: try parseMembers(json["data"], "\(place) (\(name))"),
                    returns: returns, doc: doc,
                    allowOOB: json["allow-oob"]?.boolValue ?? false,
                    negotiation: json["negotiation"]?.boolValue ?? false,
                    condition: json["if"]?.stringValue, changes: changes))
        } else if let name = json["event"]?.stringValue {
            self.name = name
            known = ["event", "doc", "data"]
            kind = .event(
                Event(name: name, module: module, data: try parseMembers(json["data"], "\(place) (\(name))"), doc: doc))
        } else if let name = json["struct"]?.stringValue {
            self.name = name
            known = ["struct", "doc", "data"]
            kind = .struct(Struct(name: name, members: try parseMembers(json["data"], "\(place) (\(name))"), doc: doc))
        } else if let name = json["enum"]?.stringValue {
            self.name = name
            known = ["enum", "doc", "data", "swift"]
            guard let data = json["data"], data.kind == .array, data.count > 0 else {
                throw SchemaError("\(place) (\(name)): an enum needs a non-empty \"data\" array")
            }
            var values: [(String, String)] = []
            for value in data.elements {
                if let text = value.stringValue {
                    values.append((text, ""))
                } else if let text = value["name"]?.stringValue {
                    values.append((text, value["doc"]?.stringValue ?? ""))
                } else {
                    throw SchemaError("\(place) (\(name)): enum values are strings or {name, doc}")
                }
            }
            kind = .enum(Enum(name: name, values: values, doc: doc))
        } else if let name = json["alias"]?.stringValue {
            self.name = name
            known = ["alias", "doc", "type", "swift"]
            guard let base = json["type"]?.stringValue.flatMap(Builtin.init(rawValue:)) else {
                throw SchemaError("\(place) (\(name)): an alias needs a built-in \"type\"")
            }
            kind = .alias(Alias(name: name, base: base, doc: doc))
        } else {
            throw SchemaError(
                "\(place): needs one of \"command\", \"event\", \"struct\", \"enum\", \"alias\" with a string name")
        }
        for (key, _) in json.members where !known.contains(key) {
            throw SchemaError("\(place) (\(name)): unknown key '\(key)'")
        }
    }
}

private func parseType(_ json: JSON, _ place: String) throws(SchemaError) -> TypeRef {
    if let name = json.stringValue {
        return Builtin(rawValue: name).map(TypeRef.builtin) ?? .named(name)
    }
    if json.kind == .array, json.count == 1, let element = json[0] {
        return .array(try parseType(element, place))
    }
    throw SchemaError("\(place): a type is a name or a one-element array, not \(json)")
}

private func parseMembers(_ json: JSON?, _ place: String) throws(SchemaError) -> [Member] {
    guard let json else { return [] }
    guard json.isObject else { throw SchemaError("\(place): \"data\" must be an object") }
    var members: [Member] = []
    for (key, value) in json.members {
        let optional = key.hasPrefix("*")
        let name = optional ? String(key.dropFirst()) : key
        let spec = value.isObject ? value["type"] : value
        guard let spec else { throw SchemaError("\(place): member '\(name)' has no type") }
        let type = try parseType(spec, "\(place) member '\(name)'")
        let defaultText = value.isObject ? value["default"]?.serialized() : nil
        if defaultText != nil && !optional {
            throw SchemaError("\(place): member '\(name)' has a default but is not optional")
        }
        members.append(
            Member(
                name: name, type: type, optional: optional, doc: value.isObject ? value["doc"]?.stringValue ?? "" : "",
                defaultText: defaultText, wireType: type))
    }
    return members
}
