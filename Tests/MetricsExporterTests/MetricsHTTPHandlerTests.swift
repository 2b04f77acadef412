// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import MetricsExporter

/// The handler behind NIOHTTP1's real decoder and encoder on an EmbeddedChannel: status codes
/// for good and bad requests, bytes in and bytes out.
@Suite struct MetricsHTTPHandlerTests {
    final class Scrapes: @unchecked Sendable {
        var formats: [ExpositionFormat] = []
    }

    static func channel(timeout: TimeAmount = .seconds(10), scrapes: Scrapes = Scrapes()) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = 8 * 1024
        limits.maxHeaderListSize = 32 * 1024
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(
            withPipeliningAssistance: false, withErrorHandling: false, withEncoderConfiguration: .init(),
            withDecoderLimitConfiguration: limits)
        try channel.pipeline.syncOperations.addHandler(
            MetricsHTTPHandler(requestTimeout: timeout, page: { page in ByteBuffer(string: "page \(page)\n") }) {
                format in
                scrapes.formats.append(format)
                return ByteBuffer(string: "cssd_up 1\n")
            })
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    /// Feeds `request`, lets the loop run (pipelined answers come one per turn), and returns
    /// every byte written.
    static func exchange(_ channel: EmbeddedChannel, _ request: String) throws -> String {
        try channel.writeInbound(ByteBuffer(string: request))
        return try output(channel)
    }

    static func output(_ channel: EmbeddedChannel) throws -> String {
        var response = ""
        while true {
            channel.embeddedEventLoop.run()
            guard let buffer = try channel.readOutbound(as: ByteBuffer.self) else { return response }
            response += String(buffer: buffer)
        }
    }

