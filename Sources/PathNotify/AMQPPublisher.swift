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
/// within the deadline closes the connection; everything unconfirmed is published again,
/// unchanged, after reconnecting (so a consumer may see a notification twice, with the same
/// message_id and sequence). Reconnection waits `backoff.first` seconds, doubling up to
/// `backoff.most`. Missed sequence numbers (outbox overflow) are published first after
/// connecting, as one gap notification.
///
/// Deadlines (`NotifyConfiguration.timeout`, T): every broker operation ends within T or fails
/// naming its step — the TCP connect and TLS handshake (`amqp_socket_open_noblock`), the login
/// (`amqp_set_handshake_timeout`), each RPC (`amqp_set_rpc_timeout`: channel.open,
/// confirm.select, the declarations, the close), each wait for a confirm
/// (`amqp_simple_wait_frame_noblock`) and each publish's write (`BrokerSocketGuard`: the
/// library has no deadline for writes). Heartbeats (`heartbeat`, H, as oslo.messaging's
/// clients use them) find a silent broker while idle: after 2H without a byte from it.
/// A stop returns within 3 s whatever the broker does: it lets the thread close the connection
/// for 1 s, then shuts its socket down under the call it is in, then leaves a thread still
/// stuck behind (only one inside rabbitmq-c's socket open can be: name resolution, the TCP
/// connect or the TLS handshake, before cssd knows the socket).
final class AMQPPublisher: @unchecked Sendable {
    struct Status: Sendable {
        var state: BrokerState = .connecting
        var lastError: String?
        var connections = 0
    }

