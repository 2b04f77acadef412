// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import JSONValues
import X509Credentials

/// An authorization policy in QEMU's `authz-list-file` format (authz/listfile.c, authz/list.c):
///
///     {"policy": "deny",
///      "rules": [{"match": "*,CN=mgmt*", "policy": "allow", "format": "glob"},
///                {"match": "C=GB,O=Example,CN=audit", "policy": "allow"}]}
///
/// Rules are tried in order and the first that matches decides; `policy` decides when none
/// does. `format` is `exact` (default: the whole identity, byte for byte) or `glob` (GLib's
/// `g_pattern_match_simple`, as QEMU's qauthz_list_is_allowed: `*` and `?` only, no escapes and
/// no brackets, so the backslashes of a DN's escapes are plain characters; `GlobPattern`). For a TLS client the identity is its
/// certificate's DN as `DistinguishedName` writes it. Members other than these are refused, as
/// QEMU's strict visitor refuses them; a missing top-level `policy` means `deny` (the safe
/// default: cssd's choice where QEMU has one of its own).
package struct AuthzPolicy: Sendable, Equatable {
    package enum Decision: String, Sendable {
        case allow, deny
    }

    package enum Format: String, Sendable {
        case exact, glob
    }

    package struct Rule: Sendable, Equatable {
        package var match: String
        package var policy: Decision
        package var format: Format
    }

    package var policy: Decision
    package var rules: [Rule]

    package init(policy: Decision, rules: [Rule] = []) {
        self.policy = policy
        self.rules = rules
    }

    /// Whether the client with this DN may use the server: the bytes QEMU matches, compared
    /// byte for byte (`exact`) or as GLib's g_pattern_match_simple compares them (`glob`), as
    /// qauthz_list_is_allowed does. A DN never holds a NUL (`DistinguishedName`) and a rule
    /// cannot (`init(json:file:)`), so no match is cut short by one.
    package func decide(_ identity: DistinguishedName) -> Decision {
        decide(bytes: identity.bytes)
    }

    /// `decide` for an identity given as text (its UTF-8 bytes).
    package func decide(_ identity: String) -> Decision { decide(bytes: Array(identity.utf8)) }

    private func decide(bytes: [UInt8]) -> Decision {
        for rule in rules {
            switch rule.format {
            case .exact: if rule.match.utf8.elementsEqual(bytes) { return rule.policy }
            case .glob: if GlobPattern.matches(Array(rule.match.utf8), bytes) { return rule.policy }
            }
        }
        return policy
    }

    /// Reads a policy file.
    /// - Throws: `AuthzPolicyError` naming the file and the line or member at fault.
    package static func load(file: String) throws(AuthzPolicyError) -> AuthzPolicy {
        let bytes: [UInt8]
        do { bytes = try PEMFile.read(file) } catch { throw AuthzPolicyError("\(error)") }
        return try AuthzPolicy(json: bytes, file: file)
    }

    /// Parses a policy from the file's bytes (`file` names it in errors).
    package init(json bytes: [UInt8], file: String) throws(AuthzPolicyError) {
        // withUnsafeBytes rethrows untyped errors: carry the parse result out as a value.
        let parsed = bytes.withUnsafeBytes { buffer in
            Result { () throws(JSON.SyntaxError) -> JSON in try JSON.parseDocument(buffer) }
        }
        let root: JSON
        switch parsed {
        case .success(let value): root = value
        case .failure(let error):
            throw AuthzPolicyError("\(file):\(error.line):\(error.column): \(error.message)")
        }
        guard root.isObject else { throw AuthzPolicyError("\(file): expected a JSON object") }
        var policy = Decision.deny
        var rules: [Rule] = []
        for (key, value) in root.members {
            switch key {
            case "policy": policy = try Self.decision(value, "\(file): 'policy'")
            case "rules":
                guard value.kind == .array else { throw AuthzPolicyError("\(file): 'rules' must be an array") }
                for (index, element) in value.elements.enumerated() {
                    rules.append(try Self.rule(element, "\(file): rules[\(index)]"))
                }
            default: throw AuthzPolicyError("\(file): unexpected member '\(key)' (expected 'policy' and 'rules')")
            }
        }
        self.init(policy: policy, rules: rules)
    }

    private static func decision(_ value: JSON, _ what: String) throws(AuthzPolicyError) -> Decision {
        guard let text = value.stringValue, let decision = Decision(rawValue: text) else {
            throw AuthzPolicyError("\(what) must be \"allow\" or \"deny\"")
        }
        return decision
    }

    private static func rule(_ value: JSON, _ what: String) throws(AuthzPolicyError) -> Rule {
        guard value.isObject else { throw AuthzPolicyError("\(what) must be an object") }
        var match: String?
        var policy: Decision?
        var format = Format.exact
        for (key, member) in value.members {
            switch key {
            case "match":
                guard let text = member.stringValue else { throw AuthzPolicyError("\(what).match must be a string") }
                // QEMU's C strings would end the pattern there: a rule that cannot mean what it
                // says is refused.
                guard !text.utf8.contains(0) else {
                    throw AuthzPolicyError("\(what).match must not contain NUL (\\u0000)")
                }
                match = text
            case "policy": policy = try decision(member, "\(what).policy")
            case "format":
                guard let text = member.stringValue, let parsed = Format(rawValue: text) else {
                    throw AuthzPolicyError("\(what).format must be \"exact\" or \"glob\"")
                }
                format = parsed
            default: throw AuthzPolicyError("\(what): unexpected member '\(key)' (expected match, policy, format)")
            }
        }
        guard let match else { throw AuthzPolicyError("\(what) lacks 'match'") }
        guard let policy else { throw AuthzPolicyError("\(what) lacks 'policy'") }
        return Rule(match: match, policy: policy, format: format)
    }
}

