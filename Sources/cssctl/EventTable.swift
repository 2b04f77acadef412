// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import JSONValues
import QMPWire

#if canImport(Glibc)
import Glibc
#endif

/// The --format table rendering.
enum EventTable {
    private static let widths = [12, 24, 6, 15, 21]

    static let header = row(["TIME", "EVENT", "CHPID", "CHANGE", "SUBCHANNEL/DEVNO", "DETAIL"])

    static func row(for event: JSON) -> String {
        let name = event["event"]?.stringValue ?? "?"
        let data = event["data"] ?? .emptyObject()
        let text = { (key: String) in data[key]?.stringValue ?? "-" }
        let detail: String
        switch name {
        case "CHANNEL_PATH_CHANGED":
            detail = "vary=\(text("vary")) configure=\(text("configure")) subchannels=\(number(data["subchannels"]))"
        case "SUBCHANNEL_PATHS_CHANGED":
            detail = ["pam", "pom", "lpm", "pnom"].map { "\($0)=\(hexMask(data[$0]))" }.joined(separator: " ")
        case "PATH_EVENTS_DROPPED":
            detail = "dropped=\(number(data["dropped"]))"
        case "PATH_EVENTS_GAP":
            detail = "reason=\(text("reason")) missed=\(number(data["first"]))..\(number(data["last"]))"
        case "GUEST_PATH_CHANGED":
            // The guest's view: its chpid in the CHPID column, the host's in the detail.
            let crw = data["crw"] != nil ? " crw=queued" : (data["crw-lost"]?.boolValue == true ? " crw=lost" : "")
            detail =
                "guest=\(text("guest")) host-chpid=\(text("host-chpid")) strategy=\(text("strategy")) "
                + "devices=\(number(data["devices"])) visible=\(number(data["visible"])) "
                + "notifications=\(number(data["notifications"]))\(crw)"
            return row([time(event["timestamp"]), name, text("guest-chpid"), text("change"), "-", detail])
        case "HOST_GUEST_PATH_CHANGED":
            // linux-sysfs: the host's chpid; the guest's own is not known on the host.
            detail =
                "guest=\(text("guest")) devices=\(number(data["devices"])) "
                + "without-path=\(number(data["without-path"]))"
            return row([time(event["timestamp"]), name, text("host-chpid"), text("change"), "-", detail])
        case "SCENARIO_ENDED":
            let failure = data["failure"] != nil ? " failure=\(text("failure"))" : ""
            detail = "scenario=\(text("name")) played=\(number(data["played"]))/\(number(data["total"]))\(failure)"
            return row([time(event["timestamp"]), name, "-", text("state"), "-", detail])
        default:
            detail = data.count == 0 ? "-" : data.serialized()
        }
        return row([time(event["timestamp"]), name, text("chpid"), text("change"), device(data), detail])
    }

    /// Columns padded to their widths, at least one space apart; the last one is not padded.
    private static func row(_ columns: [String]) -> String {
        var line = ""
        for (index, column) in columns.enumerated() {
            line += column
            guard index < widths.count else { break }
            line += String(repeating: " ", count: max(1, widths[index] + 1 - column.count))
        }
        return line
    }

    private static func device(_ data: JSON) -> String {
        guard let subchannel = data["subchannel"]?.stringValue else { return "-" }
        guard let devno = data["devno"]?.stringValue, !devno.isEmpty else { return subchannel }
        return "\(subchannel)/\(devno)"
    }

    private static func number(_ value: JSON?) -> String { value?.intValue.map(String.init) ?? "-" }

    private static func hexMask(_ value: JSON?) -> String {
        guard let mask = value?.intValue else { return "--" }
        return Hex.string(mask, width: 2)
    }

    /// The event's timestamp as local HH:MM:SS.mmm (now, if it has none).
    private static func time(_ timestamp: JSON?) -> String {
        var seconds = time_t(timestamp?["seconds"]?.intValue ?? -1)
        var milliseconds = (timestamp?["microseconds"]?.intValue ?? 0) / 1000
        if seconds < 0 {
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            seconds = now.tv_sec
            milliseconds = now.tv_nsec / 1_000_000
        }
        var local = tm()
        localtime_r(&seconds, &local)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let millis = String(milliseconds)
        let fraction = String(repeating: "0", count: max(0, 3 - millis.count)) + millis
        return "\(two(local.tm_hour)):\(two(local.tm_min)):\(two(local.tm_sec)).\(fraction)"
    }
}
