// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CRabbitMQ
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import PathEvents

#if canImport(Glibc)
import Glibc
#endif

/// Where the broker connection stands (`query-notify`'s `state`).
package enum BrokerState: String, Sendable {
    /// Not started yet, or connecting for the first time.
    case connecting
    /// Logged in, exchange and queues declared, channel in confirm mode.
    case connected
    /// The last attempt or the connection failed; retrying after a backoff (see `lastError`).
    case disconnected
    case stopped
}

/// Publishes the outbox to RabbitMQ through rabbitmq-c on a thread of its own: the library is
/// synchronous (one connection per thread), and the event loop must never wait on the broker.
///
/// Loop: connect (TCP or TLS, login PLAIN, channel 1 in confirm mode, declare oslo's topic
/// exchange and the `<topic>.info`/`<topic>.warn` queues as oslo's notifier does); then publish
/// the outbox front in order, at most `window` unconfirmed, and drop entries from the outbox
/// only when the broker confirms them (basic.ack). A nack, a lost connection or no confirm
/// within 10 s closes the connection; everything unconfirmed is published again, unchanged,
/// after reconnecting (so a consumer may see a notification twice, with the same message_id
/// and sequence). Reconnection waits `backoff.first` seconds, doubling up to `backoff.most`.
/// Missed sequence numbers (outbox overflow) are published first after connecting, as one gap
/// notification.
final class AMQPPublisher: @unchecked Sendable {
    struct Status: Sendable {
        var state: BrokerState = .connecting
        var lastError: String?
        var connections = 0
    }

    private let configuration: NotifyConfiguration
    private let outbox: NotificationOutbox
    private let encoder: OsloNotificationEncoder
    private let epoch: String
    private let logger: Logger
    private let statusBox = NIOLockedValueBox(Status())
    private let stopped = NIOLockedValueBox(false)
    private let pool = NIOThreadPool(numberOfThreads: 1)
    /// How long to wait for the broker's confirm of the oldest unconfirmed publish.
    private let confirmTimeoutMillis: Int32 = 10_000

    /// The newest sequence number whose change is durable in the state store (`--state-dir`):
    /// notifications of later changes wait, so that a number a consumer saw is never given to
    /// another change after a crash. nil: no state dir, nothing waits.
    private let durableThrough: (@Sendable () -> UInt64)?

    init(
        configuration: NotifyConfiguration, outbox: NotificationOutbox, encoder: OsloNotificationEncoder, epoch: String,
        durableThrough: (@Sendable () -> UInt64)? = nil, logger: Logger
    ) {
        self.configuration = configuration
        self.outbox = outbox
        self.encoder = encoder
        self.epoch = epoch
        self.durableThrough = durableThrough
        self.logger = logger
    }

    var status: Status { statusBox.withLockedValue { $0 } }

    func start() {
        pool.start()
        pool.submit { [self] _ in run() }
    }

    /// Stops the thread (within about a second: it finishes the wait it is in) and closes the
    /// connection; what is still in the outbox stays unpublished.
    func stop() {
        stopped.withLockedValue { $0 = true }
        outbox.signal.lock()
        outbox.signal.unlock(withValue: 1)
        try? pool.syncShutdownGracefully()
        statusBox.withLockedValue { $0.state = .stopped }
    }

    private var isStopped: Bool { stopped.withLockedValue { $0 } }

    private func run() {
        var delay = configuration.backoff.first
        while !isStopped {
            let connection: amqp_connection_state_t
            switch connect() {
            case .success(let opened): connection = opened
            case .failure(let error):
                failed(error.description)
                sleepUnlessStopped(delay)
                delay = min(delay * 2, configuration.backoff.most)
                continue
            }
            delay = configuration.backoff.first
            let connections = statusBox.withLockedValue { status -> Int in
                status.state = .connected
                status.connections += 1
                return status.connections
            }
            logger.info(
                "notify: connected",
                metadata: [
                    "broker": "\(configuration.broker)", "outbox": "\(outbox.counters.depth)",
                    "connection": "\(connections)",
                ])
            let reason = serve(connection)
            if isStopped {
                amqp_channel_close(connection, 1, AMQP_REPLY_SUCCESS)
                amqp_connection_close(connection, AMQP_REPLY_SUCCESS)
            }
            amqp_destroy_connection(connection)
            if let reason { failed(reason) }
        }
    }

