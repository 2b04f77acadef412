// Typed replies of QMPCommands: for a struct a command returns, a Swift struct and its JSON in
// schema member order, so that a handler builds the reply the schema defines rather than an
// object by hand.

/// Per struct that a command returns (directly, in a list, or inside another such struct) and
/// whose members are built-ins, lists of them or such structs: `<Struct>Reply`, one property per
/// member (optional members optional), and `json`, the object with the members in schema order
/// and absent optional members left out, as QEMU's output visitor writes a reply. Structs with
/// enum or id members are left to the handlers until their encoding is generated too.
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
                if ArgumentsCode.builtins[name] != nil { return true }
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

    func source() -> String {
        var out = ""
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
            if value.members.allSatisfy({ !$0.optional }) {
                let pairs = value.members.map {
                    "(\(SwiftNames.literal($0.name)), \(encode($0.type, SwiftNames.propertyName($0.name))))"
                }
                out += "        .object([\(pairs.joined(separator: ", "))])\n"
            } else {
                out += "        var members: [(String, JSON)] = []\n"
                for member in value.members {
                    let property = SwiftNames.propertyName(member.name)
                    let key = SwiftNames.literal(member.name)
                    if member.optional {
                        out +=
                            "        if let \(property) { members.append((\(key), \(encode(member.type, property)))) }\n"
                    } else {
                        out += "        members.append((\(key), \(encode(member.type, property))))\n"
                    }
                }
                out += "        return .object(members)\n"
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
            default: return ArgumentsCode.builtins[name] != nil ? "Int" : "\(name)Reply"
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
            default: return ArgumentsCode.builtins[name] != nil ? ".integer(\(value))" : "\(value).json"
            }
        }
    }
}
