// The argument structs of QMPCommands and their decoders: each checks an arguments object the
// way QEMU's QObject input visitor does (QMPSchema's ArgumentValidator, which a test runs beside
// them) and decodes it in the same pass, with defaults as Swift values.

/// Per command with arguments (and per struct an argument names), a struct with one typed
/// property per member (ids as CSSModel's id types, enums as Swift enums, integers of their
/// width; optional members optional unless the schema gives a default) and `init(decoding:)`.
struct ArgumentsCode {
    let schema: SchemaSet

    /// The structs that command arguments name, directly or through another such struct, in
    /// the order first named.
    func argumentStructs() -> [SchemaStruct] {
        let structs = schema.structs
        var seen: [String] = []
        func visit(_ type: MemberType) {
            switch type {
            case .array(let element): visit(element)
            case .name(let name):
                guard let found = structs[name], !seen.contains(name) else { return }
                seen.append(name)
                for member in found.members { visit(member.type) }
            }
        }
        for document in schema.documents {
            for command in document.commands {
                for member in command.members { visit(member.type) }
            }
        }
        return seen.map { structs[$0]! }
    }

    /// - Parameter nested: a struct inside the arguments (its ids would be parsed before the
    ///   checks of the members after it, which QEMU makes first: refused until one is needed).
    func structCode(name type: String, members: [SchemaMember], doc: String, place owner: String, nested: Bool)
        throws -> String
    {
        var out = "/// \(doc)\n"
        out += "struct \(type) {\n"
        for member in members {
            if !member.doc.isEmpty { out += "    /// \(member.doc)\n" }
            let swift = try swiftType(member.type, place: "\(owner) member '\(member.name)'")
            let optional = member.optional && member.defaultValue == nil
            out += "    var \(SwiftNames.propertyName(member.name)): \(swift)\(optional ? "?" : "")\n"
        }
        out += "}\n\nextension \(type) {\n"
        out += "    /// Checks `object` as QEMU's QObject input visitor does and decodes it in the same pass: members\n"
        out += "    /// in declaration order, each in depth, then the first unexpected key in glib's order, with\n"
        out += "    /// QEMU's texts. An absent member with a default takes it, in `object` too (what the audit\n"
        out += "    /// log shows). Ids are parsed last, once every member has passed, as QEMU's handlers parse\n"
        out += "    /// after its visitor.\n"
        out += "    /// - Parameter prefix: where `object` sits in the arguments, for error texts (`since.`).\n"
        out += "    /// - Throws: GenericError: QEMU's text, or a malformed id's naming the member and the form.\n"
        out += "    init(decoding object: JSON, prefix: String = \"\") throws(QMPError) {\n"
        out += "        var present = 0\n"
        var deferred: [String] = []
        for member in members {
            let place = "\(owner) member '\(member.name)'"
            let property = SwiftNames.propertyName(member.name)
            let key = SwiftNames.literal(member.name)
            let full = "\\(prefix)\(member.name)"
            let alias = aliasConversion(member.type)
            if alias != nil && nested {
                throw GenerationError("\(place): an id inside a struct argument is not supported")
            }
            let target = alias == nil ? property : "\(SwiftNames.lowerCamel(member.name))Text"
            if !member.optional {
                let value = SwiftNames.lowerCamel(member.name) + "Value"
                let decode = try structural(member.type, value: value, full: full, name: key, depth: 1, place: place)
                out +=
                    "        guard let \(value) = object[\(key)] else { throw SchemaDecoding.missing(\"\(full)\") }\n"
                out += "        present += 1\n"
                out += "        \(alias == nil ? "" : "let ")\(target) = \(decode)\n"
            } else {
                let decode = try structural(member.type, value: "value", full: full, name: key, depth: 1, place: place)
                if alias != nil { out += "        let \(target): \(try textType(member.type))?\n" }
                out += "        if let value = object[\(key)] {\n"
                out += "            present += 1\n"
                out += "            \(target) = \(decode)\n"
                out += "        } else {\n"
                if let value = member.defaultValue {
                    out += "            object[\(key)] = \(try jsonLiteral(value, place: place))\n"
                    out += "            present += 1\n"
                    out += "            \(target) = \(try defaultLiteral(value, member.type, place: place))\n"
                } else {
                    out += "            \(target) = nil\n"
                }
                out += "        }\n"
            }
            if let alias {
                let convert = "try \(alias)(schemaText: text, argument: \(key))"
                let each = "{ (text) throws(QMPError) in \(convert) }"
                switch (member.optional, member.type) {
                case (false, .name):
                    deferred.append("\(property) = try \(alias)(schemaText: \(target), argument: \(key))")
                case (false, .array), (true, .name):
                    deferred.append("\(property) = try \(target).map \(each)")
                case (true, .array):
                    deferred.append(
                        "\(property) = try \(target).map { (texts) throws(QMPError) in try texts.map \(each) }")
                }
            }
        }
        let declared = members.map { SwiftNames.literal($0.name) }.joined(separator: ", ")
        out += "        if object.count > present {\n"
        out += "            throw SchemaDecoding.unexpected(object, prefix: prefix, declared: [\(declared)])\n"
        out += "        }\n"
        for line in deferred { out += "        \(line)\n" }
        out += "    }\n}\n\n"
        return out
    }

    /// For a member of an alias type (or an array of one), the Swift type its checked text
    /// becomes once every member has passed; nil for other types.
    private func aliasConversion(_ type: MemberType) -> String? {
        switch type {
        case .array(.name(let name)), .name(let name): return schema.aliases[name]?.swiftType
        case .array: return nil
        }
    }

