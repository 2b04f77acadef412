// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import NIOCore
import NIOEmbedded
import Testing

@testable import MetricsExporter

/// At the limit a new connection closes the one that made progress least recently.
@Suite struct MetricsConnectionsTests {
    @Test func theLeastRecentlyProgressedGivesWay() throws {
        let loop = EmbeddedEventLoop()
        let table = MetricsConnections(limit: 3)
        let channels = (0..<5).map { _ in EmbeddedChannel(loop: loop) }
        for channel in channels { try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait() }
        for channel in channels.prefix(3) { #expect(table.admit(channel) == nil) }
        // The first completes a request: the second is now the one waiting longest.
        table.progressed(channels[0])
        #expect(table.admit(channels[3]) === channels[1])
        #expect(!channels[1].isActive)
        #expect(table.count == 3)
        table.progressed(channels[2])
        table.progressed(channels[3])
        #expect(table.admit(channels[4]) === channels[0])
        // A connection that closes by itself frees its place.
        try channels[4].close().wait()
        loop.run()
        #expect(table.count == 2)
        #expect(table.admit(EmbeddedChannel(loop: loop)) == nil)
    }
}
