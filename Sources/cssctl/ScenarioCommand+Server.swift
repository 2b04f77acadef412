// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import ArgumentParser
import JSONValues

#if canImport(Glibc)
import Glibc
#endif

extension ScenarioCommand {
    /// `cssctl scenario play FILE [--clock model|wall] [--watch]`: scenario-load with the
    /// file's text, then scenario-play.
    struct Play: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load a scenario file into cssd and play it (on the model backend).",
            discussion: """
                Sends the file's text with scenario-load (checked by the server against its
                running topology: a refusal prints FILE:LINE:COLUMN: REASON, exit status 1),
                then scenario-play, and prints the status. With --watch, then prints the path
                events and the progress until the scenario ends (as 'scenario watch').
                """)

        @OptionGroup var server: ConnectionOptions

        @Argument(help: "The scenario file ('-' for standard input).")
        var file: String

        enum Clock: String, CaseIterable, ExpressibleByArgument { case model, wall }

        @Option(help: "model (as fast as possible, deterministic) or wall (offsets in ms); default: the file's.")
        var clock: Clock?

        @Flag(help: "Print events and progress until the scenario ends.")
        var watch = false

        func run() throws {
            let text = try readText(file)
            let session = try ScenarioSession(server)
            let loaded = try session.call("scenario-load", [("scenario", .string(text))])
            if case .failure(let error) = loaded {
                printError("\(file):\(error.error["desc"]?.stringValue ?? qmpErrorText(error.error))")
                throw Exit.errorReply
            }
            // Subscribed before playing: in model time the run may be over before the reply.
            if watch { try session.subscribe() }
            let played = try session.call("scenario-play", clock.map { [("clock", .string($0.rawValue))] } ?? [])
            let status = try session.require(played)
            writeOutput(ScenarioSession.describe(status) + "\n")
            // This connection was open when the run started: its SCENARIO_ENDED will come.
            if watch { try session.watch(runSeen: true) }
        }
    }

    /// `cssctl scenario watch`: path events and progress until the scenario ends.
    struct Watch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print path events and a scenario's progress until it ends.",
            discussion: """
                Subscribes to path events (one line each: the sequence, chpid and change) and
                polls query-scenario, printing a line whenever its progress changes. Ends when
                the scenario is no longer playing or paused: exit status 0 when it finished or
                was stopped, 1 when a step was refused (the failure on standard error).
                """)

        @OptionGroup var server: ConnectionOptions

        func run() throws {
            let session = try ScenarioSession(server)
            try session.subscribe()
            try session.watch()
        }
    }

    /// `cssctl scenario stop`: scenario-stop, and where it stopped.
    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop the scenario cssd is playing; prints where it stopped.")

        @OptionGroup var server: ConnectionOptions

        func run() throws {
            let session = try ScenarioSession(server)
            writeOutput(ScenarioSession.describe(try session.require(try session.call("scenario-stop"))) + "\n")
        }
    }
}

/// One negotiated connection for the scenario subcommands: calls by id, events printed as
/// they come between the replies.
private final class ScenarioSession {
    let connection: QMPClientConnection
    private var nextID = 0
    private var printsEvents = false
    /// SCENARIO_ENDED's data, once it came on this connection.
    private var ended: JSON?

    init(_ options: ConnectionOptions) throws {
        connection = try reportingFailures {
            let connection = try QMPClientConnection(
                connectingTo: options.address(), replyTimeoutMilliseconds: options.waitMilliseconds,
                tls: options.tlsCredentials())
            _ = try connection.readGreeting()
            try connection.negotiate()
            return connection
        }
    }

