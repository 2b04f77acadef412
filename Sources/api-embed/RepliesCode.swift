// Typed replies of QMPCommands: for a struct a command returns, a Swift struct and its JSON in
// schema member order, so that a handler builds the reply the schema defines rather than an
// object by hand.

/// Per struct that a command returns (directly, in a list, or inside another such struct) and
/// whose members are built-ins, enums, lists of them or such structs: `<Struct>Reply`, one
/// property per member (optional members optional; an enum as its Swift type), and `json`, the
/// object with the members in schema order and absent optional members left out, as QEMU's
/// output visitor writes a reply. Per enum such a struct names, `SchemaEnums.<enum>Text(_:)`:
/// the value's text, an exhaustive switch, so a Swift case the schema does not have fails to
/// compile (QEMU's generated `<Enum>_str` lookup, the other way round).
struct RepliesCode {
    let schema: SchemaSet

    /// The returned structs that can be typed, in the order first named.
    func replyStructs() -> [SchemaStruct] {
        let structs = schema.structs
        var order: [String] = []
        var simple: [String: Bool] = [:]
        func isSimple(_ type: MemberType) -> Bool {
            switch type {
            case .array(let element): return isSimple(element)
            case .name(let name):
                if ArgumentsCode.builtins[name] != nil || schema.enums[name] != nil { return true }
                guard let found = structs[name] else { return false }
                if let known = simple[name] { return known }
                simple[name] = false  // a struct that contains itself is not typed
                let result = found.members.allSatisfy { isSimple($0.type) }
                simple[name] = result
                if result { order.append(name) }
                return result
            }
        }
        for document in schema.documents {
            for command in document.commands {
                if let returns = command.returns { _ = isSimple(returns) }
            }
        }
        return order.map { structs[$0]! }
    }

    /// The enums that typed reply structs name, in schema order.
    func replyEnums() -> [SchemaEnum] {
        var names = Set<String>()
        func visit(_ type: MemberType) {
            switch type {
            case .array(let element): visit(element)
            case .name(let name): if schema.enums[name] != nil { names.insert(name) }
            }
        }
        for value in replyStructs() { for member in value.members { visit(member.type) } }
        return schema.documents.flatMap(\.enums).filter { names.contains($0.name) }
    }

    func source() -> String {
        var out = ""
        let enums = replyEnums()
        if !enums.isEmpty {
            out += "extension SchemaEnums {\n"
            for value in enums {
                let type = value.swiftType ?? value.name
                out += "    /// `\(value.name)` (API/\(value.file)): the text of a `\(type)` in a reply.\n"
                out += "    static func \(SwiftNames.lowerCamel(value.name))Text(_ value: \(type)) -> String {\n"
                out += "        switch value {\n"
                for name in value.values {
                    out += "        case .\(SwiftNames.caseName(name)): \(SwiftNames.literal(name))\n"
                }
                out += "        }\n    }\n"
            }
            out += "}\n\n"
        }
        for value in replyStructs() {
            out +=
                "/// The reply struct `\(value.name)` (API/\(value.file)), typed; `json` is its object in schema order.\n"
            out += "struct \(value.name)Reply {\n"
            for member in value.members {
                if !member.doc.isEmpty { out += "    /// \(member.doc)\n" }
                out += "    var \(SwiftNames.propertyName(member.name)): \(swiftType(member.type))"
                out += member.optional ? "?\n" : "\n"
            }
            out +=
                "\n    /// The object QEMU's output visitor writes: members in schema order, absent optional ones left out.\n"
            out += "    var json: JSON {\n"
            // Properties through `self.`: a member may be named like the local (`members`).
            if value.members.allSatisfy({ !$0.optional }) {
                let pairs = value.members.map {
                    "(\(SwiftNames.literal($0.name)), \(encode($0.type, "self." + SwiftNames.propertyName($0.name))))"
                }
                out += "        .object([\(pairs.joined(separator: ", "))])\n"
            } else {
                out += "        var object: [(String, JSON)] = []\n"
                for member in value.members {
                    let property = "self." + SwiftNames.propertyName(member.name)
                    let key = SwiftNames.literal(member.name)
                    if member.optional {
                        out +=
                            "        if let value = \(property) { object.append((\(key), \(encode(member.type, "value")))) }\n"
                    } else {
                        out += "        object.append((\(key), \(encode(member.type, property))))\n"
                    }
                }
                out += "        return .object(object)\n"
            }
            out += "    }\n}\n\n"
        }
        return out
    }

    private func swiftType(_ type: MemberType) -> String {
        switch type {
        case .array(let element): return "[\(swiftType(element))]"
        case .name(let name):
            switch name {
            case "str": return "String"
            case "bool": return "Bool"
            case "number": return "Double"
            case "any": return "JSON"
            default:
                if let value = schema.enums[name] { return value.swiftType ?? value.name }
                return ArgumentsCode.builtins[name] != nil ? "Int" : "\(name)Reply"
            }
        }
    }

    private func encode(_ type: MemberType, _ value: String) -> String {
        switch type {
        case .array(let element): return ".array(\(value).map { \(encode(element, "$0")) })"
        case .name(let name):
            switch name {
            case "str": return ".string(\(value))"
            case "bool": return ".bool(\(value))"
            case "number": return ".real(\(value))"
            case "any": return value
            default:
                if let found = schema.enums[name] {
                    return ".string(SchemaEnums.\(SwiftNames.lowerCamel(found.name))Text(\(value)))"
                }
                return ArgumentsCode.builtins[name] != nil ? ".integer(\(value))" : "\(value).json"
            }
        }
    }
}
