// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import NIOCore

/// The metrics endpoint's open connections, at most `limit`, and which one gives way when a
/// new one comes at the limit.
///
/// Each connection records when it last made progress: its accept, a request received whole,
/// an answer written to the socket. At the limit a new connection closes the one whose last
/// progress is the oldest, rather than being refused: a client that sends half a request and
/// waits (slowloris), a keep-alive connection idle since its last scrape, or a client that
/// does not read its answer gives way to the newcomer, while a scraper that is being served
/// has just made progress and is the last to go. So clients that hold connections open
/// without finishing requests cannot keep real scrapes out (each of them is closed at the
/// latest after `requestTimeout` anyway). Servers short of room likewise close idle
/// keep-alive connections first (Apache's event MPM).
///
/// "Oldest" is by a counter, not a clock: progress is ordered, its time is not needed.
/// Confined to the endpoint's event loop. Cost: O(1) per progress, O(limit) per eviction.
final class MetricsConnections {
    private struct Entry {
        let channel: Channel
        var progress: UInt64
    }

    /// Connections served at once, TLS handshakes included.
    let limit: Int
    private var entries: [ObjectIdentifier: Entry] = [:]
    private var clock: UInt64 = 0

    init(limit: Int) {
        self.limit = limit
    }

    /// Connections open.
    var count: Int { entries.count }

    /// Takes `channel` in, closing the connection with the oldest progress when `limit` are
    /// open already.
    /// - Returns: the connection closed to make room, if any.
    @discardableResult
    func admit(_ channel: Channel) -> Channel? {
        var evicted: Channel?
        if entries.count >= limit, let (key, oldest) = entries.min(by: { $0.value.progress < $1.value.progress }) {
            entries[key] = nil
            evicted = oldest.channel
            oldest.channel.close(promise: nil)
        }
        clock += 1
        entries[ObjectIdentifier(channel)] = Entry(channel: channel, progress: clock)
        channel.closeFuture.assumeIsolated().whenComplete { [self] _ in entries[ObjectIdentifier(channel)] = nil }
        return evicted
    }

    /// `channel` received a request whole or wrote an answer.
    func progressed(_ channel: Channel) {
        clock += 1
        entries[ObjectIdentifier(channel)]?.progress = clock
    }
}
