// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import QMPWire

/// The command and event schema of the files under API/, compiled in as values at build time
/// (`embedded()`; api-embed reads and checks the files, as QEMU's qapi-gen emits its schema as
/// C data): nothing reads schema text at run time. `init(documents:)` reads text, for tests.
///
/// API/ is the single source of truth: the server validates arguments against it, answers
/// introspection from it, and the Markdown docs in API/ are generated from it. The format is
/// QAPI's, written as JSON: `"*name"` marks an optional member, `["T"]` an array of T, and a
/// member is either a type or `{"type": T, "doc": TEXT, "default": VALUE}`. Beyond QAPI, an
/// `alias` names a built-in for a kind of value (ids: `{"alias": "ChannelPathID", "type": "str"}`),
/// which the wire and introspection see as the built-in and generated code as its Swift type;
/// `"swift"` on an enum or alias names the existing Swift type it is (CSSModel's `VaryState`);
/// a document's `"handlers"` names the Swift type implementing its commands (Sources/api-embed);
/// `"changes"` on a command says which state kept across restarts a successful call changes
/// (`ChangedState`: what `--state-dir` records for replay), and is not introspected (QEMU has
/// no such key: query-qmp-schema stays QEMU's).
package final class Schema: Sendable {
    package let modules: [Module]
    package let commands: [Command]
    package let events: [Event]
    package let structs: [String: Struct]
    package let enums: [String: Enum]
    package let aliases: [String: Alias]
    private let commandIndex: [String: Int]

    package struct Module: Sendable {
        package let name: String
        package let doc: String
    }

    /// The schema of API/*.json, compiled in: values generated at build time by api-embed
    /// (`compiled`), so nothing reads schema text at run time. A bad document fails the build.
    package static func embedded() -> Schema { compiled }

    /// What a schema is made of, in order: `compiled` (generated) and the reader build one.
    struct Values {
        var modules: [Module] = []
        var commands: [Command] = []
        var events: [Event] = []
        var structs: [Struct] = []
        var enums: [Enum] = []
        var aliases: [Alias] = []
    }

    /// The schema of checked values (members' `wireType` already resolved).
    init(values: Values) {
        modules = values.modules
        commands = values.commands
        events = values.events
        structs = Dictionary(uniqueKeysWithValues: values.structs.map { ($0.name, $0) })
        enums = Dictionary(uniqueKeysWithValues: values.enums.map { ($0.name, $0) })
        aliases = Dictionary(uniqueKeysWithValues: values.aliases.map { ($0.name, $0) })
        commandIndex = Dictionary(uniqueKeysWithValues: commands.enumerated().map { ($1.name, $0) })
    }

    package func command(named name: String) -> Command? {
        commandIndex[name].map { commands[$0] }
    }
}

/// A malformed schema document (`init(documents:)`; api-embed fails the build with the same
/// text), or a registry that does not match its schema (`ServerState`: the server does not start).
package struct SchemaError: Error, CustomStringConvertible, Sendable {
    package let description: String
    package init(_ description: String) { self.description = description }
}

/// A reference to a type: a built-in, a named struct or enum, or an array.
package indirect enum TypeRef: Sendable, Equatable, CustomStringConvertible {
    case builtin(Builtin)
    case named(String)
    case array(TypeRef)

    package var description: String {
        switch self {
        case .builtin(let builtin): return builtin.rawValue
        case .named(let name): return name
        case .array(let element): return "[\(element)]"
        }
    }
}

/// QAPI's built-in types.
package enum Builtin: String, Sendable, CaseIterable {
    case str, int, int8, int16, int32, int64, uint8, uint16, uint32, uint64, size, number, bool, any, null

    /// The JSON type QEMU's introspection reports.
    package var jsonType: String {
        switch self {
        case .str: return "string"
        case .number: return "number"
        case .bool: return "boolean"
        case .any: return "value"
        case .null: return "null"
        default: return "int"
        }
    }

    /// The integer range, for integer types.
    var range: ClosedRange<Int>? {
        switch self {
        case .int, .int64: return Int.min...Int.max
        case .int8: return Int(Int8.min)...Int(Int8.max)
        case .int16: return Int(Int16.min)...Int(Int16.max)
        case .int32: return Int(Int32.min)...Int(Int32.max)
        case .uint8: return 0...Int(UInt8.max)
        case .uint16: return 0...Int(UInt16.max)
        case .uint32: return 0...Int(UInt32.max)
        case .uint64, .size: return 0...Int.max
        default: return nil
        }
    }
}