    private struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private func failed(_ message: String) {
        let changed = statusBox.withLockedValue { status -> Bool in
            let changed = status.lastError != message || status.state != .disconnected
            status.state = .disconnected
            status.lastError = message
            return changed
        }
        // Once per distinct error, not once per retry.
        if changed {
            logger.error("notify: \(message); retrying with backoff", metadata: ["broker": "\(configuration.broker)"])
        }
    }

    private func sleepUnlessStopped(_ seconds: Double) {
        var left = seconds
        while left > 0 && !isStopped {
            let step = min(left, 0.1)
            usleep(UInt32(step * 1_000_000))
            left -= step
        }
    }

    private static func describe(_ reply: amqp_rpc_reply_t) -> String? {
        var buffer = [CChar](repeating: 0, count: 512)
        return cssd_amqp_describe(reply, &buffer, buffer.count) == 0 ? nil : String(cString: buffer)
    }

    private func connect() -> Result<amqp_connection_state_t, Failure> {
        let broker = configuration.broker
        guard let connection = amqp_new_connection() else { return .failure(Failure(description: "out of memory")) }
        let socket: OpaquePointer?
        if broker.tls {
            socket = amqp_ssl_socket_new(connection)
            if let socket {
                if let ca = configuration.caFile, amqp_ssl_socket_set_cacert(socket, ca) != AMQP_STATUS_OK.rawValue {
                    amqp_destroy_connection(connection)
                    return .failure(Failure(description: "cannot use CA file \(ca) (not readable PEM certificates?)"))
                }
                amqp_ssl_socket_set_verify_peer(socket, 1)
                amqp_ssl_socket_set_verify_hostname(socket, 1)
            }
        } else {
            socket = amqp_tcp_socket_new(connection)
        }
        guard let socket else {
            amqp_destroy_connection(connection)
            return .failure(Failure(description: "cannot create a socket"))
        }
        let opened = cssd_amqp_open(socket, broker.host, Int32(broker.port), Int32(configuration.connectTimeout))
        if opened != AMQP_STATUS_OK.rawValue {
            amqp_destroy_connection(connection)
            // rabbitmq-c's TLS codes are -0x0200...-0x0204: a broker that answered, but whose
            // certificate or host name did not verify, is not "unreachable".
            let reason = String(cString: amqp_error_string2(opened))
            let place = "\(broker.host):\(broker.port)"
            let tlsFailed = (-0x0204 ... -0x0200).contains(opened)
            let description = tlsFailed ? "TLS with \(place) failed: \(reason)" : "cannot reach \(place): \(reason)"
            return .failure(Failure(description: description))
        }
        let steps: [(String, () -> amqp_rpc_reply_t)] = [
            (
                "login as '\(configuration.credentials.username)' to vhost '\(broker.vhost)' refused",
                {
                    cssd_amqp_login_plain(
                        connection, broker.vhost, self.configuration.credentials.username,
                        self.configuration.credentials.password)
                }
            ),
            ("opening a channel in confirm mode failed", { cssd_amqp_open_confirmed_channel(connection) }),
            (
                "declaring exchange '\(configuration.exchange)' and queue '\(configuration.topic).info' failed",
                {
                    cssd_amqp_declare(
                        connection, self.configuration.exchange, "\(self.configuration.topic).info",
                        self.configuration.durable ? 1 : 0)
                }
            ),
            (
                "declaring queue '\(configuration.topic).warn' failed",
                {
                    cssd_amqp_declare(
                        connection, self.configuration.exchange, "\(self.configuration.topic).warn",
                        self.configuration.durable ? 1 : 0)
                }
            ),
        ]
        for (what, step) in steps {
            if let problem = Self.describe(step()) {
                amqp_destroy_connection(connection)
                return .failure(Failure(description: "\(what): \(problem)"))
            }
        }
        return .success(connection)
    }

    /// What one delivery tag on this connection stands for.
    private enum Pending {
        case entry
        case gap(NotificationGap)
    }

