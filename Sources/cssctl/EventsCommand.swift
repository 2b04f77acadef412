// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import ArgumentParser
import CSSModel
import JSONValues
import QMPTransport
import QMPWire

/// Subscribes to path events and prints them as they arrive, until a count, an idle timeout or
/// a signal ends it.
struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Subscribe to path events and print them as they arrive.",
        discussion: """
            Sends subscribe-path-events with the given filters (an absent one matches
            everything) and prints "subscribed: ID" to standard error. Then prints one
            line per event: with --format json the event as the server sent it, one
            JSON object per line (so '| jq' works live); with --format table a row.
            Ends with status 0 after --count events, after --timeout seconds without
            one, or on SIGINT or SIGTERM. Exit status 1: the server refused the
            subscription (CLASS: desc on standard error); 2: connection failure or
            the server hung up.

            With --resume FILE the position (the epoch and sequence of the last change
            whose events were all printed) is kept in FILE, replaced atomically (a
            temporary file, then rename) when the subscription starts, as changes
            complete and on exit (also after --count); a later run with the same FILE
            subscribes with 'since' and gets every change after it (or first a
            PATH_EVENTS_GAP saying which were missed), across a restart of cssctl or of
            cssd. When --count ends a change halfway, the position stays before it: a
            resumed run may print its first events again, never skip one.

            With --reconnect, a server that hangs up or cannot be reached is tried
            again (after 1 s, doubling to 30 s) until a signal ends the run, and the
            subscription resumes where it stopped (with --resume FILE, or in memory),
            so no change is missed while cssd restarts (with --state-dir).
            """)

    /// `--granularity`: a value of the schema's `PathEventGranularity`.
    struct Granularity: SchemaEnumArgument {
        static let schemaEnum = "PathEventGranularity"
        let rawValue: String
    }

    /// `--change`: a value of the schema's `PathEventChange`.
    struct Change: SchemaEnumArgument {
        static let schemaEnum = "PathEventChange"
        let rawValue: String
    }

    enum Format: String, CaseIterable, ExpressibleByArgument { case json, table }

    @Option(
        help:
            "unix:PATH, tcp:HOST:PORT or a socket path (default: $CSSD_SOCKET, else /run/cssd/qmp.sock when it exists, else ./cssd.sock)."
    )
    var socket: String?

    @Option(
        name: .customLong("tls-creds"),
        help:
            "TLS with a client certificate for tcp: sockets: a directory with ca-cert.pem, client-cert.pem, client-key.pem (QEMU's layout)."
    )
    var tlsCreds: String?

    @Flag(help: "Connect again when the server hangs up or cannot be reached, and resume (see the discussion).")
    var reconnect = false

    @Option(help: "Only changes of this chpid (cssid.chpid, e.g. 0.40); repeat for more.")
    var chpid: [String] = []

    @Option(help: "Only this subchannel (cssid.ssid.schno, e.g. 0.0.0003); repeat for more.")
    var subchannel: [String] = []

    @Option(
        help: ArgumentHelp(
            "Only chpids of this channel subsystem: the cssid in hex, as ids write it (0, fe).",
            discussion: "QMP takes it as a number (subscribe-path-events cssid 254 for fe).",
            valueName: "cssid"))
    var cssid: HexCSSID?

    @Option(help: "Only this kind of change; repeat for more.")
    var change: [Change] = []

    @Option(
        help:
            "chpid: one event per change; subchannel: one per subchannel it altered; both; guest: one per guest it reached."
    )
    var granularity: Granularity?

    @Option(help: "With --granularity guest: only this guest; repeat for more.")
    var guest: [String] = []

    @Option(help: "Most events the server holds for us while we do not read (default: the server's).")
    var queueLimit: Int?

    @Option(help: "json: each event line as received; table: aligned rows.")
    var format: Format = .json

    @Option(help: "Exit after this many events.")
    var count: Int?

    @Option(help: "Exit when no event came for this many seconds (0: wait forever).")
    var timeout: Double = 0

    @Option(help: "Keep the position in this file and resume from it (see the discussion).")
    var resume: String?

    func validate() throws {
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        guard timeout.isFinite, timeout >= 0, timeout <= Double(Int32.max / 1000) else {
            throw ValidationError("--timeout out of range")
        }
    }

    /// The subscribe-path-events request; members only for the filters given.
    func subscribeRequest(id: String, since: ResumePosition? = nil) -> String {
        var arguments: [(String, JSON)] = []
        if let granularity { arguments.append(("granularity", .string(granularity.rawValue))) }
        if !chpid.isEmpty { arguments.append(("chpids", .array(chpid.map { .string($0) }))) }
        if !guest.isEmpty { arguments.append(("guests", .array(guest.map { .string($0) }))) }
        if !subchannel.isEmpty { arguments.append(("subchannels", .array(subchannel.map { .string($0) }))) }
        if let cssid { arguments.append(("cssid", .integer(cssid.value))) }
        if !change.isEmpty { arguments.append(("changes", .array(change.map { .string($0.rawValue) }))) }
        if let queueLimit { arguments.append(("queue-limit", .integer(queueLimit))) }
        if let since {
            arguments.append(
                ("since", .object([("epoch", .string(since.epoch)), ("sequence", .integer(Int(since.sequence)))])))
        }
        var request: [(String, JSON)] = [("execute", .string("subscribe-path-events"))]
        if !arguments.isEmpty { request.append(("arguments", .object(arguments))) }
        request.append(("id", .string(id)))
        return JSON.object(request).serialized()
    }

    func run() throws {
        // Before connecting, so that a signal during the handshake also ends us cleanly.
        Interruption.install()
        do {
            try reportingFailures {
                do {
                    try watch()
                } catch is ClientFailure where Interruption.wasCaught {
                    throw Interrupted()  // e.g. a connect(2) that the signal cut short
                }
            }
        } catch is Interrupted {
            return  // SIGINT/SIGTERM: the normal way to stop watching
        }
    }

    private func watch() throws {
        let address = try QMPAddress.server(socket)
        let credentials = try loadClientCredentials(tlsCreds)
        // The position is tracked whenever it may be needed again: for the file, or to resume
        // after a reconnection.
        let position = resume != nil || reconnect ? try ResumeFile(path: resume) : nil
        var printed = 0
        var backoff: Int64 = 1000
        var header = format == .table
        while true {
            do {
                let session = EventSession(try QMPClientConnection(connectingTo: address, tls: credentials))
                try session.handshake()
                try subscribe(session, position: position)
                backoff = 1000
                if header {
                    try StandardOutput.writeLine(EventTable.header)
                    header = false
                }
                try session.stream(
                    format: format, count: count, idleMilliseconds: Int64((timeout * 1000).rounded(.up)),
                    resume: position, printed: &printed)
                return
            } catch let failure as ClientFailure where reconnect && !Interruption.wasCaught {
                printError("\(failure); connecting again in \(backoff / 1000) s")
                _ = try Interruption.wait(for: -1, events: 0, deadline: Interruption.now() + backoff)
                backoff = min(backoff * 2, 30_000)
            }
        }
    }

    /// subscribe-path-events, from `position` when it has one. Without one, the journal's newest
    /// change is where it starts (asked first, then given as 'since', so nothing falls between),
    /// and that is the position saved.
    private func subscribe(_ session: EventSession, position: ResumeFile?) throws {
        var since = position?.position
        if let position, since == nil {
            let id = "cssctl-journal"
            let journal = try session.execute(#"{"execute": "query-path-event-journal", "id": "\#(id)"}"#, id: id)
            if let epoch = journal["return"]?["epoch"]?.stringValue,
                let newest = journal["return"]?["newest"]?.intValue,
                newest >= 0
            {
                let start = ResumePosition(epoch: epoch, sequence: UInt64(newest))
                try position.start(at: start)
                since = start
            }
        }
        let id = "cssctl-subscribe"
        let reply = try session.execute(subscribeRequest(id: id, since: since), id: id)
        if let error = reply["error"] {
            printError(qmpErrorText(error))
            throw Exit.errorReply
        }
        printError("subscribed: \(reply["return"]?["subscription"]?.serialized() ?? "?")")
    }
}

/// A cssid on cssctl's command line: hex, as in every id (`fe` of `fe.0.0000`, `0x` allowed),
/// 0..ff. QMP's `cssid` arguments are numbers; the conversion happens here, once.
struct HexCSSID: ExpressibleByArgument {
    let value: Int

    init?(argument: String) {
        guard let value = Hex.prefixedNumber(argument), value <= 0xff else { return nil }
        self.value = value
    }

    static var defaultCompletionKind: CompletionKind { .list(["0", "fe"]) }
}
