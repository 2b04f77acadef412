// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import QMPWire

#if canImport(Glibc)
import Glibc
#endif

/// An authorization policy in QEMU's `authz-list-file` format (authz/listfile.c, authz/list.c):
///
///     {"policy": "deny",
///      "rules": [{"match": "CN=mgmt*", "policy": "allow", "format": "glob"},
///                {"match": "CN=audit,O=Example,C=GB", "policy": "allow"}]}
///
/// Rules are tried in order and the first that matches decides; `policy` decides when none
/// does. `format` is `exact` (default: the whole identity, byte for byte) or `glob` (fnmatch(3)
/// with no flags, as QEMU's qauthz_list_is_allowed). For a TLS client the identity is its
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
    /// byte for byte (`exact`) or with fnmatch(3) in the C locale (`glob`), as
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
            case .glob:
                // A NUL-terminated copy: fnmatch reads C strings.
                let matched = (bytes + [0]).withUnsafeBufferPointer { subject in
                    subject.withMemoryRebound(to: CChar.self) { fnmatch(rule.match, $0.baseAddress!, 0) == 0 }
                }
                if matched { return rule.policy }
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
                // fnmatch and QEMU's C strings would end the pattern there: a rule that cannot
                // mean what it says is refused.
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
