// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import ArgumentParser
import JSONValues
import QMPSchema

/// Runs one QMP command: connect, greeting, negotiation, the command, its reply.
struct ExecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run one QMP command and print its result (the default subcommand).",
        discussion: """
            Each ARGUMENT is key=value. The value is taken as JSON when it is valid
            JSON (numbers, true, false, null, arrays, objects, "quoted strings"),
            otherwise as a string; arguments the command's schema declares as strings
            keep their text, so chpid=0.40 sends "0.40" (not the number 0.4).
            Dotted keys build nested objects: a.b=1 a.c=x gives {"a": {"b": 1, "c": "x"}}.
            Prints the "return" value indented, or with --raw the reply line as received.
            On an error reply prints CLASS: desc to standard error and exits with status 1;
            on a connection or protocol failure exits with status 2.
            """)

    @OptionGroup var server: ConnectionOptions

    @Flag(help: "Print the whole reply line as received.")
    var raw = false

    @Option(help: "Send this request instead (an id is added when it has none).")
    var json: String?

    @Flag(help: "Skip qmp_capabilities, to talk to a server still in negotiation mode.")
    var noNegotiate = false

    // Shell completion offers cssd's commands (the schema compiled in), as qmp-shell does.
    @Argument(
        help: "The QMP command, e.g. query-version.",
        completion: .list(Schema.embedded().commands.map(\.name)))
    var command: String?

    @Argument(help: "The command's arguments, as key=value.")
    var arguments: [String] = []

    func validate() throws {
        if json != nil {
            guard command == nil else { throw ValidationError("give either --json or a COMMAND, not both") }
        } else {
            guard command != nil else { throw ValidationError("missing COMMAND (or --json REQUEST)") }
        }
    }

    /// The request text and the id its reply will carry (nil: the first reply is ours).
    private func request() throws -> (text: String, id: JSON?) {
        let id = JSON.string("cssctl")
        if let json {
            // A request jansson cannot read (QEMU's single quotes, deliberate garbage to see the
            // server's error) still goes out verbatim; its reply then has no id to match.
            guard let value = JSON.parse(json), value.isObject else { return (json, nil) }
            if let given = value["id"] { return (json, given) }
            value["id"] = id
            return (value.serialized(), id)
        }
        let members: JSON
        do {
            members = try ArgumentSyntax.arguments(arguments, stringKeys: Self.stringArguments(of: command!))
        } catch {
            throw ValidationError(error.description)
        }
        var request: [(String, JSON)] = [("execute", .string(command!))]
        if members.count > 0 { request.append(("arguments", members)) }
        request.append(("id", id))
        return (JSON.object(request).serialized(), id)
    }

    /// Ids match as values: a server may print the real 1.5e3 back as 1500 (QEMU does).
    static func sameID(_ a: JSON, _ b: JSON) -> Bool {
        if let x = a.doubleValue, let y = b.doubleValue { return x == y }
        return a.isEqual(to: b)
    }

    func run() throws {
        let (text, id) = try request()
        let wait = server.waitMilliseconds
        let (line, reply) = try reportingFailures { () throws -> (String, JSON) in
            let connection = try QMPClientConnection(
                connectingTo: server.address(),
                replyTimeoutMilliseconds: wait, tls: server.tlsCredentials())
            try connection.readGreeting()
            if !noNegotiate { try connection.negotiate() }
            // The newline ends a trailing bare token (`--json garbage`), which a QMP lexer would
            // otherwise keep waiting to complete; between values it is plain whitespace.
            try connection.writeAll(text + "\n")
            while true {
                let (line, reply) = try connection.nextJSONLine()
                if reply["event"] != nil { continue }
                guard reply["return"] != nil || reply["error"] != nil else {
                    throw ClientFailure(
                        "\(connection.address): reply has neither return nor error: \(line.prefix(200))")
                }
                guard let id else { return (line, reply) }
                guard let replyID = reply["id"] else {
                    // Only an unreadable request should get an id-less reply; show it rather than wait.
                    printError("cssctl: warning: the reply carries no id")
                    return (line, reply)
                }
                if Self.sameID(replyID, id) { return (line, reply) }
            }
        }
        if raw { print(line) }
        if let error = reply["error"] {
            printError(qmpErrorText(error))
            throw Exit.errorReply
        }
        if !raw { print(reply["return"]!.serialized(pretty: true)) }
    }

    /// Arguments of a cssd command declared as strings or enums (ids like "0.40" look like numbers).
    static func stringArguments(of command: String) -> Set<String> {
        let schema = Schema.embedded()
        guard let definition = schema.command(named: command) else { return [] }
        return Set(
            definition.arguments.filter { member in
                switch member.type {
                case .builtin(let builtin): return builtin == .str
                case .named(let name): return schema.enums[name] != nil || schema.aliases[name]?.base == .str
                case .array: return false
                }
            }.map(\.name))
    }
}
