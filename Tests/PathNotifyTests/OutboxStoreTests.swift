// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import Foundation
import Logging
import PathChangePipeline
import PathEvents
import QMPCommands
import TestSupport
import Testing

@testable import PathNotify

/// The outbox kept in the state dir: what a restart finds (unconfirmed rows byte for byte,
/// gaps, the sequence position), what it drops (changes not durable), what it refuses
/// (corrupt, another epoch), and what it rebuilds from the journal.
@Suite struct OutboxStoreTests {
    private func entry(_ sequence: UInt64, _ tag: String = "") -> OsloNotification {
        OsloNotification(
            sequence: sequence, routingKey: "notifications.info", messageID: "m\(sequence)\(tag)",
            body: Array("{\"sequence\": \(sequence)\(tag)}".utf8))
    }

    /// Writes everything the outbox has to write, as the writer thread does.
    private func flush(_ outbox: NotificationOutbox, _ store: OutboxStore) throws {
        while let write = outbox.takeWrite() {
            try store.write(write)
            outbox.written(write, ok: true)
        }
    }

    @Test func unconfirmedRowsGapsAndPositionSurviveAReopen() throws {
        let directory = makeTemporaryDirectory(prefix: "cssd-outbox")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try OutboxStore.open(directory: directory, epoch: "e1", lastSequence: 0)
        #expect(store.created && store.saved.rows.isEmpty && store.saved.through == 0)
        let outbox = NotificationOutbox(maxEvents: 4, maxBytes: 1 << 20, persistent: true)
        for sequence in UInt64(1)...3 { #expect(outbox.append([entry(sequence)], sequence: sequence)) }
        #expect(outbox.append([], sequence: 4))  // filtered out: only the position moves
        #expect(outbox.append([entry(5, "a"), entry(5, "b")], sequence: 5) == false)  // 3 + 2 > 4
        // Nothing is publishable before it is written.
        #expect(outbox.peek(from: 0, count: 10).isEmpty)
        try flush(outbox, store)
        #expect(outbox.peek(from: 0, count: 10).map(\.sequence) == [1, 2, 3])
        // Only durable changes are publishable.
        #expect(outbox.peek(from: 0, count: 10, through: 2).map(\.sequence) == [1, 2])
        outbox.confirm(1)
        try flush(outbox, store)
        store.close()

        let again = try OutboxStore.open(directory: directory, epoch: "e1", lastSequence: 5)
        defer { again.close() }
        #expect(!again.created)
        #expect(again.saved.rows.map(\.notification) == [entry(2), entry(3)])
        #expect(again.saved.through == 5)
        #expect(again.saved.gaps == [NotificationGap(reason: .outboxOverflow, ranges: [5...5], dropped: 2)])
        let restored = NotificationOutbox(maxEvents: 4, maxBytes: 1 << 20, persistent: true)
        #expect(restored.restore(again.saved.rows, gaps: again.saved.gaps, through: again.saved.through).isEmpty)
        #expect(restored.counters.restored == 2 && restored.counters.pendingGap == [5...5])
        // Restored rows are written already: publishable at once, before anything newer.
        #expect(restored.append([entry(6)], sequence: 6))
        #expect(restored.peek(from: 0, count: 10).map(\.sequence) == [2, 3])
    }

    @Test func rowsAndGapsOfChangesThatDidNotBecomeDurableAreDropped() throws {
        let directory = makeTemporaryDirectory(prefix: "cssd-outbox")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try OutboxStore.open(directory: directory, epoch: "e1", lastSequence: 0)
        let outbox = NotificationOutbox(maxEvents: 3, maxBytes: 1 << 20, persistent: true)
        for sequence in UInt64(1)...6 { outbox.append([entry(sequence)], sequence: sequence) }
        try flush(outbox, store)
        store.close()
        // The state store's last durable change is 2: 3 (a row) and 4...6 (a gap) will be
        // numbered again.
        let again = try OutboxStore.open(directory: directory, epoch: "e1", lastSequence: 2)
        #expect(again.saved.rows.map(\.notification.sequence) == [1, 2])
        #expect(again.saved.discarded == 1 && again.saved.gaps.isEmpty && again.saved.through == 2)
        again.close()
        let third = try OutboxStore.open(directory: directory, epoch: "e1", lastSequence: 2)
        defer { third.close() }
        #expect(third.saved.rows.count == 2 && third.saved.discarded == 0)
    }

    @Test func smallerBoundsAtRestartTurnTheRestIntoAGap() throws {
        let outbox = NotificationOutbox(maxEvents: 2, maxBytes: 1 << 20, persistent: true)
        let rows = (1...4).map { OutboxEntry(id: Int64($0), notification: entry(UInt64($0))) }
        #expect(outbox.restore(rows, gaps: [], through: 4) == [3, 4])
        #expect(outbox.counters.depth == 2 && outbox.counters.pendingGap == [3...4] && outbox.counters.dropped == 2)
    }

    private func refusal(_ directory: String, epoch: String) -> String {
        do {
            try OutboxStore.open(directory: directory, epoch: epoch, lastSequence: 0).close()
            return "opened"
        } catch {
            return error.description
        }
    }

    @Test func aCorruptFileOrAnotherEpochIsRefusedAndLeftAlone() throws {
        let directory = makeTemporaryDirectory(prefix: "cssd-outbox")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/notify-outbox.sqlite"
        let junk = Data(repeating: 0x41, count: 8192)
        try junk.write(to: URL(fileURLWithPath: path))
        #expect(refusal(directory, epoch: "e1").contains("not a cssd notification outbox"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == junk)
        try FileManager.default.removeItem(atPath: path)

        try OutboxStore.open(directory: directory, epoch: "e1", lastSequence: 0).close()
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(refusal(directory, epoch: "e2").contains("another history (epoch e1"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }

    @Test func durableChangesMissingFromTheOutboxAreRebuiltOrReportedAsLost() throws {
        let directory = makeTemporaryDirectory(prefix: "cssd-outbox")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The outbox accounted for change 1 (published and confirmed); 2...4 became durable but
        // the crash came before they were written. The journal holds 3 and 4.
        try OutboxStore.open(directory: directory, epoch: "e1", lastSequence: 1).close()
        var subsystem = try Subsystem(topology: .embeddedDefault)
        let publisher = PathChangePublisher()
        var journal: [JournaledPathChange] = []
        for (index, state) in [VaryState.offline, .online, .offline, .online].enumerated() {
            let change = try subsystem.varyPath(try ChannelPathID(parsing: "0.40"), to: state)
            let published = try #require(
                publisher.publish(change, as: PathEventChange(state), cause: .command(by: .connection(1))))
            if index >= 2 {
                journal.append(
                    JournaledPathChange(
                        sequence: published.sequence, change: published.change, kind: published.kind,
                        time: published.time, guests: published.guests))
            }
        }
        let configuration = NotifyConfiguration(
            broker: try BrokerAddress(parsing: "amqp://127.0.0.1:1/%2F"),
            credentials: BrokerCredentials(username: "u", password: "p"))
        let notifier = try PathNotifier(
            configuration: configuration, epoch: "e1",
            persistence: NotifyPersistence(
                directory: directory, lastSequence: 4, journal: journal, cause: .command(by: .replay),
                durableThrough: { 4 }),
            logger: Logger(label: "test"))
        let counters = notifier.outbox.counters
        #expect(counters.rebuilt == 2 && counters.restored == 0)
        #expect(counters.pendingGap == [2...2])
        let gap = try #require(notifier.outbox.takeGap())
        #expect(gap.reason == .restart && gap.ranges == [2...2])
        notifier.stop()  // writes the rebuilt rows and the gap in flight
        let again = try OutboxStore.open(directory: directory, epoch: "e1", lastSequence: 4)
        defer { again.close() }
        #expect(again.saved.rows.map(\.notification.sequence) == [3, 4] && again.saved.through == 4)
        #expect(again.saved.gaps == [gap])
    }
}
