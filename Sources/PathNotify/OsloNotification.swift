// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import JSONValues
import PathChangePipeline
import PathEvents
import VFIOCCW

#if canImport(Glibc)
import Glibc
#endif

/// One notification ready for the broker: its routing key and the exact body, made once on
/// the event loop so that a redelivery after a reconnect is byte for byte the same (same
/// `message_id`, same `sequence`), and a consumer can drop it.
package struct OsloNotification: Sendable, Hashable {
    /// The change it tells of (0 for a gap report, which names its own numbers).
    package let sequence: UInt64
    /// `notifications.info` or `notifications.warn` (`<topic>.<priority>`).
    package let routingKey: String
    package let messageID: String
    /// The messaging envelope 2.0, UTF-8 JSON.
    package let body: [UInt8]
}

/// Turns published path changes into oslo.messaging notifications, in the shape oslo's
/// Notifier sends (oslo_messaging/notify/notifier.py `_notify`; amqpdriver `_send` adds
/// `_unique_id`; common.py `serialize_msg` wraps it in the envelope):
///
///     {"oslo.version": "2.0", "oslo.message": "<JSON of the message>"}
///     message: {"message_id": UUID, "publisher_id": "cssd.<host>", "event_type": "cssd.path.offline",
///               "priority": "WARN", "payload": {...}, "timestamp": "YYYY-MM-DD HH:MM:SS.ffffff",
///               "_unique_id": 32 hex digits}
///
/// Event types: `cssd.path.<change>` per chpid change, `cssd.subchannel.<change>` per affected
/// subchannel, `cssd.guest.<change>` per guest reached, `cssd.notify.gap` for a gap report.
/// Priority `WARN` for a path lost (offline, standby, permanent-error, temporary-error),
/// `INFO` otherwise. Every payload carries `epoch` and `sequence`.
package struct OsloNotificationEncoder: Sendable {
    package let publisherID: String
    package let topic: String
    package let filter: NotifyFilter

    package init(publisherID: String, topic: String, filter: NotifyFilter) {
        self.publisherID = publisherID
        self.topic = topic
        self.filter = filter
    }

    /// Whether a change loses a path (priority WARN).
    package static func losesPath(_ change: PathEventChange) -> Bool {
        switch change {
        case .offline, .standby, .permanentError, .temporaryError, .redundancyLost, .lastPathLost: return true
        // The DASD driver no longer uses the path for a device.
        case .driverDisabledIfcc, .driverDisabledMiscabled, .driverDisabledCuir: return true
        // An operator's removal of ignored devices: news, not a loss.
        case .online, .configured, .recovered, .reset, .drift, .subchannelsPurged, .driverEnabled: return false
        // A device that came or went (dynamic I/O reconfiguration): news, not a path lost.
        case .subchannelAdded, .subchannelRemoved: return false
        }
    }

    /// The notifications the filter wants for one change, in the order of path events:
    /// the chpid's, then the subchannels' in id order, or the guests' in name order.
    package func notifications(for published: PublishedPathChange, epoch: String) -> [OsloNotification] {
        notifications(
            for: JournaledPathChange(
                sequence: published.sequence, change: published.change, kind: published.kind, time: published.time,
                guests: published.guests, hostGuests: published.hostGuests), cause: published.cause, epoch: epoch)
    }

    /// The same for a journaled change (rebuilt at start, see `PathNotifier`): the journal does
    /// not keep the cause, the caller names it.
    package func notifications(for published: JournaledPathChange, cause: PathChangeCause, epoch: String)
        -> [OsloNotification]
    {
        let change = published.change
        let kind = published.kind
        var out: [OsloNotification] = []
        let common: [(String, JSON)] = [
            ("epoch", .string(epoch)), ("sequence", .integer(Int(published.sequence))),
        ]
        let priority = Self.losesPath(kind) ? "WARN" : "INFO"
        switch filter.granularity {
        case .chpid, .subchannel, .both:
            guard filter.admits(change.chpid, kind) else { return [] }
            // The chpid's notification as its CHANNEL_PATH_CHANGED: not for a change of only
            // some devices' bits that left the path as it was.
            if filter.granularity != .subchannel && PathEventHub.announcesPath(change, as: kind) {
                var payload: [(String, JSON)] = [
                    ("chpid", .string(change.chpid.description)), ("change", .string(kind.rawValue)),
                    ("vary", .string(change.after.vary.description)),
                    ("configure", .string(change.after.configure.description)),
                    ("subchannels", .integer(change.affected.count)),
                ]
                if let crw = change.crws.first { payload.append(("crw", .integer(Int(crw.rawValue)))) }
                payload.append(("cause", .string(Self.cause(cause))))
                if case .command(by: .scenario(let scenario, let step)) = cause {
                    payload.append(("scenario", .string(scenario)))
                    payload.append(("step", .string(step)))
                }
                out.append(
                    make(published.sequence, "cssd.path.\(kind.rawValue)", priority, payload + common, published.time))
            }
            if filter.granularity != .chpid {
                for subchannel in change.affected {
                    let payload: [(String, JSON)] = [
                        ("subchannel", .string(subchannel.id.description)),
                        ("devno", .string(subchannel.device?.description ?? "")),
                        ("chpid", .string(change.chpid.description)), ("change", .string(kind.rawValue)),
                        ("pim", .integer(Int(subchannel.pim))), ("pam", .integer(Int(subchannel.pam))),
                        ("pom", .integer(Int(subchannel.pom))), ("lpm", .integer(Int(subchannel.lpm))),
                        ("pnom", .integer(Int(subchannel.pnom))),
                    ]
                    out.append(
                        make(
                            published.sequence, "cssd.subchannel.\(kind.rawValue)", priority, payload + common,
                            published.time))
                }
            }
        case .guest:
            for guest in published.guests where filter.admits(guest.hostChpid, guest.change) {
                var payload: [(String, JSON)] = [
                    ("guest", .string(guest.guest)), ("guest-chpid", .string(guest.guestChpid.description)),
                    ("host-chpid", .string(guest.hostChpid.description)), ("change", .string(guest.change.rawValue)),
                    ("strategy", .string(guest.strategy.rawValue)), ("devices", .integer(guest.devices)),
                    ("visible", .integer(guest.visible)), ("notifications", .integer(guest.notifications)),
                ]
                if let crw = guest.crw { payload.append(("crw", .integer(Int(crw.rawValue)))) }
                let guestPriority = Self.losesPath(guest.change) ? "WARN" : "INFO"
                out.append(
                    make(
                        published.sequence, "cssd.guest.\(guest.change.rawValue)", guestPriority, payload + common,
                        published.time))
            }
            // linux-sysfs: one per guest holding mdevs, as HOST_GUEST_PATH_CHANGED.
            for guest in published.hostGuests where filter.admits(guest.hostChpid, guest.change) {
                var payload: [(String, JSON)] = [("guest", .string(guest.guest))]
                if let pid = guest.pid { payload.append(("pid", .integer(pid))) }
                payload += [
                    ("host-chpid", .string(guest.hostChpid.description)), ("change", .string(guest.change.rawValue)),
                    ("devices", .integer(guest.devices.count)), ("without-path", .integer(guest.withoutPath)),
                    ("mdevs", .array(guest.devices.map { .string($0.mdev) })),
                    ("subchannels", .array(guest.devices.map { .string($0.subchannel.description) })),
                ]
                let guestPriority = Self.losesPath(guest.change) || guest.withoutPath > 0 ? "WARN" : "INFO"
                out.append(
                    make(
                        published.sequence, "cssd.host_guest.\(guest.change.rawValue)", guestPriority,
                        payload + common, published.time))
            }
        }
        return out
    }

    /// The gap report: which sequence numbers (inclusive ranges) had notifications that will
    /// not come, how many notifications that was, and why (`outbox-overflow`: the outbox could
    /// not hold them; `restart`: lost in a crash, see API/notify.md).
    package func gap(
        _ ranges: [ClosedRange<UInt64>], dropped: Int, reason: String = "outbox-overflow", epoch: String,
        at time: EventTime
    )
        -> OsloNotification
    {
        let payload: [(String, JSON)] = [
            ("epoch", .string(epoch)),
            (
                "missed",
                .array(
                    ranges.map {
                        .object([("first", .integer(Int($0.lowerBound))), ("last", .integer(Int($0.upperBound)))])
                    })
            ),
            ("dropped", .integer(dropped)),
            ("reason", .string(reason)),
        ]
        return make(0, "cssd.notify.gap", "WARN", payload, time)
    }

    static func cause(_ cause: PathChangeCause) -> String {
        switch cause {
        case .command(by: .scenario): return "scenario"
        case .command: return "command"
        case .observed: return "observed"
        }
    }

    private func make(
        _ sequence: UInt64, _ eventType: String, _ priority: String, _ payload: [(String, JSON)], _ time: EventTime
    )
        -> OsloNotification
    {
        let messageID = randomUUID()
        let message = JSON.object([
            ("message_id", .string(messageID)), ("publisher_id", .string(publisherID)),
            ("event_type", .string(eventType)), ("priority", .string(priority)), ("payload", .object(payload)),
            ("timestamp", .string(Self.timestamp(time))), ("_unique_id", .string(randomHex(16))),
        ])
        let envelope = JSON.object([("oslo.version", .string("2.0")), ("oslo.message", .string(message.serialized()))])
        return OsloNotification(
            sequence: sequence, routingKey: "\(topic).\(priority.lowercased())", messageID: messageID,
            body: Array(envelope.serialized().utf8))
    }

    /// oslo's `str(timeutils.utcnow())`: `YYYY-MM-DD HH:MM:SS.ffffff`, UTC.
    package static func timestamp(_ time: EventTime) -> String {
        var seconds = time_t(time.seconds)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2)) "
            + "\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2)).\(pad(time.microseconds, 6))"
    }
}

/// A random (version 4) UUID in its usual text form, as Python's `str(uuid.uuid4())`.
func randomUUID() -> String {
    var bytes = randomBytes(16)
    bytes[6] = (bytes[6] & 0x0f) | 0x40
    bytes[8] = (bytes[8] & 0x3f) | 0x80
    return hex(bytes, dashesAfter: [4, 6, 8, 10])
}

/// `count` random bytes as `2 * count` lower-case hex digits.
package func randomHex(_ count: Int) -> String { hex(randomBytes(count)) }

/// `count` random bytes, eight per draw of the system generator (one getrandom(2) each: a
/// notification's message id and unique id took 32 system calls drawn a byte at a time).
private func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    var bytes = [UInt8]()
    bytes.reserveCapacity(count + 7)
    while bytes.count < count {
        withUnsafeBytes(of: generator.next() as UInt64) { bytes.append(contentsOf: $0) }
    }
    bytes.removeLast(bytes.count - count)
    return bytes
}

private func hex(_ bytes: [UInt8], dashesAfter dashes: Set<Int> = []) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2 + dashes.count)
    for (index, byte) in bytes.enumerated() {
        if dashes.contains(index) { out.append(UInt8(ascii: "-")) }
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}
