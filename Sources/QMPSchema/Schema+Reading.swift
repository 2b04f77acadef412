// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import JSONValues

// The reader of schema text: the tests' (they check the generated `Schema.compiled` against it,
// and exercise its errors); api-embed applies the same rules, with the same texts, at build time.
extension Schema {
    /// Reads and cross-checks schema documents.
    /// - Throws: SchemaError naming the document and the definition.
    package convenience init(documents: [(name: String, text: String)]) throws(SchemaError) {
        var modules: [Module] = []
        var commands: [Command] = []
        var events: [Event] = []
        var structs: [String: Struct] = [:]
        var enums: [String: Enum] = [:]
        var aliases: [String: Alias] = [:]
        var order: (structs: [String], enums: [String], aliases: [String]) = ([], [], [])
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
                case .struct(let value):
                    structs[value.name] = value
                    order.structs.append(value.name)
                case .enum(let value):
                    enums[value.name] = value
                    order.enums.append(value.name)
                case .alias(let value):
                    aliases[value.name] = value
                    order.aliases.append(value.name)
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
        self.init(
            values: Values(
                modules: modules, commands: commands, events: events, structs: order.structs.map { structs[$0]! },
                enums: order.enums.map { enums[$0]! }, aliases: order.aliases.map { aliases[$0]! }))
        try checkReferences(files: files)
    }

    /// Every type a member refers to must exist.
    fileprivate func checkReferences(files: [String: String]) throws(SchemaError) {
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
            known = [
                "command", "doc", "data", "returns", "allow-oob", "negotiation", "if", "changes", "allow-read-only",
            ]
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
            var condition: CommandCondition?
            if let value = json["if"] {
                guard let parsed = value.stringValue.flatMap(CommandCondition.init(rawValue:)) else {
                    let allowed = CommandCondition.allCases.map { "'\($0.rawValue)'" }.joined(separator: " or ")
                    throw SchemaError("\(place) (\(name)): \"if\" is \(allowed), not \(value)")
                }
                condition = parsed
            }
            kind = .command(
                Command(
                    name: name, module: module,
                    arguments: try parseMembers(json["data"], "\(place) (\(name))"),
                    returns: returns, doc: doc,
                    allowOOB: json["allow-oob"]?.boolValue ?? false,
                    negotiation: json["negotiation"]?.boolValue ?? false,
                    condition: condition, changes: changes,
                    allowsReadOnly: json["allow-read-only"]?.boolValue ?? false))
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
