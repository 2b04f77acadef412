// The schema as api-embed reads it from API/*.json, checked by the rules of QMPSchema's
// `Schema(documents:)` (its tests' reader), with the same texts: a bad document fails the build
// with a message naming the file and the definition (`css.json: definition #4 (vary-path):
// unknown key 'bogus'`), as it failed cssd's start before the schema was compiled in.
import Foundation

struct GenerationError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// QAPI's built-in types (QMPSchema's `Builtin`).
let builtinTypes: Set<String> = [
    "str", "int", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "size", "number",
    "bool", "any", "null",
]

/// A type as a member declares it: a name (built-in, enum, alias or struct) or `[T]`.
indirect enum MemberType {
    case name(String)
    case array(MemberType)

    init(_ json: OrderedJSON, place: String) throws {
        switch json {
        case .string(let name): self = .name(name)
        case .array(let elements) where elements.count == 1: self = .array(try MemberType(elements[0], place: place))
        default: throw GenerationError("\(place): a type is a name or a one-element array, not \(json.serialized)")
        }
    }
}

struct SchemaMember {
    let name: String
    let type: MemberType
    let optional: Bool
    let doc: String
    let defaultValue: OrderedJSON?
}

struct SchemaCommand {
    let name: String
    let file: String
    let module: String
    let doc: String
    let members: [SchemaMember]
    let returns: MemberType?
    let allowOOB: Bool
    let negotiation: Bool
    /// QAPI's "if": the server option that must be on.
    let condition: String?
    /// The state a successful call changes (`"changes"`: QMPSchema's `ChangedState`), or nil.
    let changes: String?
    /// `"allow-read-only"`: accepted on read-only connections although not a query.
    let allowsReadOnly: Bool
}

struct SchemaEvent {
    let name: String
    let module: String
    let doc: String
    let members: [SchemaMember]
}

struct SchemaEnum {
    let name: String
    let file: String
    let doc: String
    let values: [String]
    let valueDocs: [String]
    /// An existing Swift type whose cases are the values (the model's own enum), or nil to
    /// generate one.
    let swiftType: String?
}

struct SchemaAlias {
    let name: String
    let base: String
    let doc: String
    /// The Swift type; the alias's own name unless the schema says otherwise.
    let swiftType: String
}

/// A struct of the schema; one that a command takes as an argument gets a Swift struct too.
struct SchemaStruct {
    let name: String
    let file: String
    let doc: String
    let members: [SchemaMember]
}

/// One API/*.json file: its definitions in order, and the Swift type implementing its commands.
struct SchemaDocument {
    let file: String
    let module: String
    let doc: String
    let handlers: String?
    var commands: [SchemaCommand] = []
    var events: [SchemaEvent] = []
    var enums: [SchemaEnum] = []
    var aliases: [SchemaAlias] = []
    var structs: [SchemaStruct] = []
    /// Every definition's name, in order, for the checks across documents.
    var names: [(name: String, place: String)] = []

    init(file: String, root: OrderedJSON) throws {
        self.file = file
        guard case .object = root else { throw GenerationError("\(file): not a JSON object") }
        module = root["module"]?.string ?? file
        doc = root["doc"]?.string ?? ""
        handlers = root["handlers"]?.string
        guard case .array(let definitions)? = root["definitions"] else {
            throw GenerationError("\(file): missing \"definitions\" array")
        }
        for (index, definition) in definitions.enumerated() {
            try read(definition, place: "\(file): definition #\(index + 1)")
        }
    }