    @Test func scrapeKeepsTheConnection() throws {
        let scrapes = Scrapes()
        let channel = try Self.channel(scrapes: scrapes)
        let first = try Self.exchange(channel, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(first.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(first.lowercased().contains("content-type: text/plain; version=0.0.4; charset=utf-8"))
        #expect(first.hasSuffix("\r\n\r\ncssd_up 1\n"))
        let second = try Self.exchange(
            channel,
            "GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text;version=1.0.0\r\n\r\n")
        #expect(second.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(second.contains("application/openmetrics-text; version=1.0.0; charset=utf-8"))
        #expect(scrapes.formats == [.text, .openMetrics])
        #expect(channel.isActive)
        _ = try channel.finish()
    }

    /// `/` (also as the absolute form without a path), `/status` and `/status.json`: the site's
    /// pages, with their content types, uncached, on the same keep-alive connection.
    @Test func sitePages() throws {
        let channel = try Self.channel()
        for (request, page, type) in [
            ("GET / HTTP/1.1", "landing", "text/html; charset=utf-8"),
            ("GET http://x HTTP/1.1", "landing", "text/html; charset=utf-8"),
            ("GET /status HTTP/1.1", "status", "text/html; charset=utf-8"),
            ("GET /status.json?t=1 HTTP/1.1", "statusData", "application/json"),
        ] {
            let response = try Self.exchange(channel, request + "\r\nHost: x\r\n\r\n")
            #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(response.lowercased().contains("content-type: \(type)"))
            #expect(response.lowercased().contains("cache-control: no-store"))
            #expect(response.hasSuffix("\r\n\r\npage \(page)\n"))
        }
        #expect(channel.isActive)
        _ = try channel.finish()
    }

    @Test func headHasNoBody() throws {
        let channel = try Self.channel()
        let response = try Self.exchange(channel, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(response.hasSuffix("\r\n\r\n"))
        _ = try channel.finish()
    }

    @Test(arguments: [
        ("GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 Not Found"),
        ("GET /status.json/x HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 Not Found"),
        ("POST /status HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"),
        ("GET /metrics/x HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 Not Found"),
        ("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab", "HTTP/1.1 405 Method Not Allowed"),
        ("DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"),
        // RFC 9112 3.2: Host is required in HTTP/1.1, once; the absolute form is served.
        ("GET /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request"),
        ("GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "HTTP/1.1 400 Bad Request"),
        ("GET /metrics HTTP/1.0\r\nHost: a\r\nHost: b\r\nConnection: keep-alive\r\n\r\n", "HTTP/1.0 400 Bad Request"),
        ("GET ftp://x/metrics HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 Bad Request"),
        ("GET http://x/other HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 Not Found"),
        ("GET http://x/metricsx HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 Not Found"),
    ])
    func wrongRequest(request: String, status: String) throws {
        let channel = try Self.channel()
        let response = try Self.exchange(channel, request)
        #expect(response.hasPrefix(status + "\r\n"))
        if status.contains("405") { #expect(response.lowercased().contains("allow: get, head")) }
        #expect(channel.isActive)  // keep-alive: the connection stays usable
        _ = try channel.finish()
    }

    @Test func hugeHeaderIs431AndCloses() throws {
        let channel = try Self.channel()
        let response = try Self.exchange(
            channel, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 9000))\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"))
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
    }

    @Test func garbageIs400() throws {
        let channel = try Self.channel()
        let response = try Self.exchange(channel, "NOT HTTP AT ALL\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
    }

    @Test func slowClientGets408() throws {
        let channel = try Self.channel(timeout: .seconds(5))
        #expect(try Self.exchange(channel, "GET /metrics HTTP/1.1\r\nHost: ") == "")
        channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        var response = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { response += String(buffer: buffer) }
        #expect(response.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
    }

    @Test(arguments: [
        "GET http://127.0.0.1:9100/metrics HTTP/1.1\r\nHost: 127.0.0.1:9100\r\n\r\n",
        "GET HTTPS://Example.ORG/metrics?x=1 HTTP/1.1\r\nHost: example.org\r\n\r\n",
        "GET http://h/metrics?x HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /metrics HTTP/1.0\r\n\r\n",
    ])
    func servedTargetsAndHosts(request: String) throws {
        let channel = try Self.channel()
        let response = try Self.exchange(channel, request)
        #expect(response.hasPrefix(request.contains("HTTP/1.0") ? "HTTP/1.0 200 OK\r\n" : "HTTP/1.1 200 OK\r\n"))
        // HTTP/1.0 without keep-alive: closed after the answer.
        #expect(channel.isActive == !request.contains("HTTP/1.0"))
    }

    @Test func requestPathOfEachForm() {
        #expect(MetricsHTTPHandler.requestPath("/metrics?a=b") == "/metrics?a=b")
        #expect(MetricsHTTPHandler.requestPath("http://h:1/metrics") == "/metrics")
        #expect(MetricsHTTPHandler.requestPath("http://h:1?q") == "/?q")
        #expect(MetricsHTTPHandler.requestPath("http://h:1") == "/")
        #expect(MetricsHTTPHandler.requestPath("*") == nil)
        #expect(MetricsHTTPHandler.requestPath("h:1") == nil)
        #expect(MetricsHTTPHandler.requestPath("gopher://h/metrics") == nil)
    }

    /// Three requests in one read: one answer per turn of the loop, in order; each waits for
    /// the previous answer to be written, and no read(2) is asked for meanwhile.
    @Test func pipelinedRequestsAreAnsweredOneAtATime() throws {
        let scrapes = Scrapes()
        let channel = try Self.channel(scrapes: scrapes)
        let reads = ReadCounter()
        try channel.pipeline.syncOperations.addHandler(reads, position: .first)
        let one = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
        try channel.writeInbound(ByteBuffer(string: one + one + "GET /x HTTP/1.1\r\nHost: x\r\n\r\n"))
        // One answer now; the next ones only once the loop turns.
        var first = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { first += String(buffer: buffer) }
        #expect(first.hasPrefix("HTTP/1.1 200 OK\r\n") && first.components(separatedBy: "HTTP/1.1 ").count == 2)
        #expect(scrapes.formats.count == 1)
        let readsBefore = reads.count
        channel.read()
        #expect(reads.count == readsBefore)  // held: input is waiting
        let rest = try Self.output(channel)
        let statuses = rest.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix { $0 != "\r\n" } }
        #expect(statuses == ["200 OK", "404 Not Found"])
        #expect(scrapes.formats.count == 2)
        #expect(reads.count == readsBefore + 1)  // the held read, once everything was answered
        _ = try channel.finish()
    }

    final class ReadCounter: ChannelOutboundHandler, @unchecked Sendable {
        typealias OutboundIn = Any
        var count = 0
        func read(context: ChannelHandlerContext) {
            count += 1
            context.read()
        }
    }

    /// An answer the client does not read closes the connection after the request timeout.
    @Test func unwrittenAnswerClosesAfterTheTimeout() throws {
        let scrapes = Scrapes()
        let channel = try Self.channel(timeout: .seconds(5), scrapes: scrapes)
        let stall = StallWrites()
        try channel.pipeline.syncOperations.addHandler(stall, position: .first)
        try channel.writeInbound(
            ByteBuffer(string: "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(channel.isActive)
        #expect(scrapes.formats.count == 1)  // the second request waits for the first answer
        #expect(stall.promises.count >= 1)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive)
    }

    /// Holds every write (a client that does not read): its promise never completes.
    final class StallWrites: ChannelOutboundHandler, @unchecked Sendable {
        typealias OutboundIn = Any
        var held = 0
        var promises: [EventLoopPromise<Void>] = []
        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            held += 1
            if let promise { promises.append(promise) }
        }
        func flush(context: ChannelHandlerContext) {}
        func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
            for promise in promises { promise.fail(ChannelError.ioOnClosedChannel) }
            promises.removeAll()
            context.close(mode: mode, promise: promise)
        }
    }
}
