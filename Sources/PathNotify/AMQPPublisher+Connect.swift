// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CRabbitMQ

extension AMQPPublisher {
    /// An RPC reply's failure as text (the library's or the broker's), nil for success.
    static func describe(_ reply: amqp_rpc_reply_t) -> String? {
        var buffer = [CChar](repeating: 0, count: 512)
        return cssd_amqp_describe(reply, &buffer, buffer.count) == 0 ? nil : text(buffer)
    }

    /// A NUL-terminated C buffer's text.
    static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Why a broker operation failed, naming `step`: a deadline or a missed heartbeat in words
    /// an operator can act on, or the library's or the broker's own text.
    func problem(_ step: String, status: Int32, detail: @autoclosure () -> String) -> String {
        switch status {
        case AMQP_STATUS_TIMEOUT.rawValue:
            return "\(step): no answer from the broker within \(deadlineText) (--notify-timeout)"
        case AMQP_STATUS_HEARTBEAT_TIMEOUT.rawValue:
            let heartbeat = Int(amqpHeartbeat)
            return
                "\(step): nothing from the broker for \(2 * heartbeat) s, twice the heartbeat (--notify-heartbeat \(heartbeat))"
        default:
            return "\(step) failed: \(detail())"
        }
    }

    /// Opens a connection and makes it ready to publish: socket (TCP or TLS), login, channel
    /// in confirm mode, oslo's exchange and queues; each step within the deadline or failed
    /// naming it.
    func connect() -> Result<amqp_connection_state_t, Failure> {
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
        let place = "\(broker.host):\(broker.port)"
        let opened = cssd_amqp_open(socket, broker.host, Int32(broker.port), deadlineMillis)
        if opened != AMQP_STATUS_OK.rawValue {
            amqp_destroy_connection(connection)
            if opened == AMQP_STATUS_TIMEOUT.rawValue {
                let what = broker.tls ? "TCP connect and TLS handshake" : "TCP connect"
                return .failure(
                    Failure(
                        description: "cannot reach \(place): \(what) not done within \(deadlineText) (--notify-timeout)"
                    ))
            }
            // rabbitmq-c's TLS codes are -0x0200...-0x0204: a broker that answered, but whose
            // certificate or host name did not verify, is not "unreachable".
            let reason = String(cString: amqp_error_string2(opened))
            let tlsFailed = (-0x0204 ... -0x0200).contains(opened)
            let description = tlsFailed ? "TLS with \(place) failed: \(reason)" : "cannot reach \(place): \(reason)"
            return .failure(Failure(description: description))
        }
        socketGuard.attach(amqp_get_sockfd(connection))
        // A stop that came while connecting: it may have missed the socket.
        if isStopped {
            close(connection)
            return .failure(Failure(description: "stopped"))
        }
        cssd_amqp_set_deadlines(connection, deadlineMillis)
        let exchange = configuration.exchange
        let durable: Int32 = configuration.durable ? 1 : 0
        let info = "\(configuration.topic).info"
        let warn = "\(configuration.topic).warn"
        let user = configuration.credentials.username
        let steps: [(step: String, refused: String, run: () -> amqp_rpc_reply_t)] = [
            (
                "login as '\(user)' to vhost '\(broker.vhost)'",
                "login as '\(user)' to vhost '\(broker.vhost)' refused",
                {
                    cssd_amqp_login_plain(
                        connection, broker.vhost, user, self.configuration.credentials.password,
                        Int32(self.configuration.heartbeat))
                }
            ),
            ("channel.open", "channel.open failed", { cssd_amqp_open_channel(connection) }),
            ("confirm.select", "confirm.select failed", { cssd_amqp_confirm_select(connection) }),
            (
                "exchange.declare '\(exchange)'", "exchange.declare '\(exchange)' failed",
                { cssd_amqp_declare_exchange(connection, exchange, durable) }
            ),
            (
                "queue.declare '\(info)'", "queue.declare '\(info)' failed",
                { cssd_amqp_declare_queue(connection, info, durable) }
            ),
            (
                "queue.bind '\(info)'", "queue.bind '\(info)' failed",
                { cssd_amqp_bind_queue(connection, info, exchange) }
            ),
            (
                "queue.declare '\(warn)'", "queue.declare '\(warn)' failed",
                { cssd_amqp_declare_queue(connection, warn, durable) }
            ),
            (
                "queue.bind '\(warn)'", "queue.bind '\(warn)' failed",
                { cssd_amqp_bind_queue(connection, warn, exchange) }
            ),
        ]
        for (step, refused, run) in steps {
            let reply = run()
            guard let detail = Self.describe(reply) else {
                amqpHeartbeat = amqp_get_heartbeat(connection)
                continue
            }
            close(connection)
            if reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION {
                return .failure(Failure(description: problem(step, status: reply.library_error, detail: detail)))
            }
            return .failure(Failure(description: "\(refused): \(detail)"))
        }
        return .success(connection)
    }
}