/// A member of a struct, of a command's arguments or of an event's data.
package struct Member: Sendable {
    package let name: String
    package let type: TypeRef
    package let optional: Bool
    package let doc: String
    /// The value an absent optional member takes, as JSON text (the docs show it). The generated
    /// decoders hold it as a Swift value; only the ArgumentValidator (for handlers registered
    /// without a decoder: tests) parses it.
    package let defaultText: String?
    /// `type` with aliases replaced by their built-ins, resolved once when the schema loads:
    /// what the validator checks (a lookup per alias per request would be on the hot path).
    package internal(set) var wireType: TypeRef
}

package struct Struct: Sendable {
    package let name: String
    package internal(set) var members: [Member]
    package let doc: String
}

package struct Enum: Sendable {
    package let name: String
    package let values: [(name: String, doc: String)]
    package let doc: String
    package func contains(_ value: String) -> Bool { values.contains { $0.name == value } }
}

/// A name for a built-in type that stands for one kind of value (an id), e.g. `ChannelPathID`
/// for `str`. Requests and introspection see the built-in.
package struct Alias: Sendable {
    package let name: String
    package let base: Builtin
    package let doc: String
}

package struct Command: Sendable {
    package let name: String
    package let module: String
    package internal(set) var arguments: [Member]
    package let returns: TypeRef?
    package let doc: String
    /// May be sent with exec-oob.
    package let allowOOB: Bool
    /// Accepted in capabilities negotiation mode.
    package let negotiation: Bool
    /// A server option that must be on for the command to exist (QAPI's "if").
    package let condition: CommandCondition?
    /// The state a successful call changes that outlives the connection (the schema's
    /// "changes"); nil for a command that changes none (queries, negotiation, subscriptions,
    /// which belong to their connection, and `quit`).
    package let changes: ChangedState?
    /// The schema's `"allow-read-only"`: accepted on read-only connections although not a query,
    /// because it changes nothing outside its own connection (subscribing to path events, as
    /// libvirt's read-only connections register for events).
    package let allowsReadOnly: Bool
    /// Accepted on read-only connections: query-* commands, negotiation, and those the schema
    /// allows (`allowsReadOnly`).
    package var isReadOnly: Bool { name.hasPrefix("query-") || negotiation || allowsReadOnly }
}

/// A server option that a command exists only with (the schema's `"if"`, as QAPI's `if`
/// names a build condition; here it is a run-time flag of the same name). The generated schema
/// names the case, so a condition the schema uses and this type lacks does not build.
package enum CommandCondition: String, Sendable, Hashable, CaseIterable {
    /// `--allow-quit`: the `quit` command.
    case allowQuit = "allow-quit"
}

/// The state kept across restarts that a command changes (the schema's `"changes"` on a
/// command, cssd's own key, like `"handlers"`). With `--state-dir` a successful call of such a
/// command is recorded and replayed at start, when cssd owns that state (API/resume.md); a
/// test runs every command of the schema and checks that exactly these change the state.
package enum ChangedState: String, Sendable, CaseIterable {
    /// The channel subsystem behind the backend: paths, subchannels, the CRW queue. cssd owns
    /// it with the model (recorded); with linux-sysfs the host does and stays the truth (not
    /// recorded: the host keeps it, and what changed while cssd was down is read at start).
    case subsystem
    /// Guests, their passthrough devices (masks, counters, CRW queues) and strategies: cssd's
    /// own on every backend (recorded).
    case guests
    /// The model's channel-measurement facility (issue 21): enabled, each chpid's load and where
    /// its counters stand. cssd owns it with the model and keeps it as its whole state after
    /// each change (StateStore's `measurement` table), not replayed: a load takes effect at a
    /// boundary of the model clock, which a replay would not hit again. With linux-sysfs the
    /// host's `cm_enable` is the host's (not recorded).
    case measurement
}

package struct Event: Sendable {
    package let name: String
    package let module: String
    package let data: [Member]
    package let doc: String
}
