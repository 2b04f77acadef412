// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import JSONValues
import NIOCore
import PathEvents
import QMPWire

/// Writes path events as QMP event lines, byte for byte what `ReplyEncoder.writeEvent` makes
/// of `PathEventEncoder.data` (a test compares the two). One vary can make 65,536 events;
/// writing them directly, digits by hand, avoids a jansson tree and a few strings per event.
/// A burst shares its timestamp, so the line's opening is kept from one event to the next.
struct PathEventEncoder {
    private var line: [UInt8] = []
    private var stampTime: EventTime?
    private var stamp: [UInt8] = []
    /// The server's epoch, the `epoch` member of every path event.
    let epoch: String
    /// `, "epoch": "<epoch>", "sequence": `: the last members of every event's data.
    private let tail: [UInt8]

    init(epoch: String) {
        self.epoch = epoch
        self.tail = Array(", \"epoch\": \"\(epoch)\", \"sequence\": ".utf8)
        line.reserveCapacity(512)
    }

    /// - Parameter clock: the time of a drop report (it is told when written).
    mutating func write(
        _ delivery: PathEventDelivery, subscription: Int, clock: () -> EventTime, to out: inout ByteBuffer
    ) {
        guard case .event(let queued) = delivery else {
            // Rare: the generic route is fine, and its timestamp is now, when the loss is told.
            let time = clock()
            ReplyEncoder.writeEvent(
                "PATH_EVENTS_DROPPED", data: Self.data(delivery, subscription: subscription, epoch: epoch),
                seconds: time.seconds, microseconds: time.microseconds, to: &out)
            return
        }
        switch queued.event {
        case .guest, .hostGuest, .gap, .utilization:
            // One per guest reached, not per device, one per resume, or one per threshold
            // crossing: the generic route is fine.
            ReplyEncoder.writeEvent(
                Self.name(delivery), data: Self.data(delivery, subscription: subscription, epoch: epoch),
                seconds: queued.time.seconds, microseconds: queued.time.microseconds, to: &out)
            return
        case .channelPath(let event) where event.cause != nil:
            // A scenario step's (its members follow): the generic route.
            ReplyEncoder.writeEvent(
                Self.name(delivery), data: Self.data(delivery, subscription: subscription, epoch: epoch),
                seconds: queued.time.seconds, microseconds: queued.time.microseconds, to: &out)
            return
        case .scenarioSubchannel:
            ReplyEncoder.writeEvent(
                Self.name(delivery), data: Self.data(delivery, subscription: subscription, epoch: epoch),
                seconds: queued.time.seconds, microseconds: queued.time.microseconds, to: &out)
            return
        case .channelPath, .subchannel:
            break
        }
        if stampTime != queued.time {
            stampTime = queued.time
            stamp.removeAll(keepingCapacity: true)
            append(&stamp, "{\"timestamp\": {\"seconds\": ")
            decimal(&stamp, queued.time.seconds)
            append(&stamp, ", \"microseconds\": ")
            decimal(&stamp, queued.time.microseconds)
            append(&stamp, "}, \"event\": \"")
        }
        line.removeAll(keepingCapacity: true)
        line.append(contentsOf: stamp)
        switch queued.event {
        case .channelPath(let event):
            append(&line, "CHANNEL_PATH_CHANGED\", \"data\": {\"subscription\": ")
            decimal(&line, subscription)
            append(&line, ", \"chpid\": \"")
            chpid(event.chpid)
            append(&line, "\", \"change\": \"")
            line.append(contentsOf: event.change.rawValue.utf8)
            append(&line, "\", \"vary\": \"")
            line.append(contentsOf: event.vary.description.utf8)
            append(&line, "\", \"configure\": \"")
            line.append(contentsOf: event.configure.description.utf8)
            append(&line, "\", \"subchannels\": ")
            decimal(&line, event.subchannels)
            if let crw = event.crw {
                append(&line, ", \"crw\": ")
                decimal(&line, Int(crw))
            }
        case .subchannel(let event):
            append(&line, "SUBCHANNEL_PATHS_CHANGED\", \"data\": {\"subscription\": ")
            decimal(&line, subscription)
            append(&line, ", \"subchannel\": \"")
            threePart(event.subchannel.cssid, event.subchannel.ssid, event.subchannel.schno)
            append(&line, "\", \"devno\": \"")
            if let device = event.device { threePart(device.cssid, device.ssid, device.devno) }
            append(&line, "\", \"chpid\": \"")
            chpid(event.chpid)
            append(&line, "\", \"change\": \"")
            line.append(contentsOf: event.change.rawValue.utf8)
            append(&line, "\", \"pim\": ")
            decimal(&line, Int(event.pim))
            append(&line, ", \"pam\": ")
            decimal(&line, Int(event.pam))
            append(&line, ", \"pom\": ")
            decimal(&line, Int(event.pom))
            append(&line, ", \"lpm\": ")
            decimal(&line, Int(event.lpm))
            append(&line, ", \"pnom\": ")
            decimal(&line, Int(event.pnom))
        case .guest, .hostGuest, .gap, .utilization, .scenarioSubchannel:
            preconditionFailure("written above")
        }
        line.append(contentsOf: tail)
        line.append(decimal: Int(queued.change))
        append(&line, "}}\r\n")
        out.writeBytes(line)
    }

    // MARK: Digits

