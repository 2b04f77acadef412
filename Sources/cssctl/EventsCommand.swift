// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import ArgumentParser
import CSSModel
import JSONValues
import QMPTransport
import QMPWire
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

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
            temporary file, then rename) as changes complete and on exit; a later run
            with the same FILE subscribes with 'since' and gets every change after it
            (or first a PATH_EVENTS_GAP saying which were missed), across a restart of
            cssctl or of cssd. When --count ends a change halfway, the position stays
            before it: a resumed run may print its first events again, never skip one.
            """)

    enum Granularity: String, CaseIterable, ExpressibleByArgument { case chpid, subchannel, both, guest }

    enum Change: String, CaseIterable, ExpressibleByArgument {
        case online, offline, configured, standby
        case permanentError = "permanent-error"
        case temporaryError = "temporary-error"
        case recovered, reset
    }

    enum Format: String, CaseIterable, ExpressibleByArgument { case json, table }

    @Option(help: "unix:PATH, tcp:HOST:PORT or a socket path (default: $CSSD_SOCKET, else ./cssd.sock).")
    var socket: String?

    @Option(help: "Only changes of this chpid (cssid.chpid, e.g. 0.40); repeat for more.")
    var chpid: [String] = []

    @Option(help: "Only this subchannel (cssid.ssid.schno, e.g. 0.0.0003); repeat for more.")
    var subchannel: [String] = []

    @Option(help: "Only chpids of this channel subsystem.")
    var cssid: Int?

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
        if let cssid { arguments.append(("cssid", .integer(cssid))) }
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
        let session = EventSession(try QMPClientConnection(connectingTo: address))
        try session.handshake()
        let id = "cssctl-subscribe"
        var position: ResumeFile?
        if let resume { position = try ResumeFile(path: resume) }
        let reply = try session.execute(subscribeRequest(id: id, since: position?.position), id: id)
        if let error = reply["error"] {
            printError(qmpErrorText(error))
            throw Exit.errorReply
        }
        printError("subscribed: \(reply["return"]?["subscription"]?.serialized() ?? "?")")
        if format == .table { try StandardOutput.writeLine(EventTable.header) }
        try session.stream(
            format: format, count: count, idleMilliseconds: Int64((timeout * 1000).rounded(.up)), resume: position)
    }
}

/// A place in cssd's history of path changes: the epoch and the sequence number of the last
/// change seen.
struct ResumePosition: Equatable {
    var epoch: String
    var sequence: UInt64
}

/// `--resume FILE`: the position, as `{"epoch": "...", "sequence": N}`, replaced atomically.
final class ResumeFile {
    let path: String
    /// The last complete change's position (saved), nil before the first event.
    private(set) var position: ResumePosition?
    /// The change being printed (complete once a later one, a gap report or the end comes).
    private var current: ResumePosition?

    /// Reads FILE; an absent file means no position yet.
    init(path: String) throws {
        self.path = path
        guard let file = fopen(path, "r") else {
            guard errno == ENOENT else { throw ClientFailure("--resume \(path): \(String(cString: strerror(errno)))") }
            return
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        guard let value = JSON.parse(String(decoding: bytes, as: UTF8.self)), let epoch = value["epoch"]?.stringValue,
            let sequence = value["sequence"]?.intValue, sequence >= 0
        else {
            throw ClientFailure(
                "--resume \(path): not a position ({\"epoch\": ..., \"sequence\": N}); remove it to start afresh")
        }
        position = ResumePosition(epoch: epoch, sequence: UInt64(sequence))
    }

    /// Notes an event printed; the change before it is complete when its sequence moved on.
    func saw(_ event: JSON) throws {
        guard let data = event["data"], let epoch = data["epoch"]?.stringValue,
            let sequence = data["sequence"]?.intValue
        else { return }
        let seen = ResumePosition(epoch: epoch, sequence: UInt64(sequence))
        if event["event"]?.stringValue == "PATH_EVENTS_GAP" {
            // The gap report is the whole of its position.
            current = nil
            try save(seen)
            return
        }
        if let current, current != seen { try save(current) }
        current = seen
    }

    /// The stream ended between changes (idle, signal, hang-up): the last one is complete.
    func finish(complete: Bool) throws {
        if complete, let current { try save(current) }
    }

    private func save(_ new: ResumePosition) throws {
        guard new != position else { return }
        position = new
        let position = JSON.object([("epoch", .string(new.epoch)), ("sequence", .integer(Int(new.sequence)))])
        let text = position.serialized() + "\n"
        let temporary = path + ".tmp"
        guard let file = fopen(temporary, "w") else {
            throw ClientFailure("--resume \(temporary): \(String(cString: strerror(errno)))")
        }
        let bytes = Array(text.utf8)
        let written = fwrite(bytes, 1, bytes.count, file)
        guard fclose(file) == 0, written == bytes.count, rename(temporary, path) == 0 else {
            throw ClientFailure("--resume \(path): \(String(cString: strerror(errno)))")
        }
    }
}

// MARK: Session

/// A subscriber's connection. Every wait goes through `Interruption.wait` rather than
/// QMPClientConnection's blocking reads, which retry EINTR and so would ignore SIGINT.
struct EventSession {
    let connection: QMPClientConnection

    /// How long the greeting and each reply may take.
    static let replyTimeoutMilliseconds: Int64 = 60_000

    init(_ connection: QMPClientConnection) { self.connection = connection }

    /// Reads the greeting and leaves capabilities negotiation mode.
    func handshake() throws {
        let greeting = try message(try nextReplyLine(deadline: Self.replyDeadline()))
        guard let qmp = greeting["QMP"], qmp.isObject else {
            let text = greeting.serialized().prefix(200)
            throw ClientFailure("\(connection.address): expected a QMP greeting, got: \(text)")
        }
        let id = "cssctl-negotiate"
        let reply = try execute(#"{"execute": "qmp_capabilities", "id": "\#(id)"}"#, id: id)
        if let error = reply["error"] {
            throw ClientFailure("\(connection.address): capabilities negotiation failed: \(qmpErrorText(error))")
        }
    }

    /// Sends a request and returns its reply, skipping events that come first.
    func execute(_ request: String, id: String) throws -> JSON {
        try connection.writeAll(request + "\n")
        let deadline = Self.replyDeadline()
        while true {
            let reply = try message(try nextReplyLine(deadline: deadline))
            if reply["event"] != nil { continue }
            guard reply["id"]?.stringValue == id else {
                throw ClientFailure("\(connection.address): unexpected reply: \(reply.serialized().prefix(200))")
            }
            return reply
        }
    }

    /// Prints events until `count` of them, `idleMilliseconds` (> 0) without one, or a signal.
    func stream(format: EventsCommand.Format, count: Int?, idleMilliseconds: Int64, resume: ResumeFile? = nil) throws {
        var printed = 0
        // After an idle timeout the last change printed is complete (a change's events are
        // written together); after --count, a signal or a hang-up it may not be: its position is
        // not saved, so a resumed run may repeat events but never skips one.
        var idle = false
        defer { try? resume?.finish(complete: idle) }
        while count.map({ printed < $0 }) ?? true {
            let deadline = idleMilliseconds > 0 ? Interruption.now() + idleMilliseconds : nil
            guard let line = try nextLine(deadline: deadline) else {
                idle = true
                return
            }
            // The line is a view into the receive buffer: use it before the next read.
            guard case .success(let event) = JSONValueParser.parse(line, careful: false),
                event["event"]?.stringValue != nil
            else { continue }
            switch format {
            case .json: try StandardOutput.writeLine(line)
            case .table: try StandardOutput.writeLine(EventTable.row(for: event))
            }
            try resume?.saw(event)
            printed += 1
        }
    }

    /// The next line; nil when `deadline` (monotonic ms) passes first, for the caller to judge.
    private func nextLine(deadline: Int64?) throws -> UnsafeRawBufferPointer? {
        while true {
            if let line = connection.takeLine() { return line }
            guard try Interruption.wait(for: connection.fd, events: Int16(POLLIN), deadline: deadline) else {
                return nil
            }
            // Throws when the server hung up.
            _ = try connection.fill(blocking: false)
        }
    }

    private func nextReplyLine(deadline: Int64) throws -> UnsafeRawBufferPointer {
        guard let line = try nextLine(deadline: deadline) else {
            throw ClientFailure("\(connection.address): no answer within \(Self.replyTimeoutMilliseconds / 1000) s")
        }
        return line
    }

    private func message(_ line: UnsafeRawBufferPointer) throws(ClientFailure) -> JSON {
        guard case .success(let value) = JSONValueParser.parse(line, careful: false), value.isObject else {
            let text = String(decoding: line, as: UTF8.self).prefix(200)
            throw ClientFailure("\(connection.address): the server sent something that is not a JSON object: \(text)")
        }
        return value
    }

    private static func replyDeadline() -> Int64 { Interruption.now() + replyTimeoutMilliseconds }
}

// MARK: Signals

/// Thrown when SIGINT or SIGTERM arrived: the command then ends with status 0.
struct Interrupted: Error {}

/// SIGINT and SIGTERM handlers that record the signal and wake poll(2) through a pipe. The
/// pipe closes the window between checking the flag and entering poll, where a signal would
/// otherwise wait for the next event; without SA_RESTART, a blocked write returns EINTR too.
enum Interruption {
    private static let caught = Atomic<Bool>(false)
    private static let wakeWriteEnd = Atomic<Int32>(-1)
    private static let wakeReadEnd = Atomic<Int32>(-1)

    static var wasCaught: Bool { caught.load(ordering: .relaxed) }

    static func install() {
        var ends: [Int32] = [-1, -1]
        if pipe(&ends) == 0 {
            for end in ends {
                _ = fcntl(end, F_SETFD, FD_CLOEXEC)
                // A full pipe must not block the handler; one pending byte is enough to wake us.
                _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
            }
            wakeReadEnd.store(ends[0], ordering: .relaxed)
            wakeWriteEnd.store(ends[1], ordering: .relaxed)
        }
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            let saved = errno  // the interrupted code may be about to read errno
            Interruption.caught.store(true, ordering: .relaxed)
            var byte: UInt8 = 0
            _ = write(Interruption.wakeWriteEnd.load(ordering: .relaxed), &byte, 1)
            errno = saved
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0  // no SA_RESTART: blocking calls return EINTR
        sigaction(SIGINT, &action, nil)
        sigaction(SIGTERM, &action, nil)
    }

    /// Waits until `fd` is ready (true) or `deadline` (monotonic ms, nil: never) passes (false);
    /// throws `Interrupted` once a signal was caught.
    static func wait(for fd: Int32, events: Int16, deadline: Int64?) throws -> Bool {
        var fds = [
            pollfd(fd: fd, events: events, revents: 0),
            pollfd(fd: wakeReadEnd.load(ordering: .relaxed), events: Int16(POLLIN), revents: 0),
        ]
        while true {
            if wasCaught { throw Interrupted() }
            let timeout = deadline.map { Int32(clamping: max(0, $0 - now())) } ?? -1
            let n = poll(&fds, nfds_t(fds.count), timeout)
            if wasCaught { throw Interrupted() }
            if n == 0 { return false }
            if n > 0 && fds[0].revents != 0 { return true }
            if n < 0 && errno != EINTR { throw ClientFailure.system("poll") }
        }
    }

    /// Monotonic milliseconds, for deadlines.
    static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
    }
}

// MARK: Output

/// Standard output through write(2): each line goes out whole as soon as it is made.
enum StandardOutput {
    static func writeLine(_ text: String) throws {
        var line = text + "\n"
        try line.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
    }

    static func writeLine(_ bytes: UnsafeRawBufferPointer) throws {
        // One write for line and newline, so that a signal cannot split them.
        var line = [UInt8](bytes)
        line.append(UInt8(ascii: "\n"))
        try line.withUnsafeBytes { try write($0) }
    }

    private static func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(1, bytes.baseAddress! + offset, bytes.count - offset)
            if n > 0 {
                offset += n
                continue
            }
            guard n < 0 && errno == EINTR else { throw ClientFailure.system("write to standard output") }
            // Stop only between lines: a line begun is finished.
            if Interruption.wasCaught && offset == 0 { throw Interrupted() }
        }
    }
}

/// The --format table rendering.
enum EventTable {
    private static let widths = [12, 24, 6, 15, 21]

    static let header = row(["TIME", "EVENT", "CHPID", "CHANGE", "SUBCHANNEL/DEVNO", "DETAIL"])

    static func row(for event: JSON) -> String {
        let name = event["event"]?.stringValue ?? "?"
        let data = event["data"] ?? .emptyObject()
        let text = { (key: String) in data[key]?.stringValue ?? "-" }
        let detail: String
        switch name {
        case "CHANNEL_PATH_CHANGED":
            detail = "vary=\(text("vary")) configure=\(text("configure")) subchannels=\(number(data["subchannels"]))"
        case "SUBCHANNEL_PATHS_CHANGED":
            detail = ["pam", "pom", "lpm", "pnom"].map { "\($0)=\(hexMask(data[$0]))" }.joined(separator: " ")
        case "PATH_EVENTS_DROPPED":
            detail = "dropped=\(number(data["dropped"]))"
        case "PATH_EVENTS_GAP":
            detail = "reason=\(text("reason")) missed=\(number(data["first"]))..\(number(data["last"]))"
        case "GUEST_PATH_CHANGED":
            // The guest's view: its chpid in the CHPID column, the host's in the detail.
            let crw = data["crw"] != nil ? " crw=queued" : (data["crw-lost"]?.boolValue == true ? " crw=lost" : "")
            detail =
                "guest=\(text("guest")) host-chpid=\(text("host-chpid")) strategy=\(text("strategy")) "
                + "devices=\(number(data["devices"])) visible=\(number(data["visible"])) "
                + "notifications=\(number(data["notifications"]))\(crw)"
            return row([time(event["timestamp"]), name, text("guest-chpid"), text("change"), "-", detail])
        default:
            detail = data.count == 0 ? "-" : data.serialized()
        }
        return row([time(event["timestamp"]), name, text("chpid"), text("change"), device(data), detail])
    }

    /// Columns padded to their widths, at least one space apart; the last one is not padded.
    private static func row(_ columns: [String]) -> String {
        var line = ""
        for (index, column) in columns.enumerated() {
            line += column
            guard index < widths.count else { break }
            line += String(repeating: " ", count: max(1, widths[index] + 1 - column.count))
        }
        return line
    }

    private static func device(_ data: JSON) -> String {
        guard let subchannel = data["subchannel"]?.stringValue else { return "-" }
        guard let devno = data["devno"]?.stringValue, !devno.isEmpty else { return subchannel }
        return "\(subchannel)/\(devno)"
    }

    private static func number(_ value: JSON?) -> String { value?.intValue.map(String.init) ?? "-" }

    private static func hexMask(_ value: JSON?) -> String {
        guard let mask = value?.intValue else { return "--" }
        return Hex.string(mask, width: 2)
    }

    /// The event's timestamp as local HH:MM:SS.mmm (now, if it has none).
    private static func time(_ timestamp: JSON?) -> String {
        var seconds = time_t(timestamp?["seconds"]?.intValue ?? -1)
        var milliseconds = (timestamp?["microseconds"]?.intValue ?? 0) / 1000
        if seconds < 0 {
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            seconds = now.tv_sec
            milliseconds = now.tv_nsec / 1_000_000
        }
        var local = tm()
        localtime_r(&seconds, &local)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let millis = String(milliseconds)
        let fraction = String(repeating: "0", count: max(0, 3 - millis.count)) + millis
        return "\(two(local.tm_hour)):\(two(local.tm_min)):\(two(local.tm_sec)).\(fraction)"
    }
}
