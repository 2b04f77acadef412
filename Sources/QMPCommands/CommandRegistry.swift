// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import JSONValues
import QMPSchema
import QMPWire

/// Runs one command from its arguments object. Handlers run on the server's event loop, one at
/// a time.
///
/// The standard registry's handlers are generated (`schemaBound()`, from API/ by api-embed):
/// each checks and decodes the object into the command's typed arguments in one pass and calls
/// the method of the module's handler type that the generated protocol requires. Any other
/// handler gets the object validated against the schema first, defaults filled in.
package typealias CommandHandler = (JSON, CommandContext) throws(QMPError) -> CommandOutcome

/// The handlers, by command name. Every command in the schema has exactly one handler and
/// every handler a schema entry; `mismatches(with:)` checks both directions and the server
/// refuses to start (and a test fails) otherwise. For the embedded schema the build already
/// guarantees it: the registry is generated from the same files.
package struct CommandRegistry {
    package private(set) var handlers: [String: CommandHandler] = [:]
    /// The commands whose handler checks its arguments object itself (the generated decoders,
    /// QEMU's checks and texts): the dispatcher does not run the ArgumentValidator first.
    package private(set) var checkingArguments: Set<String> = []

    package init() {}

    /// - Parameter checksArguments: whether `handler` checks the arguments against the schema
    ///   itself; when false (the default) the dispatcher validates them, filling in defaults, first.
    package mutating func register(
        _ name: String, checksArguments: Bool = false, _ handler: @escaping CommandHandler
    ) {
        precondition(handlers[name] == nil, "command \(name) registered twice")
        handlers[name] = handler
        if checksArguments { checkingArguments.insert(name) }
    }

    /// Problems between the schema and the handlers; empty when they match.
    package func mismatches(with schema: Schema) -> [String] {
        var problems: [String] = []
        for command in schema.commands where handlers[command.name] == nil {
            problems.append("command '\(command.name)' is in the schema but has no handler")
        }
        for name in handlers.keys.sorted() where schema.command(named: name) == nil {
            problems.append("handler '\(name)' has no schema entry")
        }
        return problems
    }

    /// The registry with every command of this server.
    package static func standard() -> CommandRegistry { schemaBound() }
}
