// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import JSONValues

/// `key=value` command-line arguments, turned into a QMP `arguments` object.
///
/// A value is JSON when it parses as JSON (`5`, `true`, `null`, `[1,2]`, `{"a":1}`, `"007"`),
/// otherwise the literal text, so `name=foo` needs no quoting while `name='"123"'` forces a string.
/// Dotted keys build nested objects: `a.b=1 a.c=2` gives `{"a": {"b": 1, "c": 2}}`.
/// Keys the schema declares as strings take the text as typed, so `chpid=0.40` stays "0.40"
/// rather than becoming the number 0.4 (a quoted JSON string is still read as JSON).
enum ArgumentSyntax {
    struct SyntaxError: Error, CustomStringConvertible {
        let description: String
    }

    static func value(_ text: String) -> JSON {
        JSON.parse(text) ?? .string(text)
    }

    /// - Parameter stringKeys: top-level keys whose values are strings (from the schema).
    static func arguments(_ words: [String], stringKeys: Set<String> = []) throws(SyntaxError) -> JSON {
        let root = Node()
        for word in words {
            guard let equals = word.firstIndex(of: "=") else {
                throw SyntaxError(description: "'\(word)': expected key=value")
            }
            let key = String(word[..<equals])
            let path = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard !path.contains(where: \.isEmpty) else {
                throw SyntaxError(description: "'\(word)': empty key or key component")
            }
            let text = String(word[word.index(after: equals)...])
            let parsed = stringKeys.contains(key) && !text.hasPrefix("\"") ? JSON.string(text) : value(text)
            try root.insert(parsed, at: path[...], fullKey: key)
        }
        return root.json()
    }

    /// A node of the argument tree: either a leaf value or an object of named children, in the
    /// order they were first given (QMP does not care, but readers of `--raw` output do).
    private final class Node {
        var leaf: JSON?
        var children: [(name: String, node: Node)] = []

        func insert(_ value: JSON, at path: ArraySlice<String>, fullKey: String) throws(SyntaxError) {
            guard let name = path.first else {
                guard leaf == nil else { throw SyntaxError(description: "'\(fullKey)' is given more than once") }
                guard children.isEmpty else {
                    throw SyntaxError(description: "'\(fullKey)' is given both a value and nested keys")
                }
                leaf = value
                return
            }
            guard leaf == nil else {
                throw SyntaxError(description: "'\(fullKey)': '\(name)' is nested under a key that already has a value")
            }
            let child: Node
            if let existing = children.first(where: { $0.name == name }) {
                child = existing.node
            } else {
                child = Node()
                children.append((name, child))
            }
            try child.insert(value, at: path.dropFirst(), fullKey: fullKey)
        }

        func json() -> JSON {
            if let leaf { return leaf }
            return .object(children.map { ($0.name, $0.node.json()) })
        }
    }
}
