// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import PathEvents

#if canImport(Glibc)
import Glibc
#endif

/// Why `--notify` and its companions were refused; cssd names the problem and does not start.
package struct NotifyConfigurationError: Error, CustomStringConvertible, Sendable {
    package let description: String
    package init(_ description: String) { self.description = description }
}

/// Where notifications go: `amqp://HOST[:PORT][/VHOST]` or `amqps://...` (TLS), the form of
/// RabbitMQ's URI spec (https://www.rabbitmq.com/docs/uri-spec) without credentials, which come
/// from a file only. The vhost is percent-decoded (`%2F` is `/`); an empty or missing one is `/`.
package struct BrokerAddress: Hashable, Sendable, CustomStringConvertible {
    package let tls: Bool
    package let host: String
    package let port: Int
    package let vhost: String

    /// - Throws: `NotifyConfigurationError` naming what is wrong (scheme, credentials in the URL,
    ///   port, percent escape).
    package init(parsing text: String) throws(NotifyConfigurationError) {
        let rest: Substring
        if text.hasPrefix("amqp://") {
            tls = false
            rest = text.dropFirst("amqp://".count)
        } else if text.hasPrefix("amqps://") {
            tls = true
            rest = text.dropFirst("amqps://".count)
        } else {
            throw NotifyConfigurationError(
                "--notify '\(text)': expected amqp://HOST:PORT/VHOST or amqps://HOST:PORT/VHOST")
        }
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count).dropFirst()
        if authority.contains("@") {
            throw NotifyConfigurationError(
                "--notify: credentials do not belong on the command line; put them in --notify-credentials FILE")
        }
        var hostPart = Substring(authority)
        var portText: Substring?
        if hostPart.hasPrefix("[") {
            guard let close = hostPart.firstIndex(of: "]") else {
                throw NotifyConfigurationError("--notify: unclosed '[' in '\(text)'")
            }
            let after = hostPart[hostPart.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() }
            hostPart = hostPart[hostPart.index(after: hostPart.startIndex)..<close]
        } else if let colon = hostPart.lastIndex(of: ":") {
            portText = hostPart[hostPart.index(after: colon)...]
            hostPart = hostPart[..<colon]
        }
        guard !hostPart.isEmpty else { throw NotifyConfigurationError("--notify '\(text)': no host") }
        host = String(hostPart)
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw NotifyConfigurationError("--notify '\(text)': port must be 1..65535")
            }
            port = value
        } else {
            port = tls ? 5671 : 5672
        }
        vhost = path.isEmpty ? "/" : try Self.percentDecoded(String(path))
    }

    private static func percentDecoded(_ text: String) throws(NotifyConfigurationError) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            else { throw NotifyConfigurationError("--notify: bad percent escape in vhost '\(text)'") }
            bytes.append(value)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    package var description: String {
        let escaped = vhost == "/" ? "%2F" : vhost.replacingSlashes()
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "\(tls ? "amqps" : "amqp")://\(shownHost):\(port)/\(escaped)"
    }
}

extension String {
    fileprivate func replacingSlashes() -> String {
        var out = ""
        for character in self { out += character == "/" ? "%2F" : String(character) }
        return out
    }
}

/// User name and password for the broker, read from `--notify-credentials FILE`: lines
/// `username=NAME` and `password=SECRET` (blank lines and `#` comments ignored). The password
/// is never logged nor shown: `description` hides it.
package struct BrokerCredentials: Sendable, CustomStringConvertible {
    package let username: String
    package let password: String

    package init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    /// - Throws: `NotifyConfigurationError` when the file cannot be read or lacks a key.
    package init(contentsOf path: String) throws(NotifyConfigurationError) {
        guard let file = fopen(path, "r") else {
            throw NotifyConfigurationError(
                "--notify-credentials \(path): cannot read (\(String(cString: strerror(errno))))")
        }
        defer { fclose(file) }
        var text: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            text += buffer[0..<count]
            if text.count > 65536 { throw NotifyConfigurationError("--notify-credentials \(path): larger than 64 KiB") }
        }
        var username: String?
        var password: String?
        for rawLine in String(decoding: text, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) {
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw NotifyConfigurationError(
                    "--notify-credentials \(path): expected 'username=...' and 'password=...' lines")
            }
            let key = line[..<equals].trimmingSpaces()
            let value = String(line[line.index(after: equals)...])
            switch key {
            case "username": username = value
            case "password": password = value
            default: throw NotifyConfigurationError("--notify-credentials \(path): unknown key '\(key)'")
            }
        }
        guard let username, !username.isEmpty, let password else {
            throw NotifyConfigurationError("--notify-credentials \(path): needs 'username=' and 'password=' lines")
        }
        self.init(username: username, password: password)
    }

    package var description: String { "\(username):<hidden>" }
}

extension Substring {
    fileprivate func trimmingSpaces() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}

