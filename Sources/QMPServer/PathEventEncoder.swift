// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import NIOCore
import PathEvents
import QMPWire

/// Writes path events as QMP event lines, byte for byte what `ReplyEncoder.writeEvent` makes
/// of `PathEventEncoder.data` (a test compares the two). One vary can make 65,536 events;
/// writing them directly avoids building and freeing a jansson tree for each.
enum PathEventEncoder {
    /// - Parameter clock: the time of a drop report (it is told when written).
    static func write(
        _ delivery: PathEventDelivery, subscription: Int, clock: () -> EventTime, to out: inout ByteBuffer
    ) {
        switch delivery {
        case .dropped:
            // Rare: the generic route is fine, and its timestamp is now, when the loss is told.
            let time = clock()
            ReplyEncoder.writeEvent(
                "PATH_EVENTS_DROPPED", data: data(delivery, subscription: subscription),
                seconds: time.seconds, microseconds: time.microseconds, to: &out)
        case .event(let queued):
            out.writeStaticString("{\"timestamp\": {\"seconds\": ")
            out.writeString(String(queued.time.seconds))
            out.writeStaticString(", \"microseconds\": ")
            out.writeString(String(queued.time.microseconds))
            switch queued.event {
            case .channelPath(let event):
                out.writeStaticString("}, \"event\": \"CHANNEL_PATH_CHANGED\", \"data\": {\"subscription\": ")
                out.writeString(String(subscription))
                out.writeStaticString(", \"chpid\": \"")
                out.writeString(event.chpid.description)
                out.writeStaticString("\", \"change\": \"")
                out.writeString(event.change.rawValue)
                out.writeStaticString("\", \"vary\": \"")
                out.writeString(event.vary.description)
                out.writeStaticString("\", \"configure\": \"")
                out.writeString(event.configure.description)
                out.writeStaticString("\", \"subchannels\": ")
                out.writeString(String(event.subchannels))
                if let crw = event.crw {
                    out.writeStaticString(", \"crw\": ")
                    out.writeString(String(crw))
                }
            case .subchannel(let event):
                out.writeStaticString("}, \"event\": \"SUBCHANNEL_PATHS_CHANGED\", \"data\": {\"subscription\": ")
                out.writeString(String(subscription))
                out.writeStaticString(", \"subchannel\": \"")
                out.writeString(event.subchannel.description)
                out.writeStaticString("\", \"devno\": \"")
                if let device = event.device { out.writeString(device.description) }
                out.writeStaticString("\", \"chpid\": \"")
                out.writeString(event.chpid.description)
                out.writeStaticString("\", \"change\": \"")
                out.writeString(event.change.rawValue)
                out.writeStaticString("\", \"pim\": ")
                out.writeString(String(event.pim))
                out.writeStaticString(", \"pam\": ")
                out.writeString(String(event.pam))
                out.writeStaticString(", \"pom\": ")
                out.writeString(String(event.pom))
                out.writeStaticString(", \"lpm\": ")
                out.writeString(String(event.lpm))
                out.writeStaticString(", \"pnom\": ")
                out.writeString(String(event.pnom))
            }
            out.writeStaticString("}}\r\n")
        }
    }

    /// The event's name.
    static func name(_ delivery: PathEventDelivery) -> String {
        switch delivery {
        case .dropped: return "PATH_EVENTS_DROPPED"
        case .event(let queued):
            switch queued.event {
            case .channelPath: return "CHANNEL_PATH_CHANGED"
            case .subchannel: return "SUBCHANNEL_PATHS_CHANGED"
            }
        }
    }

    /// The event's data as a jansson tree: the definition `write` must match.
    static func data(_ delivery: PathEventDelivery, subscription: Int) -> JSON {
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
                return .object(members)
            case .subchannel(let event):
                return .object([
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
                ])
            }
        }
    }
}