    private mutating func read(_ json: OrderedJSON, place: String) throws {
        guard case .object(let keys) = json else { throw GenerationError("\(place): not an object") }
        let doc = json["doc"]?.string ?? ""
        let name: String
        let known: Set<String>
        if let command = json["command"]?.string {
            name = command
            known = [
                "command", "doc", "data", "returns", "allow-oob", "negotiation", "if", "changes", "allow-read-only",
            ]
            let returns = try json["returns"].map { try MemberType($0, place: "\(place) (\(name)) returns") }
            let changes = json["changes"]
            if let changes, !["subsystem", "guests", "measurement"].contains(changes.string ?? "") {
                throw GenerationError(
                    "\(place) (\(name)): \"changes\" is 'subsystem' or 'guests' or 'measurement', not \(changes.serialized)"
                )
            }
            let allowsReadOnly = json["allow-read-only"]?.bool ?? false
            if allowsReadOnly, changes != nil {
                throw GenerationError("\(place) (\(name)): a command with \"changes\" cannot be \"allow-read-only\"")
            }
            // QMPSchema's CommandCondition: the generated values name its case.
            if let condition = json["if"], condition.string != "allow-quit" {
                throw GenerationError("\(place) (\(name)): \"if\" is 'allow-quit', not \(condition.serialized)")
            }
            commands.append(
                SchemaCommand(
                    name: name, file: file, module: module, doc: doc,
                    members: try Self.members(json["data"], place: "\(place) (\(name))"), returns: returns,
                    allowOOB: json["allow-oob"]?.bool ?? false, negotiation: json["negotiation"]?.bool ?? false,
                    condition: json["if"]?.string, changes: changes?.string, allowsReadOnly: allowsReadOnly))
        } else if let event = json["event"]?.string {
            name = event
            known = ["event", "doc", "data"]
            events.append(
                SchemaEvent(
                    name: name, module: module, doc: doc,
                    members: try Self.members(json["data"], place: "\(place) (\(name))")))
        } else if let value = json["struct"]?.string {
            name = value
            known = ["struct", "doc", "data"]
            structs.append(
                SchemaStruct(
                    name: name, file: file, doc: doc,
                    members: try Self.members(json["data"], place: "\(place) (\(name))"))
            )
        } else if let value = json["enum"]?.string {
            name = value
            known = ["enum", "doc", "data", "swift"]
            guard case .array(let data)? = json["data"], !data.isEmpty else {
                throw GenerationError("\(place) (\(name)): an enum needs a non-empty \"data\" array")
            }
            var values: [String] = []
            var docs: [String] = []
            for value in data {
                if let text = value.string {
                    values.append(text)
                    docs.append("")
                } else if let text = value["name"]?.string {
                    values.append(text)
                    docs.append(value["doc"]?.string ?? "")
                } else {
                    throw GenerationError("\(place) (\(name)): enum values are strings or {name, doc}")
                }
            }
            enums.append(
                SchemaEnum(
                    name: name, file: file, doc: doc, values: values, valueDocs: docs, swiftType: json["swift"]?.string)
            )
        } else if let value = json["alias"]?.string {
            name = value
            known = ["alias", "doc", "type", "swift"]
            guard let base = json["type"]?.string, builtinTypes.contains(base) else {
                throw GenerationError("\(place) (\(name)): an alias needs a built-in \"type\"")
            }
            aliases.append(SchemaAlias(name: name, base: base, doc: doc, swiftType: json["swift"]?.string ?? name))
        } else {
            throw GenerationError(
                "\(place): needs one of \"command\", \"event\", \"struct\", \"enum\", \"alias\" with a string name")
        }
        for (key, _) in keys where !known.contains(key) {
            throw GenerationError("\(place) (\(name)): unknown key '\(key)'")
        }
        names.append((name, place))
    }

    static func members(_ json: OrderedJSON?, place: String) throws -> [SchemaMember] {
        guard let json else { return [] }
        guard case .object(let entries) = json else { throw GenerationError("\(place): \"data\" must be an object") }
        return try entries.map { key, value in
            let optional = key.hasPrefix("*")
            let name = optional ? String(key.dropFirst()) : key
            var spec = value
            var defaultValue: OrderedJSON?
            if case .object = value {
                guard let type = value["type"] else { throw GenerationError("\(place): member '\(name)' has no type") }
                spec = type
                defaultValue = value["default"]
            }
            let type = try MemberType(spec, place: "\(place) member '\(name)'")
            if defaultValue != nil && !optional {
                throw GenerationError("\(place): member '\(name)' has a default but is not optional")
            }
            return SchemaMember(
                name: name, type: type, optional: optional, doc: value["doc"]?.string ?? "",
                defaultValue: defaultValue)
        }
    }
}

/// The documents together, checked across files: no name defined twice, every type named exists.
struct SchemaSet {
    let documents: [SchemaDocument]

    var enums: [String: SchemaEnum] {
        Dictionary(documents.flatMap(\.enums).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }
    var aliases: [String: SchemaAlias] {
        Dictionary(documents.flatMap(\.aliases).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }
    var structs: [String: SchemaStruct] {
        Dictionary(documents.flatMap(\.structs).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Reads and checks the files.
    /// - Throws: GenerationError naming the file and the definition.
    init(paths: [String]) throws {
        var documents: [SchemaDocument] = []
        for path in paths {
            let name = String(path.split(separator: "/").last ?? Substring(path))
            let text = try String(contentsOfFile: path, encoding: .utf8)
            let root: OrderedJSON
            do { root = try OrderedJSON.parse(text) } catch { throw GenerationError("\(name): \(error)") }
            documents.append(try SchemaDocument(file: name, root: root))
        }
        self.documents = documents
        try check()
    }

    private func check() throws {
        var seen: Set<String> = []
        for document in documents {
            for (name, place) in document.names where !seen.insert(name).inserted {
                throw GenerationError("\(place): '\(name)' is defined twice")
            }
        }
        let known = Set(documents.flatMap { $0.structs.map(\.name) + $0.enums.map(\.name) + $0.aliases.map(\.name) })
        func check(_ type: MemberType, _ place: String) throws {
            switch type {
            case .array(let element): try check(element, place)
            case .name(let name):
                guard builtinTypes.contains(name) || known.contains(name) else {
                    throw GenerationError("\(place): unknown type '\(name)'")
                }
            }
        }
        for document in documents {
            for command in document.commands {
                let place = "\(document.file): command \(command.name)"
                for member in command.members { try check(member.type, "\(place) member '\(member.name)'") }
                if let returns = command.returns { try check(returns, "\(place) returns") }
            }
            for event in document.events {
                let place = "\(document.file): event \(event.name)"
                for member in event.members { try check(member.type, "\(place) member '\(member.name)'") }
            }
        }
        for value in documents.flatMap(\.structs).sorted(by: { $0.name < $1.name }) {
            let place = "\(value.file): struct \(value.name)"
            for member in value.members { try check(member.type, "\(place) member '\(member.name)'") }
        }
    }
}
