// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import JSONValues
import QMPTransport
import QMPWire

#if canImport(Glibc)
import Glibc
#endif

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

    /// Prints events until `count` of them in all (`printed` counts them, across reconnections),
    /// `idleMilliseconds` (> 0) without one, or a signal; throws when the server hangs up.
    func stream(
        format: EventsCommand.Format, count: Int?, idleMilliseconds: Int64, resume: ResumeFile? = nil,
        printed: inout Int
    ) throws {
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
            guard try resume?.admit(event) ?? true else { continue }  // printed before a reconnection
            switch format {
            case .json: try StandardOutput.writeLine(line)
            case .table: try StandardOutput.writeLine(EventTable.row(for: event))
            }
            printed += 1
        }
    }

    /// The next line; nil when `deadline` (monotonic ms) passes first, for the caller to judge.
    private func nextLine(deadline: Int64?) throws -> UnsafeRawBufferPointer? {
        while true {
            if let line = connection.takeLine() { return line }
            // First what is there already; with TLS this also sends what the session has to send
            // (the handshake's messages), which the server waits for before it says anything.
            if try connection.fill(blocking: false) > 0 { continue }
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
