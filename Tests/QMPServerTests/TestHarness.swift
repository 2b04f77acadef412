// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Foundation
import JSONValues
import Logging
import NIOCore
import QMPCommands
import QMPSchema
import QMPWire
import TestSupport

@testable import QMPServer

/// A client's side of one QMP conversation, whatever carries it: bytes out, lines in.
protocol QMPTestConnection: AnyObject {
    func send(_ bytes: [UInt8]) throws
    /// The next line (without CRLF), or nil at EOF; throws after `timeout` seconds.
    func readLine(timeout: Double) throws -> String?
}

extension QMPTestConnection {
    func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// The next message, parsed.
    func readMessage(timeout: Double = 10) throws -> JSON {
        guard let line = try readLine(timeout: timeout) else {
            throw TestClient.Failure(description: "connection closed")
        }
        guard let json = JSON.parse(line) else { throw TestClient.Failure(description: "not JSON: \(line)") }
        return json
    }

    /// Reads the greeting and negotiates.
    @discardableResult
    func handshake(oob: Bool = false) throws -> JSON {
        let greeting = try readMessage()
        try send(
            oob ? #"{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}"# : #"{"execute":"qmp_capabilities"}"#
        )
        let reply = try readMessage()
        guard reply["return"] != nil else { throw TestClient.Failure(description: "negotiation failed: \(reply)") }
        return greeting
    }

    /// Sends one request and returns the next message.
    func execute(_ request: String) throws -> JSON {
        try send(request)
        return try readMessage()
    }
}

/// The session transport: a `QMPSession` driven directly, no socket, no event loop. What it
/// writes is kept until read, so tests can also look at the raw output and the budget.
final class SessionConnection: QMPTestConnection {
    let session: QMPSession
    var output = ByteBuffer()

    init(server: ServerState, readOnly: Bool = false) {
        session = QMPSession(server: server, readOnly: readOnly)
        try! session.writeGreeting(into: &output)
    }

    convenience init(readOnly: Bool = false, conditions: Set<CommandCondition> = [], limits: WireLimits = WireLimits())
    {
        let server = try! ServerState.standard(options: ServerOptions(conditions: conditions, limits: limits))
        self.init(server: server, readOnly: readOnly)
    }

    /// Adds input and processes as much as `budget` allows.
    func feed(_ text: String, budget: Int = .max) -> QMPSession.Progress {
        var input = ByteBuffer(string: text)
        return session.receive(&input, into: &output, budget: budget)
    }

    /// Every whole line written so far, parsed; the output is consumed.
    func lines() -> [JSON] {
        let text = output.readString(length: output.readableBytes) ?? ""
        return text.split(separator: "\r\n").map { JSON.parse(String($0))! }
    }

    func send(_ bytes: [UInt8]) throws {
        var input = ByteBuffer(bytes: bytes)
        _ = session.receive(&input, into: &output, budget: .max)
    }

    func readLine(timeout: Double) throws -> String? {
        let view = output.readableBytesView
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
            throw TestClient.Failure(description: "no reply line (the session answers synchronously)")
        }
        let length = newline - view.startIndex + 1
        let line = output.readBytes(length: length)!
        return String(decoding: line.dropLast(2), as: UTF8.self)
    }
}

/// One test server reached over either transport: `.session` drives `QMPSession`s on one
/// shared `ServerState` (no socket), `.live` runs a `QMPServer` on temporary sockets (a unix
/// socket, optionally TCP on 127.0.0.1 port 0 and a read-only unix socket) and connects
/// `TestClient`s. The same test body runs over both.
final class QMPTestServer: @unchecked Sendable {
    enum Transport: String, CaseIterable, Sendable, CustomStringConvertible {
        case session, live
        var description: String { rawValue }
    }

    let transport: Transport
    let directory = TemporaryDirectory()
    /// The live server (nil for the session transport).
    private(set) var server: QMPServer?
    private var state: ServerState?
    private var serving: Task<Void, Never>?

    var socketPath: String { directory.file("qmp.sock") }
    var readOnlySocketPath: String { directory.file("ro.sock") }

    private init(_ transport: Transport) { self.transport = transport }

    /// Starts a server with `options` over `transport`. Live only: `readOnly` adds the
    /// read-only listener, `tcp` a TCP one, `highWatermark` sets the output mark (low: a quarter).
    static func start(
        _ transport: Transport, options: ServerOptions = ServerOptions(), readOnly: Bool = false, tcp: Bool = false,
        highWatermark: Int = 256 * 1024
    ) async throws -> QMPTestServer {
        let harness = QMPTestServer(transport)
        switch transport {
        case .session:
            harness.state = try ServerState.standard(options: options)
        case .live:
            var listeners = [Listener(.unix(path: harness.socketPath))]
            if tcp { listeners.append(Listener(.tcp(host: "127.0.0.1", port: 0))) }
            if readOnly { listeners.append(Listener(.unix(path: harness.readOnlySocketPath), readOnly: true)) }
            var logger = Logger(label: "test")
            logger.logLevel = .warning
            let server = try QMPServer(
                configuration: ServerConfiguration(
                    listeners: listeners, options: options, outputHighWatermark: highWatermark,
                    outputLowWatermark: highWatermark / 4),
                logger: logger)
            try await server.start()
            harness.server = server
            harness.serving = Task { await server.serve() }
        }
        return harness
    }

    /// A new client connection (not negotiated yet).
    func connect(readOnly: Bool = false) throws -> QMPTestConnection {
        switch transport {
        case .session: return SessionConnection(server: state!, readOnly: readOnly)
        case .live: return try TestClient(unixPath: readOnly ? readOnlySocketPath : socketPath)
        }
    }

    /// Stops the live server (a graceful shutdown) and waits for it.
    func stop() async {
        server?.shutdown()
        await serving?.value
    }

    /// Runs `body` with a started server, and stops it afterwards, also when `body` throws.
    static func with(
        _ transport: Transport, options: ServerOptions = ServerOptions(), readOnly: Bool = false, tcp: Bool = false,
        highWatermark: Int = 256 * 1024, _ body: (QMPTestServer) async throws -> Void
    ) async throws {
        let harness = try await start(
            transport, options: options, readOnly: readOnly, tcp: tcp, highWatermark: highWatermark)
        do {
            try await body(harness)
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }
}
