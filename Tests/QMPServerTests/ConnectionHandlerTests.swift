// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Logging
import NIOCore
import NIOEmbedded
import QMPCommands
import QMPSchema
import QMPWire
import Testing

@testable import QMPServer

#if canImport(Glibc)
import Glibc
#endif

/// A connection handler on a channel of NIO's test tools, with the core it reports to.
private func makeHandler(
    loop: EventLoop, state: ServerState? = nil, inputBacklog: Int = ServerConfiguration.defaultInputBacklog
) throws -> (QMPConnectionHandler, ServerCore) {
    let state = try state ?? ServerState.standard()
    let core = ServerCore(loop: loop, state: state, logger: Logger(label: "test"))
    return (QMPConnectionHandler(session: QMPSession(server: state), core: core, inputBacklog: inputBacklog), core)
}

/// Everything the channel wrote so far, as lines without CRLF; fails on a torn line.
private func writtenLines(_ channel: EmbeddedChannel) throws -> [String] {
    var text = ""
    while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
    #expect(text.isEmpty || text.hasSuffix("\r\n"), "torn line: \(text.suffix(80))")
    return text.split(separator: "\r\n", omittingEmptySubsequences: true).map(String.init)
}

private let caps = #"{"execute":"qmp_capabilities"}"#
private func queryVersion(_ id: Int) -> String { #"{"execute":"query-version","id":\#(id)}"# }

@Suite("QMP connection handler on NIO's EmbeddedChannel")
struct ConnectionHandlerTests {
    @Test("input one byte at a time: each request answered once, whole lines, finish() clean")
    func oneByteAtATime() throws {
        let loop = EmbeddedEventLoop()
        let (handler, core) = try makeHandler(loop: loop)
        let channel = EmbeddedChannel(handler: handler, loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4444)).wait()
        let input = caps + queryVersion(1) + " \r\n" + #"{"execute": "nope", "id": "x"}"#
        for byte in input.utf8 {
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
        }
        let lines = try writtenLines(channel)
        #expect(lines.count == 4)
        #expect(lines.first?.hasPrefix(#"{"QMP": "#) == true)
        #expect(lines[1] == #"{"return": {}}"#)
        #expect(lines[2].hasPrefix(#"{"return": {"qemu": "#) && lines[2].hasSuffix(#", "id": 1}"#))
        #expect(
            lines[3]
                == #"{"id": "x", "error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}"#
        )
        #expect(handler.state == .serving(.idle, input: .open))
        #expect(try channel.finish().isClean)
        #expect(handler.state == .closed)
        try core.threads.syncShutdown()
    }

    @Test("not writable: nothing is processed; writable again: every reply, in order")
    func writabilityToggling() throws {
        let loop = EmbeddedEventLoop()
        let (handler, core) = try makeHandler(loop: loop)
        let channel = EmbeddedChannel(handler: handler, loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4444)).wait()
        #expect(try writtenLines(channel).count == 1)
        channel.isWritable = false
        try channel.writeInbound(ByteBuffer(string: caps + queryVersion(1) + queryVersion(2)))
        #expect(try writtenLines(channel).isEmpty)
        #expect(handler.state == .serving(.blocked, input: .open))
        #expect(handler.session.bufferedInputBytes > 0)
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        let lines = try writtenLines(channel)
        #expect(lines.count == 3)
        #expect(lines[2].hasSuffix(#""id": 2}"#))
        #expect(handler.state == .serving(.idle, input: .open))
        #expect(try channel.finish().isClean)
        try core.threads.syncShutdown()
    }

    @Test("while blocked, input is held up to its bound, then reads stop until it is processed")
    func inputBacklogBound() throws {
        let loop = EmbeddedEventLoop()
        let state = try ServerState.standard(options: ServerOptions(limits: WireLimits(maxValueSize: 1024)))
        let (handler, core) = try makeHandler(loop: loop, state: state, inputBacklog: 0)
        // The bound is never below one whole pending value plus one read.
        #expect(handler.inputBacklog == WireLimits(maxValueSize: 1024).maxBufferedValueBytes + 64 * 1024)
        let channel = EmbeddedChannel(handler: handler, loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4444)).wait()
        _ = try writtenLines(channel)
        channel.isWritable = false
        let batch = caps + (1...2000).map(queryVersion).joined()
        try channel.writeInbound(ByteBuffer(string: batch))
        #expect(handler.session.bufferedInputBytes >= handler.inputBacklog)
        channel.read()
        #expect(handler.state == .serving(.blocked, input: .held))
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        // Processing yields the loop after `turnBytes`; run the scheduled turns.
        var lines: [String] = []
        for _ in 0..<100 where lines.count < 2001 {
            lines += try writtenLines(channel)
            loop.run()
        }
        #expect(lines.count == 2001)
        #expect(lines.last?.hasSuffix(#""id": 2000}"#) == true)
        #expect(handler.state == .serving(.idle, input: .open))
        #expect(try channel.finish().isClean)
        try core.threads.syncShutdown()
    }

    @Test(
        "half-close: every complete request is answered, an unfinished one dropped, then it closes",
        arguments: [false, true])
    func halfClose(blocked: Bool) throws {
        let loop = EmbeddedEventLoop()
        let (handler, core) = try makeHandler(loop: loop)
        let channel = EmbeddedChannel(handler: handler, loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4444)).wait()
        _ = try writtenLines(channel)
        channel.isWritable = !blocked
        try channel.writeInbound(ByteBuffer(string: caps + (1...40).map(queryVersion).joined() + #"{"execute""#))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        if blocked {
            #expect(channel.isActive)
            #expect(handler.state == .serving(.blocked, input: .ended))
            channel.isWritable = true
            channel.pipeline.fireChannelWritabilityChanged()
        }
        let lines = try writtenLines(channel)
        #expect(lines.count == 41)
        #expect(lines.last?.hasSuffix(#""id": 40}"#) == true)
        #expect(!channel.isActive)
        #expect(handler.state == .closed)
        #expect(try channel.finish(acceptAlreadyClosed: true).isClean)
        try core.threads.syncShutdown()
    }

    @Test("a deferred reply completes on the loop, in order, and processing resumes after it")
    func deferredWrite() async throws {
        var registry = CommandRegistry()
        for (name, handler) in CommandRegistry.standard().handlers where name != "query-version" {
            registry.register(name, handler)
        }
        // query-version whose reply waits for blocking work run off the loop.
        registry.register("query-version") { _, _ in
            .deferred(
                DeferredWork(
                    blocking: {
                        usleep(20_000)
                        return .success(nil)
                    }, finish: { _ in .string("done") }))
        }
        let state = try ServerState(schema: Schema.embedded(), registry: registry, options: ServerOptions())
        let channel = NIOAsyncTestingChannel()
        let (handler, core) = try makeHandler(loop: channel.eventLoop, state: state)
        try await channel.pipeline.addHandler(handler)
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4444))
        try await channel.writeInbound(
            ByteBuffer(string: caps + queryVersion(1) + queryVersion(2) + #"{"execute":"query-commands","id":3}"#))
        var text = ""
        let deadline = ContinuousClock.now + .seconds(120)  // a hang guard: the machine may be loaded
        while text.split(separator: "\r\n").count < 5 && ContinuousClock.now < deadline {
            // The reply is completed by a task the pool thread hands to the channel's loop.
            await channel.testingEventLoop.run()
            if let buffer = try await channel.readOutbound(as: ByteBuffer.self) {
                text += String(buffer: buffer)
            } else {
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        let lines = text.split(separator: "\r\n").map(String.init)
        try #require(lines.count == 5, "\(text)")
        #expect(lines[2] == #"{"return": "done", "id": 1}"#)
        #expect(lines[3] == #"{"return": "done", "id": 2}"#)
        #expect(lines[4].hasPrefix(#"{"return": [{"name": "#) && lines[4].hasSuffix(#""id": 3}"#))
        #expect(try await channel.finish().isClean)
        try core.threads.syncShutdown()
    }
}