    /// The reply's return value, or its error object.
    func call(_ command: String, _ arguments: [(String, JSON)] = []) throws -> Result<JSON, ScenarioReplyError> {
        nextID += 1
        let id = "cssctl-scenario-\(nextID)"
        var request: [(String, JSON)] = [("execute", .string(command))]
        if !arguments.isEmpty { request.append(("arguments", .object(arguments))) }
        request.append(("id", .string(id)))
        return try reportingFailures {
            try connection.writeAll(JSON.object(request).serialized() + "\n")
            while true {
                let (_, message) = try connection.nextJSONLine()
                if message["event"] != nil {
                    take(event: message)
                    continue
                }
                guard message["id"]?.stringValue == id else { continue }
                if let error = message["error"] { return .failure(ScenarioReplyError(error: error)) }
                return .success(message["return"] ?? .emptyObject())
            }
        }
    }

    /// The value of a reply that must succeed; an error reply is printed, exit status 1.
    func require(_ reply: Result<JSON, ScenarioReplyError>) throws -> JSON {
        switch reply {
        case .success(let value): return value
        case .failure(let failure):
            printError(qmpErrorText(failure.error))
            throw Exit.errorReply
        }
    }

    /// Path events (granularity chpid) from now on, printed as they come with later replies.
    func subscribe() throws {
        _ = try require(try call("subscribe-path-events", [("granularity", .string("chpid"))]))
        printsEvents = true
    }

    private func take(event message: JSON) {
        if message["event"]?.stringValue == "SCENARIO_ENDED" {
            ended = message["data"] ?? .emptyObject()
        } else if printsEvents {
            Self.printEvent(message)
        }
    }

    /// Reads events until SCENARIO_ENDED (which follows the run's path events).
    private func awaitEnd() throws {
        try reportingFailures {
            while ended == nil {
                let (_, message) = try connection.nextJSONLine()
                if message["event"] != nil { take(event: message) }
            }
        }
    }

    /// Events (after `subscribe`) and progress until the scenario is neither playing nor paused.
    /// - Parameter runSeen: the run started while this connection was open.
    func watch(runSeen: Bool = false) throws {
        var last = ""
        var runSeen = runSeen
        while true {
            let status = try require(try call("query-scenario"))
            let state = status["state"]?.stringValue ?? "idle"
            if state == "playing" || state == "paused" {
                runSeen = true
            } else if runSeen {
                // Its last path events come before SCENARIO_ENDED: printed before the end.
                try awaitEnd()
            }
            let line = Self.describe(status)
            if line != last {
                writeOutput(line + "\n")
                last = line
            }
            guard state == "playing" || state == "paused" else {
                if state == "failed" {
                    printError("cssctl: scenario failed: \(status["failure"]?.stringValue ?? "?")")
                    throw Exit.errorReply
                }
                return
            }
            // A pipe's reader (a test, `| grep`) sees each line as it comes.
            fflush(nil)
            // Progress is polled; events come as they are published, read with each reply.
            usleep(200_000)
        }
    }

    /// `NAME: STATE, PLAYED/TOTAL steps[, last STEP][, next STEP]`.
    static func describe(_ status: JSON) -> String {
        let name = status["name"]?.stringValue ?? "(no scenario)"
        var text =
            "\(name): \(status["state"]?.stringValue ?? "?"), \(status["played"]?.intValue ?? 0)/\(status["total"]?.intValue ?? 0) steps"
        if let clock = status["clock"]?.stringValue { text += " (\(clock) time)" }
        if let last = status["last-step"]?.stringValue { text += ", last \(last)" }
        if let next = status["next-step"]?.stringValue { text += ", next \(next)" }
        if let failure = status["failure"]?.stringValue { text += ": \(failure)" }
        return text
    }

    static func printEvent(_ message: JSON) {
        guard let data = message["data"] else { return }
        let sequence = data["sequence"]?.intValue.map(String.init) ?? "-"
        let chpid = data["chpid"]?.stringValue ?? ""
        let change = data["change"]?.stringValue ?? ""
        writeOutput("event \(sequence) \(message["event"]?.stringValue ?? "?") \(chpid) \(change)\n")
    }
}

/// An error reply of cssd (its `error` object). Used on the one thread of cssctl.
private struct ScenarioReplyError: Error, @unchecked Sendable {
    let error: JSON
}