/// A policy file that cannot be used: the message names the file and the problem.
package struct AuthzPolicyError: Error, CustomStringConvertible, Sendable {
    package let description: String
    package init(_ description: String) { self.description = description }
}

/// GLib's `g_pattern_match_simple` (glib/gpattern.c, `g_pattern_ph_match`), which QEMU's
/// authz-list uses for `glob` rules: `*` matches any run of characters (also none), `?` exactly
/// one UTF-8 character (as many bytes as its lead byte says, `g_utf8_skip`), every other byte
/// itself; there is no escape and no bracket expression.
enum GlobPattern {
    static func matches(_ pattern: [UInt8], _ string: [UInt8]) -> Bool {
        var wildcardReached = false
        return match(pattern[...], string[...], &wildcardReached)
    }

    /// g_utf8_skip: the length of the UTF-8 sequence a byte starts.
    private static func skip(_ byte: UInt8) -> Int {
        switch byte {
        case 0xc0...0xdf: return 2
        case 0xe0...0xef: return 3
        case 0xf0...0xf7: return 4
        case 0xf8...0xfb: return 5
        case 0xfc...0xfd: return 6
        default: return 1
        }
    }

    /// The string after its first character (g_utf8_next_char), never past its end.
    private static func nextCharacter(_ string: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        string.dropFirst(min(skip(string.first!), string.count))
    }

    private static func match(
        _ pattern: ArraySlice<UInt8>, _ string: ArraySlice<UInt8>, _ wildcardReached: inout Bool
    ) -> Bool {
        var pattern = pattern
        var string = string
        while let character = pattern.popFirst() {
            switch character {
            case UInt8(ascii: "?"):
                guard !string.isEmpty else { return false }
                string = nextCharacter(string)
            case UInt8(ascii: "*"):
                wildcardReached = true
                var next: UInt8?
                repeat {
                    next = pattern.popFirst()
                    if next == UInt8(ascii: "?") {
                        guard !string.isEmpty else { return false }
                        string = nextCharacter(string)
                    }
                } while next == UInt8(ascii: "*") || next == UInt8(ascii: "?")
                guard let literal = next else { return true }
                repeat {
                    var nextWildcardReached = false
                    while string.first != literal {
                        guard !string.isEmpty else { return false }
                        string = nextCharacter(string)
                    }
                    string = string.dropFirst()
                    if match(pattern, string, &nextWildcardReached) { return true }
                    // The pattern up to its next wildcard matched here, the rest did not: a
                    // later start cannot do better (GLib's shortcut, kept for equal results).
                    if nextWildcardReached { return false }
                } while !string.isEmpty
                return false
            default:
                guard string.first == character else { return false }
                string = string.dropFirst()
            }
        }
        return string.isEmpty
    }
}
