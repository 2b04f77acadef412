// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import JSONValues
import PathChangePipeline
import PathEvents
import Testing

@testable import QMPCommands
@testable import QMPSchema
@testable import QMPWire

/// The generated decoders check and decode the arguments in one pass, without the
/// ArgumentValidator before them. Against it as the reference (QEMU's visitor order and texts),
/// over arguments made from the schema for every command: valid ones, each member missing, of
/// the wrong type, out of range, not an enum value, with a bad list element or nested member,
/// unexpected keys, and an id error beside a later type error (which QEMU reports first).
@Suite("Generated argument decoding")
struct ArgumentDecodingTests {
    static let schema = Schema.embedded()

    private final class Session: SessionControl {
        var isNegotiated: Bool { true }
        var isReadOnly: Bool { false }
        var origin: CommandOrigin { .connection(1) }
        func enterCommandMode(oob: Bool) {}
    }

    /// A fresh server whose registry's handlers check their arguments (`standard`), or whose
    /// handlers are the same but registered plainly, so that the dispatcher validates first.
    static func server(generatedChecks: Bool) throws -> ServerState {
        var registry = CommandRegistry()
        for (name, handler) in CommandRegistry.standard().handlers {
            registry.register(name, checksArguments: generatedChecks, handler)
        }
        return try ServerState(
            schema: schema, registry: registry, options: ServerOptions(conditions: [.allowQuit]),
            journal: PathEventJournal(capacity: 16, epoch: "00000000000000aa"))
    }

    /// The reply (or error) and the arguments object as the command left it (defaults filled).
    static func run(_ command: String, _ arguments: String, on server: ServerState) throws -> String {
        let request = try #require(JSON.parse(#"{"execute": "\#(command)", "arguments": \#(arguments)}"#))
        guard case .success(let checked) = QMPRequest.check(request, oobEnabled: false) else {
            Issue.record("bad request \(arguments)")
            return ""
        }
        let outcome: String
        switch Dispatcher.dispatch(checked, server: server, session: Session()) {
        case .success(.reply(let value)): outcome = "reply \(value.serialized())"
        case .success(.deferred(let work)):
            switch work.runInline() {
            case .success(let value): outcome = "deferred reply \(value.serialized())"
            case .failure(let error): outcome = "deferred error \(error.errorClass) \(error.desc)"
            }
        case .failure(let error): outcome = "error \(error.errorClass) \(error.desc)"
        }
        return outcome + " | arguments " + (checked.arguments?.serialized() ?? "none")
    }

    /// A valid value of a type, as JSON text (ids that parse; the command may still refuse them).
    static func sample(_ type: TypeRef) -> String {
        switch type {
        case .array(let element): return "[\(sample(element))]"
        case .builtin(let builtin):
            switch builtin {
            case .str: return #""x""#
            case .bool: return "true"
            case .number: return "1.5"
            case .any, .null: return "null"
            default: return "1"
            }
        case .named(let name):
            switch name {
            case "ChannelPathID": return #""0.40""#
            case "SubchannelID": return #""0.0.0001""#
            case "DeviceID": return #""0.0.0001""#
            default: break
            }
            if let alias = schema.aliases[name] { return sample(.builtin(alias.base)) }
            if let value = schema.enums[name] { return "\"\(value.values[0].name)\"" }
            let members = schema.structs[name]?.members.filter { !$0.optional } ?? []
            return "{" + members.map { "\"\($0.name)\": \(sample($0.type))" }.joined(separator: ", ") + "}"
        }
    }

    /// Values of the wrong kind, out of range or not in the enum, for a member of this type.
    static func wrong(_ type: TypeRef) -> [String] {
        var values = [#"{"k": 1}"#, "[]", #""s""#, "1", "-1", "2.5", "true", "null"]
        switch type {
        case .array(let element):
            values += ["[\(sample(element)), 1]", "[\(sample(element)), \"s\", {}]"] + wrong(element).map { "[\($0)]" }
        case .builtin(let builtin):
            values += ["256", "65536", "4294967296", "-129", "-32769", "-2147483649", "9223372036854775807"]
            if builtin == .any { values = [] }
        case .named(let name):
            if schema.enums[name] != nil { values.append(#""no-such-value""#) }
            if schema.aliases[name] != nil { values.append(#""zz""#) }
            if let value = schema.structs[name] {
                values.append("{}")
                for member in value.members {
                    for bad in wrong(member.type).prefix(4) {
                        values.append(#"{"\#(member.name)": \#(bad)}"#)
                    }
                }
                values.append(
                    String(sample(type).dropLast()) + (value.members.contains { !$0.optional } ? ", " : "")
                        + #""x": 1}"#)
            }
        }
        return values
    }

    static func cases(_ command: Command) -> [String] {
        let members = command.arguments
        func object(_ pairs: [(String, String)]) -> String {
            "{" + pairs.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
        }
        let full = members.map { ($0.name, sample($0.type)) }
        let required = members.filter { !$0.optional }.map { ($0.name, sample($0.type)) }
        var cases = ["{}", object(full), object(required), #"{"x": 1}"#, #"{"a": 1, "b": 2, "c": 3}"#]
        cases.append(object(full + [("extra", "1"), ("zz", "2")]))
        cases.append(object([("extra", "1")] + full))
        for (index, member) in members.enumerated() {
            var missing = full
            missing.remove(at: index)
            cases.append(object(missing))
            for bad in wrong(member.type) {
                var changed = full
                changed[index].1 = bad
                cases.append(object(changed))
                // A malformed id before this bad member: QEMU reports the member's error first.
                if let id = members.firstIndex(where: { schema.aliases[$0.type.description] != nil }), id < index {
                    changed[id].1 = #""zz""#
                    cases.append(object(changed))
                }
            }
        }
        return cases
    }

    @Test("the same reply, error text and filled arguments as validating first", arguments: schema.commands.map(\.name))
    func sameAsValidator(command: String) throws {
        let definition = try #require(Self.schema.command(named: command))
        // Both servers get the same requests in the same order, so their states stay the same.
        let checking = try Self.server(generatedChecks: true)
        let validating = try Self.server(generatedChecks: false)
        for arguments in Self.cases(definition) {
            let generated = try Self.run(command, arguments, on: checking)
            let validated = try Self.run(command, arguments, on: validating)
            #expect(generated == validated, "\(command) \(arguments)")
        }
    }

    @Test("the standard registry's handlers check their own arguments")
    func standardChecks() {
        let registry = CommandRegistry.standard()
        #expect(registry.checkingArguments == Set(Self.schema.commands.map(\.name)))
    }
}
