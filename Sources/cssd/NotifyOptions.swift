// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import ArgumentParser
import PathNotify

/// `--notify` and its companions (docs/notifications.md, API/notify.md).
struct NotifyOptions: ParsableArguments {
    @Option(
        name: .customLong("notify"),
        help: """
            Publish path events as oslo.messaging notifications to this RabbitMQ broker: \
            amqp://HOST[:PORT]/VHOST or amqps://... (TLS). No credentials here: see --notify-credentials.
            """)
    var broker: String?

    @Option(
        name: .customLong("notify-credentials"),
        help: "File with 'username=NAME' and 'password=SECRET' lines for the broker (required with --notify).")
    var credentials: String?

    @Option(
        name: .customLong("notify-ca"),
        help: "amqps: PEM file of the CA certificates the broker's certificate must chain to.")
    var caFile: String?

    @Option(
        name: .customLong("notify-granularity"),
        help: "chpid (default: one per chpid change), subchannel, both or guest.")
    var granularity: String?

    @Option(name: .customLong("notify-chpids"), help: "Only these chpids, comma-separated (0.40,0.41).")
    var chpids: String?

    @Option(name: .customLong("notify-changes"), help: "Only these changes, comma-separated (offline,permanent-error).")
    var changes: String?

    @Option(name: .customLong("notify-exchange"), help: "oslo.messaging's control_exchange.")
    var exchange: String = "openstack"

    @Option(name: .customLong("notify-topic"), help: "oslo.messaging's notification topic.")
    var topic: String = "notifications"

    @Flag(
        name: .customLong("notify-durable"),
        help:
            "Declare the exchange and queues durable, as oslo.messaging with amqp_durable_queues=true (must match the listeners)."
    )
    var durable = false

    @Option(
        name: .customLong("notify-outbox-events"),
        help: "Notifications held until the broker confirms them.")
    var outboxEvents: Int = 100_000

    @Option(
        name: .customLong("notify-outbox-bytes"),
        help: "Bytes of notifications held until confirmed.")
    var outboxBytes: Int = 64 << 20

    @Option(
        name: .customLong("notify-timeout"),
        help: """
            Deadline of every broker operation in seconds (connect, login, channel.open, declarations, \
            publish and its confirm, close; default 10): past it the step is reported and retried.
            """)
    var timeout: Int?

    @Option(
        name: .customLong("notify-heartbeat"),
        help: "AMQP heartbeat in seconds proposed to the broker (default 60, as oslo.messaging; 0: none).")
    var heartbeat: Int?

    /// The configuration, or nil without --notify.
    /// - Throws: `ValidationError` naming the problem (companions without --notify, no or bad
    ///   credentials file, bad URL or filter, bounds out of range).
    func configuration() throws -> NotifyConfiguration? {
        guard let broker else {
            if credentials != nil || caFile != nil || granularity != nil || chpids != nil || changes != nil
                || timeout != nil || heartbeat != nil
            {
                throw ValidationError("--notify-* options need --notify amqp://HOST:PORT/VHOST")
            }
            return nil
        }
        guard let credentials else {
            throw ValidationError("--notify needs --notify-credentials FILE (credentials never go on the command line)")
        }
        guard (1...10_000_000).contains(outboxEvents) else {
            throw ValidationError("--notify-outbox-events must be 1..10000000")
        }
        guard (4096...(1 << 34)).contains(outboxBytes) else {
            throw ValidationError("--notify-outbox-bytes must be 4096..17179869184")
        }
        if let timeout, !(1...3600).contains(timeout) {
            throw ValidationError("--notify-timeout must be 1..3600 (seconds)")
        }
        if let heartbeat, !(0...65535).contains(heartbeat) {
            throw ValidationError("--notify-heartbeat must be 0..65535 (seconds; 0: no heartbeat)")
        }
        do throws(NotifyConfigurationError) {
            let address = try BrokerAddress(parsing: broker)
            if caFile != nil && !address.tls { throw NotifyConfigurationError("--notify-ca needs an amqps:// broker") }
            return NotifyConfiguration(
                broker: address, credentials: try BrokerCredentials(contentsOf: credentials), caFile: caFile,
                filter: try NotifyFilter(granularity: granularity, chpids: chpids, changes: changes),
                exchange: exchange,
                topic: topic, durable: durable, maxEvents: outboxEvents, maxBytes: outboxBytes,
                timeout: Double(timeout ?? 10), heartbeat: heartbeat ?? 60)
        } catch {
            throw ValidationError(error.description)
        }
    }
}