    /// The checked form of an alias-typed member before its conversion.
    private func textType(_ type: MemberType) throws -> String {
        if case .array = type { return "[String]" }
        return "String"
    }

    /// The expression checking `value` (QEMU's texts) and decoding it, ids left as text.
    /// - Parameters:
    ///   - full: the path QEMU prints for type errors, as the inside of a string literal.
    ///   - name: the bare name QEMU prints for value errors, a literal or `nil` (list elements).
    private func structural(_ type: MemberType, value: String, full: String, name: String, depth: Int, place: String)
        throws -> String
    {
        let path = "\"\(full)\""
        switch type {
        case .array(let element):
            let inner = try structural(
                element, value: "element\(depth)", full: "\(full)[\\(index\(depth))]", name: "nil", depth: depth + 1,
                place: place)
            return
                "try SchemaDecoding.array(\(value), \(path)) { (element\(depth), index\(depth)) throws(QMPError) in \(inner) }"
        case .name(let typeName):
            switch typeName {
            case "str": return "try SchemaDecoding.string(\(value), \(path))"
            case "bool": return "try SchemaDecoding.bool(\(value), \(path))"
            case "number": return "try SchemaDecoding.number(\(value), \(path))"
            case "any": return value
            default: break
            }
            if let swift = Self.builtins[typeName], let range = Self.ranges[typeName] {
                return
                    "try SchemaDecoding.integer(\(value), \(path), \(name), \"\(typeName)\", in: \(range), as: \(swift).self)"
            }
            if let enumeration = schema.enums[typeName] {
                return
                    "try SchemaDecoding.enumeration(\(value), \(path), \(name), SchemaEnums.\(SwiftNames.lowerCamel(enumeration.name)))"
            }
            if let alias = schema.aliases[typeName] {
                guard alias.base == "str" else { throw GenerationError("\(place): alias \(typeName) must be of str") }
                return "try SchemaDecoding.string(\(value), \(path))"
            }
            if schema.structs[typeName] != nil {
                return "try \(typeName)(decoding: SchemaDecoding.object(\(value), \(path)), prefix: \"\(full).\")"
            }
            throw GenerationError("\(place): type '\(typeName)' cannot be a command argument yet")
        }
    }

    private func swiftType(_ type: MemberType, place: String) throws -> String {
        switch type {
        case .array(let element): return "[\(try swiftType(element, place: place))]"
        case .name(let name):
            if let builtin = Self.builtins[name] { return builtin }
            if let value = schema.enums[name] { return value.swiftType ?? value.name }
            if let alias = schema.aliases[name] { return alias.swiftType }
            if schema.structs[name] != nil { return name }
            throw GenerationError("\(place): type '\(name)' cannot be a command argument yet (a struct?)")
        }
    }

    /// A default as the JSON the visitor would have filled in.
    private func jsonLiteral(_ value: OrderedJSON, place: String) throws -> String {
        switch value {
        case .string(let text): return "JSON.string(\(SwiftNames.literal(text)))"
        case .bool(let flag): return "JSON.bool(\(flag))"
        case .number(let text) where Int(text) != nil: return "JSON.integer(\(text))"
        default: throw GenerationError("\(place): a default of this type is not supported")
        }
    }

    private func defaultLiteral(_ value: OrderedJSON, _ type: MemberType, place: String) throws -> String {
        switch (value, type) {
        case (.string(let text), .name(let name)) where schema.enums[name] != nil:
            guard schema.enums[name]!.values.contains(text) else {
                throw GenerationError("\(place): default '\(text)' is no value of \(name)")
            }
            return ".\(SwiftNames.caseName(text))"
        case (.string(let text), .name("str")): return SwiftNames.literal(text)
        case (.bool(let flag), .name("bool")): return flag ? "true" : "false"
        case (.number(let text), .name(let name)) where Self.builtins[name] != nil && Int(text) != nil:
            guard let range = Self.ranges[name], Self.contains(range, Int(text)!) else {
                throw GenerationError("\(place): default \(text) is out of the range of \(name)")
            }
            return text
        default: throw GenerationError("\(place): a default of this type is not supported")
        }
    }

    private static func contains(_ range: String, _ value: Int) -> Bool {
        switch range {
        case "Int.min...Int.max": return true
        case "0...Int.max": return value >= 0
        default:
            let bounds = range.components(separatedBy: "...").compactMap { Int($0) }
            return bounds.count == 2 && bounds[0] <= value && value <= bounds[1]
        }
    }

    static let builtins: [String: String] = [
        "str": "String", "bool": "Bool", "number": "Double", "any": "JSON",
        "int": "Int", "int64": "Int", "size": "Int", "uint64": "Int",
        "int8": "Int8", "int16": "Int16", "int32": "Int32",
        "uint8": "UInt8", "uint16": "UInt16", "uint32": "UInt32",
    ]

    /// The values QEMU's visitor accepts per integer type (QMPSchema's `Builtin.range`).
    static let ranges: [String: String] = [
        "int": "Int.min...Int.max", "int64": "Int.min...Int.max",
        "int8": "-128...127", "int16": "-32768...32767", "int32": "-2147483648...2147483647",
        "uint8": "0...255", "uint16": "0...65535", "uint32": "0...4294967295",
        "uint64": "0...Int.max", "size": "0...Int.max",
    ]
}
