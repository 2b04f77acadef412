// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import DaemonRuntime
import Foundation
import Logging
import QMPServer
import QMPTransport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The daemon assembled for real: the model backend, a state dir, metrics on a port-0 listener
/// and a unix QMP socket in a temporary directory; stopped through its signal pipe as SIGTERM
/// stops cssd.
@Suite struct DaemonTests {
    /// A temporary directory short enough for unix socket paths (108 bytes).
    static func temporaryDirectory() throws -> String {
        var template = Array("/tmp/cssd-daemon-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw POSIXError(.EIO) }
        return String(cString: made)
    }

    static var logger: Logger {
        var logger = Logger(label: "daemon-test")
        logger.logLevel = .warning
        return logger
    }

    static func configuration(directory: String) -> DaemonConfiguration {
        DaemonConfiguration(
            listeners: [Listener(.unix(path: directory + "/qmp.sock"))], backend: .model(topology: nil),
            metrics: .init(host: "127.0.0.1", port: 0, usesTLS: false),
            stateDir: .init(directory: directory + "/state"))
    }

    @Test func assemblesServesAndStopsInOrder() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]) }
        defer { close(ends[1]) }  // the daemon's signal thread ends with the pipe
        let (ready, readiness) = AsyncStream.makeStream(of: Daemon.Ready.self)
        let daemon = Daemon(
            configuration: Self.configuration(directory: directory), signalPipe: ends[0], logger: Self.logger
        ) { readiness.yield($0) }
        let running = Task { try await daemon.run() }

        var iterator = ready.makeAsyncIterator()
        let bound = try #require(await iterator.next())
        #expect(bound.qmp == [.unix(path: directory + "/qmp.sock")])
        #expect(
            daemon.steps == [
                .signals, .logging, .listeners, .security, .backend, .stateStore, .server, .durableListeners,
                .metrics, .qmp, .ready,
            ])

        // A command that is recorded in the state dir, over the socket.
        let client = try LineClient(connecting: .unix(path: directory + "/qmp.sock"))
        #expect(try client.readLine().contains("\"QMP\""))
        try client.send(#"{"execute":"qmp_capabilities"}"#)
        #expect(try client.readLine() == #"{"return": {}}"#)
        try client.send(#"{"execute":"vary-path","arguments":{"chpid":"0.40","state":"offline"},"id":1}"#)
        let reply = try client.readLine()
        #expect(reply.contains("\"return\"") && reply.contains("\"id\": 1"), "\(reply)")

        // Metrics are wired to the same server: the command is counted.
        guard case .tcp(_, let port)? = bound.metrics else {
            Issue.record("no metrics address: \(String(describing: bound.metrics))")
            return
        }
        let scrape = try LineClient(connecting: .tcp(host: "127.0.0.1", port: port))
        try scrape.send("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let exposition = scrape.readAll()
        #expect(exposition.contains("HTTP/1.1 200"))
        #expect(exposition.contains(#"command="vary-path""#), "\(exposition.prefix(2000))")

        // SIGTERM through the pipe: SHUTDOWN to the client, then every part stops in order.
        var signal = UInt8(SIGTERM)
        #expect(write(ends[1], &signal, 1) == 1)
        let shutdown = try client.readLine()
        #expect(shutdown.contains(#""event": "SHUTDOWN""#) && shutdown.contains("host-signal"), "\(shutdown)")
        try await running.value
        #expect(
            Array(daemon.steps.suffix(4)) == [.qmpStopped, .metricsStopped, .stateStoreClosed, .eventLoopStopped])
        #expect(!FileManager.default.fileExists(atPath: directory + "/qmp.sock"))
        // A closed store: checkpointed, the write-ahead log empty or gone, the lock let go.
        let wal = directory + "/state/state.sqlite-wal"
        let walSize = (try? FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int) ?? 0
        #expect(walSize == 0)
        #expect(FileManager.default.fileExists(atPath: directory + "/state/state.sqlite"))

        // The next daemon on the same state dir starts from it (the lock was released).
        let again = Daemon(configuration: Self.configuration(directory: directory), logger: Self.logger) { _ in }
        again.shutdown()
        try await again.run()
        #expect(again.steps.contains(.stateStore) && again.steps.last == .eventLoopStopped)
    }

    @Test func aStopBeforeListeningBindsNothing() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let daemon = Daemon(configuration: Self.configuration(directory: directory), logger: Self.logger)
        daemon.shutdown()
        try await daemon.run()
        #expect(
            daemon.steps == [
                .signals, .logging, .listeners, .security, .backend, .stateStore, .server, .durableListeners,
                .stoppedBeforeListening, .eventLoopStopped,
            ])
        #expect(!FileManager.default.fileExists(atPath: directory + "/qmp.sock"))
    }

    @Test func anUnusableStateDirIsRefusedBeforeTheServer() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(FileManager.default.createFile(atPath: directory + "/state", contents: Data()))
        let daemon = Daemon(configuration: Self.configuration(directory: directory), logger: Self.logger)
        let error = await #expect(throws: DaemonStartError.self) { try await daemon.run() }
        #expect(error?.description.contains("is not a directory") == true, "\(String(describing: error))")
        #expect(daemon.steps == [.signals, .logging, .listeners, .security, .backend])
        #expect(!FileManager.default.fileExists(atPath: directory + "/qmp.sock"))
    }
}

/// A blocking client for the test: lines in, bytes out. A read waits up to 120 s (a loaded
/// machine's fsync can take seconds), then fails with ETIMEDOUT; the peer closing is ECONNRESET.
final class LineClient {
    private let fd: Int32
    private var buffer: [UInt8] = []

    init(connecting address: QMPAddress) throws {
        fd = try address.connect()
        var timeout = timeval(tv_sec: 120, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else { throw POSIXError(.EIO) }
    }

    /// The next line without its line end.
    func readLine() throws -> String {
        while true {
            if let end = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<end], as: UTF8.self)
                buffer.removeFirst(end + 1)
                return line.hasSuffix("\r") ? String(line.dropLast()) : line
            }
            switch fill() {
            case .some(true): continue
            case .some(false): throw POSIXError(.ECONNRESET)
            case nil: throw POSIXError(.ETIMEDOUT)
            }
        }
    }

    /// Everything until the peer closes (or a read times out).
    func readAll() -> String {
        while fill() == true {}
        return String(decoding: buffer, as: UTF8.self)
    }

    /// true: bytes read; false: the peer closed; nil: an error (a timeout).
    private func fill() -> Bool? {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return nil }
            guard n > 0 else { return false }
            buffer += chunk[..<n]
            return true
        }
    }
}
