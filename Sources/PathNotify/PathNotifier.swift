// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Logging
import QMPCommands
import QMPWire

/// `--notify`: path changes as oslo.messaging notifications on a RabbitMQ broker
/// (API/notify.md). A `PathChangeSink`: on the event loop it only encodes the change's
/// notifications and appends them to the bounded outbox; a thread of its own
/// (`AMQPPublisher`) talks to the broker. The event loop never waits on the broker.
package final class PathNotifier: PathChangeSink {
    package let configuration: NotifyConfiguration
    /// The history the sequence numbers belong to: cssd passes its journal's epoch, which
    /// `--state-dir` keeps across restarts.
    package let epoch: String
    let outbox: NotificationOutbox
    private let encoder: OsloNotificationEncoder
    private let publisher: AMQPPublisher
    private let logger: Logger
    /// Event loop only: whether the outbox was refusing notifications at the last change.
    private var overflowing = false

    package init(configuration: NotifyConfiguration, epoch: String = randomHex(8), logger: Logger) {
        self.configuration = configuration
        self.epoch = epoch
        self.logger = logger
        outbox = NotificationOutbox(maxEvents: configuration.maxEvents, maxBytes: configuration.maxBytes)
        encoder = OsloNotificationEncoder(
            publisherID: configuration.publisherID, topic: configuration.topic, filter: configuration.filter)
        publisher = AMQPPublisher(
            configuration: configuration, outbox: outbox, encoder: encoder, epoch: epoch, logger: logger)
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
        publisher.start()
    }

    /// Stops the publishing thread and closes the connection.
    package func stop() { publisher.stop() }

    package func pathChangePublished(_ published: PublishedPathChange) {
        let notifications = encoder.notifications(for: published, epoch: epoch)
        guard !notifications.isEmpty else { return }
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
        ]
        if let error = status.lastError { members.append(("last-error", .string(error))) }
        return .object(members)
    }
}