/// Which path changes become notifications, like a subscription's filter (API/path-events.md):
/// the granularity (default `chpid`: one notification per chpid change), the chpids (nil: all)
/// and the changes (nil: all).
package struct NotifyFilter: Hashable, Sendable {
    package var granularity: PathEventGranularity
    package var chpids: Set<ChannelPathID>?
    package var changes: Set<PathEventChange>?

    package init(
        granularity: PathEventGranularity = .chpid, chpids: Set<ChannelPathID>? = nil,
        changes: Set<PathEventChange>? = nil
    ) {
        self.granularity = granularity
        self.chpids = chpids
        self.changes = changes
    }

    /// Parses the comma-separated option values.
    /// - Throws: `NotifyConfigurationError` naming the bad value and what is accepted.
    package init(granularity: String?, chpids: String?, changes: String?) throws(NotifyConfigurationError) {
        self.init()
        if let granularity {
            guard let value = PathEventGranularity(rawValue: granularity) else {
                throw NotifyConfigurationError(
                    "--notify-granularity '\(granularity)': expected one of "
                        + PathEventGranularity.allCases.map(\.rawValue).joined(separator: ", "))
            }
            self.granularity = value
        }
        if let chpids {
            var set = Set<ChannelPathID>()
            for text in chpids.split(separator: ",") {
                do throws(IDParseError) {
                    set.insert(try ChannelPathID(parsing: String(text), argument: "--notify-chpids"))
                } catch {
                    throw NotifyConfigurationError("\(error)")
                }
            }
            guard !set.isEmpty else {
                throw NotifyConfigurationError("--notify-chpids: empty; omit it to notify every chpid")
            }
            self.chpids = set
        }
        if let changes {
            var set = Set<PathEventChange>()
            for text in changes.split(separator: ",") {
                guard let change = PathEventChange(rawValue: String(text)) else {
                    throw NotifyConfigurationError(
                        "--notify-changes '\(text)': expected one of "
                            + PathEventChange.allCases.map(\.rawValue).joined(separator: ", "))
                }
                set.insert(change)
            }
            guard !set.isEmpty else {
                throw NotifyConfigurationError("--notify-changes: empty; omit it to notify every change")
            }
            self.changes = set
        }
    }

    func admits(_ chpid: ChannelPathID, _ change: PathEventChange) -> Bool {
        (chpids?.contains(chpid) ?? true) && (changes?.contains(change) ?? true)
    }
}

/// Everything `--notify` configures. Every parameter but the broker is defaulted.
package struct NotifyConfiguration: Sendable {
    package var broker: BrokerAddress
    package var credentials: BrokerCredentials
    /// amqps: the CA certificates (PEM) the broker's certificate must chain to.
    package var caFile: String?
    package var filter: NotifyFilter
    /// oslo.messaging's `control_exchange` (default `openstack`).
    package var exchange: String
    /// oslo.messaging's notification topic (default `notifications`): routing key
    /// `<topic>.<priority>`.
    package var topic: String
    /// oslo.messaging's `amqp_durable_queues` (default false): the exchange and the default
    /// queues are declared durable. Must match the listeners' setting, or the broker refuses
    /// the declaration (406 PRECONDITION_FAILED).
    package var durable: Bool
    /// `cssd.<host>`: the notifications' publisher_id.
    package var publisherID: String
    /// Bounds of the outbox (notifications not yet confirmed by the broker).
    package var maxEvents: Int
    package var maxBytes: Int
    /// Notifications published before the publisher waits for the broker's confirms.
    package var window: Int
    /// Reconnection backoff: first and longest wait, seconds.
    package var backoff: (first: Double, most: Double)
    /// The deadline of every broker operation, seconds (`--notify-timeout`, default 10): the TCP
    /// connect (and TLS handshake), the login, each RPC (channel.open, confirm.select, the
    /// declarations, the close), each publish's write and each wait for its confirm. One that
    /// overruns fails naming its step, is shown in `query-notify`, and the publisher reconnects.
    package var timeout: Double
    /// The AMQP heartbeat proposed to the broker, seconds (`--notify-heartbeat`, default 60 as
    /// oslo.messaging's `heartbeat_timeout_threshold`; 0: none); the broker may lower it. A
    /// broker silent for twice the negotiated value is taken as gone, idle or not.
    package var heartbeat: Int

    package init(
        broker: BrokerAddress, credentials: BrokerCredentials, caFile: String? = nil,
        filter: NotifyFilter = NotifyFilter(),
        exchange: String = "openstack", topic: String = "notifications", durable: Bool = false,
        publisherID: String = "cssd.\(hostName())", maxEvents: Int = 100_000, maxBytes: Int = 64 << 20,
        window: Int = 256,
        backoff: (first: Double, most: Double) = (0.1, 5), timeout: Double = 10, heartbeat: Int = 60
    ) {
        self.broker = broker
        self.credentials = credentials
        self.caFile = caFile
        self.filter = filter
        self.exchange = exchange
        self.topic = topic
        self.durable = durable
        self.publisherID = publisherID
        self.maxEvents = maxEvents
        self.maxBytes = maxBytes
        self.window = window
        self.backoff = backoff
        self.timeout = timeout
        self.heartbeat = heartbeat
    }
}

/// This machine's host name (gethostname), as `cssd.<host>` names the publisher.
package func hostName() -> String {
    var buffer = [UInt8](repeating: 0, count: 256)
    guard buffer.withUnsafeMutableBufferPointer({ gethostname($0.baseAddress!, 255) }) == 0 else { return "localhost" }
    return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
}