    /// Publishes until the connection fails or the publisher stops.
    /// - Returns: why the connection ended; nil when stopped.
    private func serve(_ connection: amqp_connection_state_t) -> String? {
        var pending: [Pending] = []
        var pendingHead = 0
        /// Delivery tag of `pending[pendingHead]`.
        var baseTag: UInt64 = 1
        var done: Set<UInt64> = []
        var entriesInFlight = 0
        var error = [CChar](repeating: 0, count: 512)

        func giveUp(_ reason: String) -> String {
            var lost = 0
            // Newest first: each goes back before the ones restored after it.
            for item in pending[pendingHead...].reversed() {
                switch item {
                case .entry: lost += 1
                case .gap(let gap): outbox.restoreGap(gap)
                }
            }
            outbox.count(failed: lost)
            return reason
        }

        func publish(_ notification: OsloNotification) -> Bool {
            let status = notification.body.withUnsafeBytes { body in
                cssd_amqp_publish(
                    connection, configuration.exchange, notification.routingKey, body.baseAddress, body.count,
                    notification.messageID)
            }
            return status == AMQP_STATUS_OK.rawValue
        }

        while !isStopped {
            let room = configuration.window - (pending.count - pendingHead)
            if room > 0, let gap = outbox.takeGap() {
                let report = encoder.gap(
                    gap.ranges, dropped: gap.dropped, reason: gap.reason.rawValue, epoch: epoch, at: now())
                pending.append(.gap(gap))
                guard publish(report) else { return giveUp("publishing failed: connection lost") }
                outbox.count(published: 1)
                logger.warning(
                    "notify: reporting a gap",
                    metadata: [
                        "missed": "\(gap.ranges)", "dropped": "\(gap.dropped)", "reason": "\(gap.reason.rawValue)",
                    ])
                continue  // the next gap, if any, before the entries
            }
            let batch =
                room > 0 ? outbox.peek(from: entriesInFlight, count: room, through: durableThrough?() ?? .max) : []
            for notification in batch {
                pending.append(.entry)
                entriesInFlight += 1
                guard publish(notification) else { return giveUp("publishing failed: connection lost") }
            }
            if !batch.isEmpty { outbox.count(published: batch.count) }

            if pending.count == pendingHead {
                // Idle: wake on an append, and look at the socket now and then so that a broker
                // that went away is noticed (and shown in query-notify) before the next event.
                if outbox.signal.lock(whenValue: 1, timeoutSeconds: 0.2) {
                    outbox.signal.unlock(withValue: 0)
                } else {
                    var tag: UInt64 = 0
                    var multiple: Int32 = 0
                    var nack: Int32 = 0
                    if cssd_amqp_wait_confirm(connection, 0, &tag, &multiple, &nack, &error, error.count) < 0 {
                        return giveUp(String(cString: error))
                    }
                }
                continue
            }

            var tag: UInt64 = 0
            var multiple: Int32 = 0
            var nack: Int32 = 0
            let waited = cssd_amqp_wait_confirm(
                connection, confirmTimeoutMillis, &tag, &multiple, &nack, &error, error.count)
            if waited < 0 { return giveUp(String(cString: error)) }
            if waited == 0 { return giveUp("no confirm from the broker within \(confirmTimeoutMillis / 1000) s") }
            if nack != 0 { return giveUp("the broker refused a notification (basic.nack)") }
            if multiple != 0 {
                for confirmed in baseTag...max(baseTag, tag) where confirmed <= tag { done.insert(confirmed) }
            } else {
                done.insert(tag)
            }
            var confirmedEntries = 0
            while pendingHead < pending.count, done.remove(baseTag) != nil {
                switch pending[pendingHead] {
                case .entry: confirmedEntries += 1
                case .gap: outbox.gapReported()
                }
                pendingHead += 1
                baseTag += 1
            }
            if confirmedEntries > 0 {
                outbox.confirm(confirmedEntries)
                entriesInFlight -= confirmedEntries
            }
            if pendingHead > 4096 {
                pending.removeFirst(pendingHead)
                pendingHead = 0
            }
        }
        return nil
    }

    private func now() -> EventTime {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return EventTime(seconds: spec.tv_sec, microseconds: spec.tv_nsec / 1000)
    }
}
