// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Testing

@testable import QMPServer

#if canImport(Glibc)
import Glibc
#endif

/// A listener's pause after failed accepts, on an EmbeddedChannel standing for the server
/// channel: autoRead off for 5 ms, 10 ms, ... up to 1 s, back to 5 ms after an accept; one
/// warning per 10 s.
@Suite struct AcceptBackoffTests {
    final class Lines: LogHandler, @unchecked Sendable {
        let lines = NIOLockedValueBox<[(Logger.Level, String)]>([])
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let rendered = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            lines.withLockedValue { $0.append((event.level, "\(rendered.joined(separator: " ")) \(event.message)")) }
        }
    }

    static func autoRead(_ channel: EmbeddedChannel) -> Bool {
        channel.options.last { $0.option is ChannelOptions.Types.AutoReadOption }.map { $0.value as! Bool } ?? true
    }

    @Test func pausesDoubleUpToOneSecondAndResetOnAccept() throws {
        let lines = Lines()
        let logger = Logger(label: "test") { _ in lines }
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()  // active, as a listener
        try AcceptBackoff.install(on: channel, logger: logger) { "unix:/x.sock" }
        let emfile = IOError(errnoCode: EMFILE, reason: "accept4")

        var expected: [Int64] = []
        var pause: Int64 = 5
        for _ in 0..<10 {
            expected.append(pause)
            pause = min(pause * 2, 1000)
        }
        for milliseconds in expected {
            channel.pipeline.fireErrorCaught(emfile)
            #expect(!Self.autoRead(channel))
            channel.embeddedEventLoop.advanceTime(by: .milliseconds(milliseconds - 1))
            #expect(!Self.autoRead(channel))
            channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
            #expect(Self.autoRead(channel))
        }
        #expect(expected.suffix(2) == [1000, 1000])
        // An accepted connection: the next pause is the first again.
        channel.pipeline.fireChannelRead(NIOAny(EmbeddedChannel() as Channel))
        channel.pipeline.fireErrorCaught(emfile)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(5))
        #expect(Self.autoRead(channel))

        let logged = lines.lines.withLockedValue { $0 }
        let warnings = logged.filter { $0.0 == .warning }.map(\.1)
        // The first failure and the one after the accept: not one line per failure.
        #expect(warnings.count == 2)
        #expect(warnings.first?.contains("error=EMFILE (Too many open files)") == true)
        #expect(warnings.first?.contains("listener=unix:/x.sock") == true)
        #expect(logged.contains { $0.0 == .notice && $0.1.contains("failures-since-warning=9") })
        _ = try? channel.finish()
    }
}
