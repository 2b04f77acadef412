// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Foundation
import Logging
import QMPCommands
import QMPSchema
import QMPWire
import TestSupport
import Testing

@testable import QMPServer

#if canImport(Glibc)
import Glibc
#endif

/// Runs a live server (`QMPTestServer`, live transport) for the duration of `body`, then stops it.
private func withServer(
    readOnly: Bool = true, tcp: Bool = true, conditions: Set<CommandCondition> = [],
    highWatermark: Int = 256 * 1024,
    _ body: (QMPServer, TemporaryDirectory) async throws -> Void
) async throws {
    try await QMPTestServer.with(
        .live, options: ServerOptions(conditions: conditions), readOnly: readOnly, tcp: tcp,
        highWatermark: highWatermark
    ) { harness in
        try await body(harness.server!, harness.directory)
    }
}

/// Runs blocking client code off the cooperative pool.
private func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try work() })
        }
    }
}

@Suite("Live server", .serialized)
struct LiveServerTests {
    @Test("unix and tcp listeners speak QMP; the unix socket is mode 0600")
    func listeners() async throws {
        try await withServer { server, directory in
            let path = directory.file("qmp.sock")
            guard case .tcp(_, let port) = server.boundAddresses[1] else {
                Issue.record("no tcp address")
                return
            }
            try await blocking {
                for client in [try TestClient(unixPath: path), try TestClient(host: "127.0.0.1", port: port)] {
                    let greeting = try client.handshake()
                    #expect(greeting["QMP"]?["capabilities"]?[0]?.stringValue == "oob")
                    let reply = try client.execute(#"{"execute":"query-version","id":"v"}"#)
                    #expect(reply["return"]?["qemu"]?["minor"]?.intValue == CSSDVersion.triple.minor)
                    #expect(reply["id"]?.stringValue == "v")
                }
            }
            var info = stat()
            #expect(stat(path, &info) == 0)
            #expect(info.st_mode & 0o777 == 0o600)
        }
    }

    @Test("a request delivered one byte at a time is answered once")
    func byteByByte() async throws {
        try await withServer(readOnly: false, tcp: false) { _, directory in
            try await blocking {
                let client = try TestClient(unixPath: directory.file("qmp.sock"))
                try client.handshake()
                for byte in Array(#"{"execute": "query-version", "id": [1, "x"]} {"id": 2}"#.utf8) {
                    try client.send([byte])
                }
                #expect(try client.readMessage()["id"]?[1]?.stringValue == "x")
                #expect(try client.readMessage()["error"]?["desc"]?.stringValue == "QMP input lacks member 'execute'")
            }
        }
    }

    @Test("the read-only listener refuses everything but query-* commands")
    func readOnlyListener() async throws {
        try await withServer(conditions: [.allowQuit]) { _, directory in
            try await blocking {
                let client = try TestClient(unixPath: directory.file("ro.sock"))
                try client.handshake()
                let quit = try client.execute(#"{"execute":"quit","id":1}"#)
                #expect(quit["error"]?["class"]?.stringValue == "CommandNotFound")
                #expect(quit["error"]?["desc"]?.stringValue?.contains("read-only") == true)
                #expect(try client.execute(#"{"execute":"query-version"}"#)["return"] != nil)
            }
        }
    }

    @Test("a stale socket file is replaced; a live one or a non-socket is refused")
    func socketFiles() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("stale.sock")
        // A socket file nobody listens on.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        close(fd)
        #expect(FileManager.default.fileExists(atPath: path))

        let logger = Logger(label: "test")
        let first = try QMPServer(
            configuration: ServerConfiguration(listeners: [Listener(.unix(path: path))]), logger: logger)
        try await first.start()
        let serving = Task { await first.serve() }

        let second = try QMPServer(
            configuration: ServerConfiguration(listeners: [Listener(.unix(path: path))]), logger: logger)
        await #expect(throws: ServerStartError.self) { try await second.start() }
        do {
            try await second.start()
        } catch {
            #expect("\(error)".contains("in use by a running server"))
        }
        // The live server is untouched.
        try await blocking { _ = try TestClient(unixPath: path).handshake() }
        first.shutdown()
        await serving.value
        #expect(!FileManager.default.fileExists(atPath: path))

        let plain = directory.file("plain")
        FileManager.default.createFile(atPath: plain, contents: Data("x".utf8))
        let third = try QMPServer(
            configuration: ServerConfiguration(listeners: [Listener(.unix(path: plain))]), logger: logger)
        do {
            try await third.start()
            Issue.record("replaced a regular file")
        } catch {
            #expect("\(error)".contains("is not a socket"))
        }
        #expect(FileManager.default.fileExists(atPath: plain))
    }

    @Test("1,000 concurrent connections")
    func thousandConnections() async throws {
        raiseDescriptorLimit()
        try await withServer(readOnly: false, tcp: false) { server, directory in
            let path = directory.file("qmp.sock")
            let clients = try await blocking { try (0..<1000).map { _ in try TestClient(unixPath: path) } }
            try await blocking {
                for client in clients { _ = try client.handshake() }
            }
            // Every client has been greeted and negotiated, so all are accepted by now.
            #expect(await server.connectionCount() == 1000)
            try await blocking {
                for (index, client) in clients.enumerated() {
                    try client.send(#"{"execute":"query-version","id":\#(index)}"#)
                }
                for (index, client) in clients.enumerated() {
                    #expect(try client.readMessage()["id"]?.intValue == index)
                }
            }
        }
    }

    @Test("a client that never reads stalls only itself; its backlog stays bounded")
    func slowReader() async throws {
        try await withServer(readOnly: false, tcp: false, highWatermark: 64 * 1024) { _, directory in
            let path = directory.file("qmp.sock")
            let flood = try TestClient(unixPath: path)
            try await blocking { _ = try flood.handshake() }
            // 200,000 requests (6 MB in, about 20 MB of replies) from a thread that blocks once
            // the server stops reading.
            let requests = 200_000
            let request = Array(#"{"execute":"query-version","id":1}"#.utf8)
            let payload = Array(repeating: request, count: requests).flatMap { $0 }
            let writer = Task.detached { try flood.send(payload) }
            try await Task.sleep(for: .milliseconds(500))

            // Others are served promptly meanwhile.
            try await blocking {
                let other = try TestClient(unixPath: path)
                try other.handshake()
                let start = Date()
                for i in 0..<200 {
                    #expect(try other.execute(#"{"execute":"query-version","id":\#(i)}"#)["id"]?.intValue == i)
                }
                #expect(Date().timeIntervalSince(start) < 5)
            }
            // The server stopped reading the flood: the writer is still blocked.
            #expect(!writerFinished(writer))

            // Reading now drains every reply, in order, and lets the writer finish.
            let replies = try await blocking { try flood.countLines(requests) }
            #expect(replies == requests)
            try await writer.value
        }
    }

    @Test("quit replies, sends SHUTDOWN to negotiated clients, closes all, removes the socket")
    func quit() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("q.sock")
        let server = try QMPServer(
            configuration: ServerConfiguration(
                listeners: [Listener(.unix(path: path))], options: ServerOptions(conditions: [.allowQuit])),
            logger: Logger(label: "test"))
        try await server.start()
        let serving = Task { await server.serve() }
        try await blocking {
            let watcher = try TestClient(unixPath: path)
            try watcher.handshake()
            let fresh = try TestClient(unixPath: path)
            _ = try fresh.readMessage()  // greeting only: no events in negotiation mode
            let quitter = try TestClient(unixPath: path)
            try quitter.handshake()
            let reply = try quitter.execute(#"{"execute":"quit","id":"q"}"#)
            #expect(reply["return"]?.count == 0 && reply["id"]?.stringValue == "q")
            let event = try quitter.readMessage()
            #expect(event["event"]?.stringValue == "SHUTDOWN")
            #expect(event["data"]?["reason"]?.stringValue == "host-qmp-quit")
            #expect(event["data"]?["guest"]?.boolValue == false)
            #expect(event["timestamp"]?["seconds"]?.intValue ?? 0 > 1_700_000_000)
            #expect(try watcher.readMessage()["event"]?.stringValue == "SHUTDOWN")
            #expect(quitter.isClosed())
            #expect(watcher.isClosed())
            #expect(fresh.isClosed())
        }
        await serving.value
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test("a graceful shutdown (signal) sends SHUTDOWN with reason host-signal")
    func signalShutdown() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("s.sock")
        let server = try QMPServer(
            configuration: ServerConfiguration(listeners: [Listener(.unix(path: path))]), logger: Logger(label: "test"))
        try await server.start()
        let serving = Task { await server.serve() }
        let client = try await blocking { () -> TestClient in
            let c = try TestClient(unixPath: path)
            _ = try c.handshake()
            return c
        }
        server.shutdown(cause: .hostSignal)
        try await blocking {
            let event = try client.readMessage()
            #expect(event["data"]?["reason"]?.stringValue == "host-signal")
            #expect(client.isClosed())
        }
        await serving.value
    }
}

private func writerFinished(_ task: Task<Void, Error>) -> Bool {
    let done = Done()
    Task {
        _ = try? await task.value
        done.set()
    }
    usleep(100_000)
    return done.value
}

private final class Done: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    func set() { lock.withLock { flag = true } }
    var value: Bool { lock.withLock { flag } }
}

extension TestClient: @unchecked Sendable {}

extension TestClient {
    /// Reads until `count` lines arrived; returns how many.
    func countLines(_ count: Int, timeout: Double = 60) throws -> Int {
        var lines = 0
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        let deadline = Date().addingTimeInterval(timeout)
        while lines < count {
            guard deadline.timeIntervalSinceNow > 0 else {
                throw Failure(description: "timed out after \(lines) lines")
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 1000) == 0 { continue }
            let n = read(fd, &chunk, chunk.count)
            guard n > 0 else { break }
            for i in 0..<n where chunk[i] == UInt8(ascii: "\n") { lines += 1 }
        }
        return lines
    }
}
