// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import JSONValues
import Logging
import PathChangePipeline
import PathEvents

/// What the notifier needs to keep its outbox in the state dir (`--state-dir` with `--notify`).
package struct NotifyPersistence {
    /// The state dir (checked by the state store: a writable directory).
    package var directory: String
    /// The newest change durable in the state store, after its restore.
    package var lastSequence: UInt64
    /// The restored journal's changes, oldest first: the notifications of durable changes that
    /// had not reached the outbox before a crash are made again from them.
    package var journal: [JournaledPathChange]
    /// The cause the rebuilt notifications name (the journal does not keep it: with the model
    /// every restored change is a replayed command).
    package var cause: PathChangeCause
    /// The newest sequence number durable in the state store now (any thread, no I/O).
    package var durableThrough: @Sendable () -> UInt64

    package init(
        directory: String, lastSequence: UInt64, journal: [JournaledPathChange], cause: PathChangeCause,
        durableThrough: @escaping @Sendable () -> UInt64
    ) {
        self.directory = directory
        self.lastSequence = lastSequence
        self.journal = journal
        self.cause = cause
        self.durableThrough = durableThrough
    }
}

/// `--notify`: path changes as oslo.messaging notifications on a RabbitMQ broker
/// (API/notify.md). A `PathChangeSink`: on the event loop it only encodes the change's
/// notifications and appends them to the bounded outbox; a thread of its own
/// (`AMQPPublisher`) talks to the broker. The event loop never waits on the broker.
///
/// With a state dir (`NotifyPersistence`) the outbox is kept in `DIR/notify-outbox.sqlite` by a
/// writer thread (`OutboxWriter`, `OutboxStore`), and only durable changes are published. At
/// start it reloads what the file held (unconfirmed notifications, byte for byte; the gaps
/// not yet confirmed), drops what belongs to changes that did not become durable, and for the
/// durable changes the file had not accounted for yet (a crash between the state store's
/// commit and the outbox's write) makes their notifications again from the restored journal,
/// or, where the journal does not hold them, reports them as a `restart` gap. All of that is
/// published first, in order, before new notifications.
package final class PathNotifier: PathChangeSink {
    package let configuration: NotifyConfiguration
    /// The history the sequence numbers belong to: cssd passes its journal's epoch, which
    /// `--state-dir` keeps across restarts.
    package let epoch: String
    let outbox: NotificationOutbox
    private let encoder: OsloNotificationEncoder
    private let publisher: AMQPPublisher
    private let writer: OutboxWriter?
    private let logger: Logger
    /// The state dir's outbox file; nil without one.
    package let outboxFile: String?
    /// Event loop only: whether the outbox was refusing notifications at the last change.
    private var overflowing = false
    /// With a state dir: the state store's newest durable sequence number.
    private let durableThrough: (@Sendable () -> UInt64)?

    /// - Throws: `OutboxStoreError` (with `persistence`) when the state dir's outbox cannot be
    ///   used: cssd refuses to start, nothing was written.
    package init(
        configuration: NotifyConfiguration, epoch: String = randomHex(8), persistence: NotifyPersistence? = nil,
        logger: Logger
    ) throws(OutboxStoreError) {
        self.configuration = configuration
        self.epoch = epoch
        self.logger = logger
        let outbox = NotificationOutbox(
            maxEvents: configuration.maxEvents, maxBytes: configuration.maxBytes, persistent: persistence != nil)
        self.outbox = outbox
        let encoder = OsloNotificationEncoder(
            publisherID: configuration.publisherID, topic: configuration.topic, filter: configuration.filter)
        self.encoder = encoder
        durableThrough = persistence?.durableThrough
        publisher = AMQPPublisher(
            configuration: configuration, outbox: outbox, encoder: encoder, epoch: epoch,
            durableThrough: persistence?.durableThrough, logger: logger)
        guard let persistence else {
            writer = nil
            outboxFile = nil
            return
        }
        let started = ContinuousClock.now
        let store = try OutboxStore.open(
            directory: persistence.directory, epoch: epoch, lastSequence: persistence.lastSequence)
        outboxFile = store.path
        let saved = store.saved
        let refused = outbox.restore(saved.rows, gaps: saved.gaps, through: saved.through)
        do {
            try store.delete(ids: refused)
        } catch {
            store.close()
            throw OutboxStoreError("cannot write \(store.path): \(error)")
        }
        // Durable changes the file had not accounted for: made again from the journal, in
        // order, or reported as lost.
        var lost = NotificationGap(reason: .restart, ranges: [], dropped: 0)
        if saved.through < persistence.lastSequence {
            let journal = persistence.journal
            let base = journal.first?.sequence ?? 0
            for sequence in (saved.through + 1)...persistence.lastSequence {
                let index = Int(truncatingIfNeeded: sequence &- base)
                if !journal.isEmpty, sequence >= base, index < journal.count, journal[index].sequence == sequence {
                    outbox.append(
                        encoder.notifications(for: journal[index], cause: persistence.cause, epoch: epoch),
                        sequence: sequence, rebuilt: true)
                } else {
                    lost.add(sequence)
                }
            }
        }
        outbox.addGap(lost)
        let counters = outbox.counters
        logger.info(
            store.created ? "notify: outbox created in the state dir" : "notify: outbox restored from the state dir",
            metadata: [
                "file": "\(store.path)", "restored": "\(counters.restored)", "rebuilt": "\(counters.rebuilt)",
                "discarded": "\(saved.discarded)", "refused": "\(refused.count)", "lost": "\(lost.ranges)",
                "pending-gap": "\(counters.pendingGap)", "through": "\(saved.through)",
                "last-sequence": "\(persistence.lastSequence)", "took": "\(ContinuousClock.now - started)",
                "reading": "\(saved.reading)",
            ])
        if !lost.ranges.isEmpty {
            logger.warning(
                """
                notify: notifications of durable changes were lost in a crash (not in the outbox, not in the \
                journal); a gap notification will name them
                """, metadata: ["missed": "\(lost.ranges)"])
        }
        // Every change up to the restored last one is durable.
        outbox.durabilityAdvanced(through: persistence.lastSequence)
        writer = OutboxWriter(outbox: outbox, store: store, logger: logger)
    }

    /// Starts the publishing thread; connection problems are retried and reported, never thrown.
    package func start() {
        logger.info(
            "notify: publishing path events",
            metadata: [
                "broker": "\(configuration.broker)", "user": "\(configuration.credentials.username)",
                "exchange": "\(configuration.exchange)", "granularity": "\(configuration.filter.granularity.rawValue)",
                "epoch": "\(epoch)",
            ])
        writer?.start()
        publisher.start()
    }

    /// Stops the publishing thread and closes the connection, within 3 s whatever the broker
    /// does (`AMQPPublisher.stop`); then writes what is left of the outbox to the state dir and
    /// closes it.
    package func stop() {
        publisher.stop()
        writer?.stop()
    }

    /// To call when the state store made more changes durable: wakes the publisher (their
    /// notifications may go). Any thread.
    package var durabilityAdvanced: @Sendable () -> Void {
        let outbox = outbox
        guard let durableThrough else { return { outbox.durabilityAdvanced() } }
        return { outbox.durabilityAdvanced(through: durableThrough()) }
    }

    package func pathChangePublished(_ published: PublishedPathChange) {
        let notifications = encoder.notifications(for: published, epoch: epoch)
        // Passed even when empty: the state dir's outbox notes that it accounted for it.
        guard !notifications.isEmpty || outbox.persistent else { return }
        let fitted = outbox.append(notifications, sequence: published.sequence)
        if !fitted && !overflowing {
            logger.warning(
                "notify: outbox full, dropping notifications; a gap notification will name them",
                metadata: [
                    "max-events": "\(outbox.maxEvents)", "max-bytes": "\(outbox.maxBytes)",
                    "sequence": "\(published.sequence)",
                ])
        } else if fitted && overflowing {
            logger.notice("notify: outbox has room again", metadata: ["dropped": "\(outbox.counters.dropped)"])
        }
        overflowing = !fitted
    }

    /// Reads the outbox's counters and the broker state from any thread (each under its own
    /// short lock, no I/O): for metrics, read at scrape time.
    package var figures: @Sendable () -> (counters: NotificationOutbox.Counters, state: BrokerState, connections: Int) {
        let outbox = outbox
        let publisher = publisher
        return {
            let status = publisher.status
            return (outbox.counters, status.state, status.connections)
        }
    }

    /// `query-notify`'s reply (API/path-events.json, NotifyInfo).
    package func status() -> JSON {
        let counters = outbox.counters
        let status = publisher.status
        var members: [(String, JSON)] = [
            ("enabled", .bool(true)),
            ("broker", .string(configuration.broker.description)),
            ("state", .string(status.state.rawValue)),
            ("epoch", .string(epoch)),
            ("outbox-depth", .integer(counters.depth)), ("outbox-bytes", .integer(counters.bytes)),
            ("outbox-max-events", .integer(outbox.maxEvents)), ("outbox-max-bytes", .integer(outbox.maxBytes)),
            ("published", .integer(counters.published)), ("confirmed", .integer(counters.confirmed)),
            ("failed", .integer(counters.failed)), ("dropped", .integer(counters.dropped)),
            ("gaps", .integer(counters.gapsReported)),
            (
                "pending-gap",
                .array(
                    counters.pendingGap.map {
                        .object([("first", .integer(Int($0.lowerBound))), ("last", .integer(Int($0.upperBound)))])
                    })
            ),
            ("connections", .integer(status.connections)),
            ("persistent", .bool(outboxFile != nil)),
            ("restored", .integer(counters.restored)), ("rebuilt", .integer(counters.rebuilt)),
        ]
        if counters.writeErrors > 0 { members.append(("write-errors", .integer(counters.writeErrors))) }
        if let error = status.lastError { members.append(("last-error", .string(error))) }
        return .object(members)
    }
}
