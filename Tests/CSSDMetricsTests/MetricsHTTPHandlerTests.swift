// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import CSSDMetrics

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
            MetricsHTTPHandler(requestTimeout: timeout) { format in
                scrapes.formats.append(format)
                return ByteBuffer(string: "cssd_up 1\n")
            })
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    static func exchange(_ channel: EmbeddedChannel, _ request: String) throws -> String {
        try channel.writeInbound(ByteBuffer(string: request))
        var response = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { response += String(buffer: buffer) }
        return response
    }

    @Test func scrapeKeepsTheConnection() throws {
        let scrapes = Scrapes()
        let channel = try Self.channel(scrapes: scrapes)
        let first = try Self.exchange(channel, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(first.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(first.lowercased().contains("content-type: text/plain; version=0.0.4; charset=utf-8"))
        #expect(first.hasSuffix("\r\n\r\ncssd_up 1\n"))
        let second = try Self.exchange(
            channel, "GET /metrics?x=1 HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0\r\n\r\n")
        #expect(second.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(second.contains("application/openmetrics-text; version=1.0.0; charset=utf-8"))
        #expect(scrapes.formats == [.text, .openMetrics])
        #expect(channel.isActive)
        _ = try channel.finish()
    }

    @Test func headHasNoBody() throws {
        let channel = try Self.channel()
        let response = try Self.exchange(channel, "HEAD /metrics HTTP/1.1\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(response.hasSuffix("\r\n\r\n"))
        _ = try channel.finish()
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"),
        ("GET /metrics/x HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"),
        ("POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nab", "HTTP/1.1 405 Method Not Allowed"),
        ("DELETE /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"),
    ])
    func wrongPathOrMethod(request: String, status: String) throws {
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
            channel, "GET /metrics HTTP/1.1\r\nX-Big: \(String(repeating: "a", count: 9000))\r\n\r\n")
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
}
