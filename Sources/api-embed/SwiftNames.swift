import Foundation

// How schema names become Swift names and literals in the generated code.

/// Naming rules: `vary-path` -> `varyPath` (method) / `VaryPath` (type), `permanent-error`
/// -> `permanentError`, `guest-chpids` -> `guestChpids`; acronyms upper case unless they lead
/// a lower-camel name: `store-crw` -> `storeCRW`, `qmp_capabilities` -> `qmpCapabilities` /
/// `QMPCapabilities`, `host-qmp-quit` -> `hostQMPQuit`.
enum SwiftNames {
    static let keywords: Set<String> = [
        "enum", "struct", "class", "protocol", "func", "var", "let", "case", "default", "switch", "if", "else",
        "for", "in", "while", "repeat", "return", "import", "static", "self", "Self", "true", "false", "nil",
        "is", "as", "try", "throw", "throws", "init", "operator", "where", "extension", "internal", "public",
    ]

    /// Words spelled upper case in Swift names, as the package spells them (CSSModel, QMPWire).
    static let acronyms: Set<String> = ["qmp", "css", "crw", "vfio", "ccw", "schib", "oob"]

    static func words(_ name: String) -> [String] {
        name.split(whereSeparator: { $0 == "-" || $0 == "_" }).map(String.init)
    }

    static func typeName(_ name: String) -> String {
        words(name).map { acronyms.contains($0) ? $0.uppercased() : $0.prefix(1).uppercased() + $0.dropFirst() }
            .joined()
    }

    static func lowerCamel(_ name: String) -> String {
        let upper = typeName(name)
        // A leading acronym is lowered whole: QMPCapability -> qmpCapability.
        let lead = upper.prefix { $0.isUppercase }
        let count = lead.count > 1 && lead.count < upper.count ? lead.count - 1 : lead.count
        return upper.prefix(count).lowercased() + upper.dropFirst(count)
    }

    static func escaped(_ name: String) -> String { keywords.contains(name) ? "`\(name)`" : name }
    static func caseName(_ value: String) -> String { escaped(lowerCamel(value)) }
    static func propertyName(_ member: String) -> String { escaped(lowerCamel(member)) }

    /// A Swift string literal of any text (docs hold quotes, backslashes and line breaks).
    static func literal(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: out += "\\u{\(String(scalar.value, radix: 16))}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func firstSentence(_ doc: String) -> String {
        let sentence = doc.range(of: ". ").map { String(doc[..<$0.lowerBound]) + "." } ?? doc
        return sentence.replacingOccurrences(of: "\n", with: " ")
    }
}