    let configuration: NotifyConfiguration
    private let outbox: NotificationOutbox
    private let encoder: OsloNotificationEncoder
    private let epoch: String
    private let logger: Logger
    private let statusBox = NIOLockedValueBox(Status())
    private let stopped = NIOLockedValueBox(false)
    /// The publishing thread and the deadline watchdog (`BrokerSocketGuard.watch`).
    private let pool = NIOThreadPool(numberOfThreads: 2)
    let socketGuard = BrokerSocketGuard()
    /// Where the publishing thread is: 0 not started, 1 running, 2 left `run`.
    private let thread = ConditionLock(value: 0)
    /// Every broker operation's deadline, milliseconds (`NotifyConfiguration.timeout`).
    let deadlineMillis: Int32

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
        deadlineMillis = Int32(max(1, min(configuration.timeout * 1000, 3_600_000)).rounded())
    }

    /// The deadline as shown in errors.
    var deadlineText: String {
        let seconds = Double(deadlineMillis) / 1000
        return seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
    }

    var status: Status { statusBox.withLockedValue { $0 } }

    func start() {
        pool.start()
        thread.lock()
        thread.unlock(withValue: 1)
        pool.submit { [self] _ in
            run()
            thread.lock()
            thread.unlock(withValue: 2)
        }
        pool.submit { [self] _ in socketGuard.watch { self.isStopped } }
    }

    /// Stops the thread and closes the connection, within 3 s whatever the broker does (see the
    /// type's doc); what is still in the outbox stays unpublished.
    func stop() {
        stopped.withLockedValue { $0 = true }
        outbox.signal.lock()
        outbox.signal.unlock(withValue: 1)
        let started = thread.value != 0
        // An idle or working connection closes by itself (connection.close) in well under 1 s.
        var ended = !started || thread.lock(whenValue: 2, timeoutSeconds: 1)
        if !ended {
            // In a broker call that waits for an answer: end it now, not at its deadline.
            let interrupted = socketGuard.interrupt()
            ended = thread.lock(whenValue: 2, timeoutSeconds: 2)
            if interrupted || !ended {
                logger.notice(
                    "notify: stopped while the broker did not answer",
                    metadata: ["broker": "\(configuration.broker)", "step-interrupted": "\(interrupted)"])
            }
        }
        if ended {
            if started { thread.unlock() }
            try? pool.syncShutdownGracefully()
        } else {
            // Only rabbitmq-c's socket open can hold it (name resolution, TCP connect, TLS
            // handshake; bounded by the deadline but for the resolver): not worth holding
            // cssd's exit for.
            logger.warning(
                "notify: the publishing thread is still connecting; leaving it behind",
                metadata: ["broker": "\(configuration.broker)"])
        }
        statusBox.withLockedValue { $0.state = .stopped }
    }

    var isStopped: Bool { stopped.withLockedValue { $0 } }

    private func run() {
        var delay = configuration.backoff.first
        while !isStopped {
            let connection: amqp_connection_state_t
            switch connect() {
            case .success(let opened): connection = opened
            case .failure(let error):
                if isStopped { return }
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
                // Bounded by the RPC deadline, and cut short by stop() after 1 s.
                amqp_channel_close(connection, 1, AMQP_REPLY_SUCCESS)
                amqp_connection_close(connection, AMQP_REPLY_SUCCESS)
            }
            close(connection)
            if let reason, !isStopped { failed(reason) }
        }
    }

    /// Frees a connection: its socket is forgotten by the guard first (see `BrokerSocketGuard`).
    func close(_ connection: amqp_connection_state_t) {
        socketGuard.detach()
        amqp_destroy_connection(connection)
    }

    struct Failure: Error, CustomStringConvertible {
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

    /// The heartbeat negotiated on the current connection, seconds (publishing thread only).
    var amqpHeartbeat: Int32 = 0

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

        /// - Returns: nil, or why the connection is lost.
        func publish(_ notification: OsloNotification) -> String? {
            let status = socketGuard.during("basic.publish", seconds: Double(deadlineMillis) / 1000) {
                notification.body.withUnsafeBytes { body in
                    cssd_amqp_publish(
                        connection, configuration.exchange, notification.routingKey, body.baseAddress, body.count,
                        notification.messageID)
                }
            }
            if status == AMQP_STATUS_OK.rawValue { return nil }
            if socketGuard.takeOverrun() != nil {
                return "basic.publish: the broker took no data within \(deadlineText) (--notify-timeout)"
            }
            return problem("basic.publish", status: status, detail: String(cString: amqp_error_string2(status)))
        }

        while !isStopped {
            let room = configuration.window - (pending.count - pendingHead)
            if room > 0, let gap = outbox.takeGap() {
                let report = encoder.gap(
                    gap.ranges, dropped: gap.dropped, reason: gap.reason.rawValue, epoch: epoch, at: now())
                pending.append(.gap(gap))
                if let lost = publish(report) { return giveUp(lost) }
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
                if let lost = publish(notification) { return giveUp(lost) }
            }
            if !batch.isEmpty { outbox.count(published: batch.count) }

            if pending.count == pendingHead {
                // Idle: wake on an append, and look at the socket at least every 0.2 s so that a
                // broker that went away is noticed (and shown in query-notify) before the next
                // event; rabbitmq-c sends and checks heartbeats only inside its calls.
                if outbox.signal.lock(whenValue: 1, timeoutSeconds: 0.2) {
                    outbox.signal.unlock(withValue: 0)
                }
                var tag: UInt64 = 0
                var multiple: Int32 = 0
                var nack: Int32 = 0
                let status = cssd_amqp_wait_confirm(connection, 0, &tag, &multiple, &nack, &error, error.count)
                if status < 0 {
                    return giveUp(problem("idle connection", status: status, detail: Self.text(error)))
                }
                continue
            }

            var tag: UInt64 = 0
            var multiple: Int32 = 0
            var nack: Int32 = 0
            let waited = cssd_amqp_wait_confirm(
                connection, deadlineMillis, &tag, &multiple, &nack, &error, error.count)
            if waited < 0 {
                return giveUp(problem("waiting for basic.ack", status: waited, detail: Self.text(error)))
            }
            if waited == 0 {
                return giveUp(
                    "basic.publish: no confirm (basic.ack) from the broker within \(deadlineText) (--notify-timeout)")
            }
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