    private func append(_ bytes: inout [UInt8], _ text: StaticString) { bytes.append(text: text) }
    private func decimal(_ bytes: inout [UInt8], _ value: Int) { bytes.append(decimal: value) }
    private mutating func chpid(_ id: ChannelPathID) { line.append(chpid: id.cssid, id.chpid) }
    private mutating func threePart(_ cssid: UInt8, _ ssid: UInt8, _ number: UInt16) {
        line.append(busID: cssid, ssid, number)
    }

    /// The event's name.
    static func name(_ delivery: PathEventDelivery) -> String {
        switch delivery {
        case .dropped: return "PATH_EVENTS_DROPPED"
        case .event(let queued):
            switch queued.event {
            case .channelPath: return "CHANNEL_PATH_CHANGED"
            case .subchannel, .scenarioSubchannel: return "SUBCHANNEL_PATHS_CHANGED"
            case .guest: return "GUEST_PATH_CHANGED"
            case .hostGuest: return "HOST_GUEST_PATH_CHANGED"
            case .gap: return "PATH_EVENTS_GAP"
            case .utilization: return "CHANNEL_PATH_UTILIZATION"
            }
        }
    }

    /// `scenario` and `step` of a change a scenario's step made (API/path-events.json); none
    /// for any other cause.
    static func causeMembers(_ cause: ScenarioCause?) -> [(String, JSON)] {
        guard let cause else { return [] }
        return [("scenario", .string(cause.scenario)), ("step", .string(cause.step))]
    }

    /// The event's data as a jansson tree: the definition `write` must match.
    static func data(_ delivery: PathEventDelivery, subscription: Int, epoch: String) -> JSON {
        switch delivery {
        case .dropped(let count):
            return .object([("subscription", .integer(subscription)), ("dropped", .integer(count))])
        case .event(let queued):
            switch queued.event {
            case .channelPath(let event):
                var members: [(String, JSON)] = [
                    ("subscription", .integer(subscription)),
                    ("chpid", .string(event.chpid.description)),
                    ("change", .string(event.change.rawValue)),
                    ("vary", .string(event.vary.description)),
                    ("configure", .string(event.configure.description)),
                    ("subchannels", .integer(event.subchannels)),
                ]
                if let crw = event.crw { members.append(("crw", .integer(Int(crw)))) }
                members += [("epoch", .string(epoch)), ("sequence", .integer(Int(queued.change)))]
                members += Self.causeMembers(event.cause)
                return .object(members)
            case .subchannel(let event), .scenarioSubchannel(let event, _):
                var cause: ScenarioCause?
                if case .scenarioSubchannel(_, let step) = queued.event { cause = step }
                return .object(
                    [
                        ("subscription", .integer(subscription)),
                        ("subchannel", .string(event.subchannel.description)),
                        ("devno", .string(event.device?.description ?? "")),
                        ("chpid", .string(event.chpid.description)),
                        ("change", .string(event.change.rawValue)),
                        ("pim", .integer(Int(event.pim))),
                        ("pam", .integer(Int(event.pam))),
                        ("pom", .integer(Int(event.pom))),
                        ("lpm", .integer(Int(event.lpm))),
                        ("pnom", .integer(Int(event.pnom))),
                        ("epoch", .string(epoch)),
                        ("sequence", .integer(Int(queued.change))),
                    ] + Self.causeMembers(cause))
            case .guest(let event, _):
                var members: [(String, JSON)] = [
                    ("subscription", .integer(subscription)),
                    ("guest", .string(event.guest)),
                    ("guest-chpid", .string(event.guestChpid.description)),
                    ("host-chpid", .string(event.hostChpid.description)),
                    ("change", .string(event.change.rawValue)),
                    ("strategy", .string(event.strategy.rawValue)),
                    ("devices", .integer(event.devices)),
                    ("visible", .integer(event.visible)),
                    ("notifications", .integer(event.notifications)),
                ]
                if let crw = event.crw { members.append(("crw", .integer(Int(crw.rawValue)))) }
                members.append(("crw-lost", .bool(event.crwLost)))
                members += [("epoch", .string(epoch)), ("sequence", .integer(Int(queued.change)))]
                return .object(members)
            case .hostGuest(let event, _):
                var members: [(String, JSON)] = [
                    ("subscription", .integer(subscription)),
                    ("guest", .string(event.guest)),
                ]
                if let pid = event.pid { members.append(("pid", .integer(pid))) }
                members += [
                    ("host-chpid", .string(event.hostChpid.description)),
                    ("change", .string(event.change.rawValue)),
                    ("devices", .integer(event.devices.count)),
                    ("without-path", .integer(event.withoutPath)),
                    ("mdevs", .array(event.devices.map { .string($0.mdev) })),
                    ("subchannels", .array(event.devices.map { .string($0.subchannel.description) })),
                    ("epoch", .string(epoch)), ("sequence", .integer(Int(queued.change))),
                ]
                return .object(members)
            case .gap(let gap):
                return .object([
                    ("subscription", .integer(subscription)),
                    ("reason", .string(gap.reason.rawValue)),
                    ("first", .integer(Int(gap.first))),
                    ("last", .integer(Int(gap.last))),
                    ("epoch", .string(epoch)),
                    ("sequence", .integer(Int(queued.change))),
                ])
            case .utilization(let event):
                // Not a change: no epoch or sequence (API/path-events.json).
                return .object([
                    ("subscription", .integer(subscription)),
                    ("chpid", .string(event.chpid.description)),
                    ("metric", .string(event.metric.rawValue)),
                    ("level", .string(event.level.rawValue)),
                    ("utilization", .real(event.utilization)),
                    ("threshold", .real(event.threshold)),
                ])
            }
        }
    }
}
