// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// A host's kernel log turned into a scenario (`cssctl scenario from-kmsg FILE`): the lines
/// cssd already follows (Sources/LinuxSysfs/KernelLog.swift names their sources in
/// drivers/s390/cio and drivers/s390/block), each the step the model makes of it, at the
/// offset the log's timestamps give. Pure: text in, text out.
///
/// | Kernel line | Step |
/// |---|---|
/// | `crw_info : CRW reports … rsc=4, … erc=6` or `erc=7` (path has gone, chp.c) | `inject-path-fault` permanent-error |
/// | `… rsc=4, … erc=3` (temporary error) | `inject-path-fault` temporary-error |
/// | `… rsc=4, … erc=2` or `erc=4` (path has come, chp.c) | `inject-path-fault` recovered |
/// | `cio: Processing deconfigure for channel path C.PP` | `configure-chpid` standby, `force` (the host did it) |
/// | `cio: Processing configure …` / `cancel deconfigure …` | `configure-chpid` configured |
/// | `cio: Link stopped: RS=04 RSID=00PP …` | `inject-path-fault` temporary-error (Linux takes the path offline) |
/// | `dasd-eckd D: Path C.PP (pathmask MM) is disabled - IFCC threshold exceeded` | `inject-device-path-fault` permanent-error |
///
/// A chained channel-path CRW (`chn=1`) takes its cssid from the next CRW's rsid (cssid << 8,
/// as QEMU queues it). Lines that name no path the model can change (subchannel CRWs, which
/// carry no device number; overflow; link degraded; DASD notices) are skipped and listed.
package enum KernelLogConversion {
    /// The conversion of a log.
    package struct Result: Sendable {
        /// The scenario file's text (API/scenarios.md), model clock.
        package var text: String
        /// How many steps it has.
        package var steps: Int
        /// Kernel-log lines that made no step, with the reason: (1-based line number, reason).
        package var skipped: [(line: Int, reason: String)]
    }

    /// Converts `log` (`/dev/kmsg` records `PRI,SEQ,TIME_US,FLAGS;MESSAGE`, dmesg lines
    /// `[SECONDS] MESSAGE`, or bare messages, which take the previous line's time) into a
    /// scenario named `name`. Offsets are milliseconds from the first timestamped line; a time
    /// that goes backwards is held at the previous one, so the steps stay in order.
    package static func convert(_ log: String, name: String) -> Result {
        var steps: [String] = []
        var skipped: [(Int, String)] = []
        var first: Int?
        var offset = 0
        var pendingChained: (line: Int, at: Int, chpid: UInt8, fault: PathFault)?

        func add(_ line: Int, at: Int, _ execute: String, _ arguments: String) {
            steps.append(
                "    {\"name\": \"kmsg-\(line)\", \"at\": \(at), \"execute\": \"\(execute)\", \"arguments\": {\(arguments)}}"
            )
        }
        func fault(_ line: Int, at: Int, _ chpid: ChannelPathID, _ fault: PathFault) {
            add(line, at: at, "inject-path-fault", "\"chpid\": \"\(chpid)\", \"fault\": \"\(fault)\"")
        }

        var number = 0
        for rawLine in log.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let (micros, message) = split(rawLine)
            if let micros {
                if first == nil { first = micros }
                // Both are 0...Int.max (split's contract): the difference cannot overflow.
                let at = (micros - first!) / 1000
                guard at <= Scenario.maximumOffset else {
                    if !message.isEmpty {
                        skipped.append(
                            (number, "its time is \(at) ms after the first line's, beyond a scenario's range"))
                    }
                    continue
                }
                offset = max(offset, at)
            }
            if message.isEmpty { continue }
            if message.hasPrefix("crw_info : CRW reports ") {
                let fields = keyValues(message.dropFirst("crw_info : CRW reports ".count), separator: ",")
                guard let rsc = fields["rsc"].flatMap({ Int($0, radix: 16) }),
                    let erc = fields["erc"].flatMap({ Int($0, radix: 16) }),
                    let rsid = fields["rsid"].flatMap({ Int($0, radix: 16) }), rsid <= 0xffff
                else {
                    skipped.append((number, "a channel report whose fields do not parse"))
                    continue
                }
                if let chained = pendingChained {
                    // The second word of a chained channel-path report: rsid = cssid << 8.
                    pendingChained = nil
                    fault(
                        chained.line, at: chained.at, ChannelPathID(cssid: UInt8(rsid >> 8), chpid: chained.chpid),
                        chained.fault)
                    continue
                }
                if fields["oflw"] == "1" {
                    skipped.append((number, "channel reports were lost (overflow): the log does not say which"))
                    continue
                }
                guard rsc == 4 else {
                    skipped.append(
                        (
                            number,
                            "a channel report with rsc \(rsc): it names no channel path (a subchannel report has no device number)"
                        ))
                    continue
                }
                guard rsid <= 0xff else {
                    skipped.append(
                        (number, "a channel-path report with rsid \(String(rsid, radix: 16)): a chpid is one byte"))
                    continue
                }
                guard let kind = pathFault(erc: erc) else {
                    skipped.append((number, "a channel-path report with erc \(erc): no model fault matches it"))
                    continue
                }
                if fields["chn"] == "1" {
                    pendingChained = (number, offset, UInt8(rsid), kind)
                } else {
                    fault(number, at: offset, ChannelPathID(cssid: 0, chpid: UInt8(rsid)), kind)
                }
            } else if message.hasPrefix("cio: Processing "), let range = message.firstRange(of: " for channel path ") {
                let what = message.dropFirst("cio: Processing ".count)[..<range.lowerBound]
                guard let chpid = channelPathID(message[range.upperBound...]) else {
                    skipped.append((number, "a chpid that does not parse"))
                    continue
                }
                switch what {
                case "deconfigure":
                    add(
                        number, at: offset, "configure-chpid",
                        "\"chpid\": \"\(chpid)\", \"state\": \"standby\", \"force\": true")
                case "configure", "cancel deconfigure":
                    add(number, at: offset, "configure-chpid", "\"chpid\": \"\(chpid)\", \"state\": \"configured\"")
                default: skipped.append((number, "an unknown channel-path configuration event"))
                }
            } else if message.hasPrefix("cio: Link stopped: ") {
                let fields = keyValues(message.dropFirst("cio: Link stopped: ".count), separator: " ")
                guard fields["RS"].flatMap({ Int($0, radix: 16) }) == 4,
                    let rsid = fields["RSID"].flatMap({ Int($0, radix: 16) }), rsid <= 0xff
                else {
                    skipped.append((number, "a link incident that names no channel path"))
                    continue
                }
                fault(number, at: offset, ChannelPathID(cssid: 0, chpid: UInt8(rsid)), .temporaryError)
            } else if message.hasPrefix("cio: Link degraded: ") {
                skipped.append((number, "a degraded link: the model has no degraded state"))
            } else if message.hasPrefix("dasd-eckd ") || message.hasPrefix("dasd-fba ") {
                guard message.contains("is disabled - IFCC threshold exceeded") else {
                    if message.contains("channel path") || message.contains("Path ") {
                        skipped.append((number, "a DASD path notice: it follows a change, it is not one"))
                    }
                    continue
                }
                let afterDriver = message.drop(while: { $0 != " " }).dropFirst()
                guard let colon = afterDriver.firstIndex(of: ":"),
                    let device = try? DeviceID(parsing: String(afterDriver[..<colon])),
                    let pathRange = message.firstRange(of: "Path "),
                    let chpid = channelPathID(message[pathRange.upperBound...].prefix(while: { $0 != " " }))
                else {
                    skipped.append((number, "a DASD path message whose device or path does not parse"))
                    continue
                }
                add(
                    number, at: offset, "inject-device-path-fault",
                    "\"device\": \"\(device)\", \"chpid\": \"\(chpid)\", \"fault\": \"permanent-error\"")
            }
        }
        if let chained = pendingChained {
            fault(chained.line, at: chained.at, ChannelPathID(cssid: 0, chpid: chained.chpid), chained.fault)
        }
        let text =
            "{\n  \"scenario\": \"\(name)\",\n  \"description\": \"converted from a kernel log by cssctl scenario from-kmsg\",\n  \"clock\": \"model\",\n  \"steps\": [\n"
            + steps.joined(separator: ",\n") + (steps.isEmpty ? "" : "\n") + "  ]\n}\n"
        return Result(text: text, steps: steps.count, skipped: skipped)
    }

    /// chp.c `chp_process_crw`: ERC 2 (initialized) and 4 (installed parameters initialized)
    /// are "path has come"; 6 and 7 (permanent error) "path has gone"; 3 is the temporary
    /// error the model injects as such.
    static func pathFault(erc: Int) -> PathFault? {
        switch erc {
        case 2, 4: .recovered
        case 3: .temporaryError
        case 6, 7: .permanentError
        default: nil
        }
    }

    /// A record's time in microseconds (kmsg's third field; dmesg's seconds) and its message.
    static func split(_ line: Substring) -> (Int?, Substring) {
        var message = line
        while let last = message.last, last == "\r" || last == " " { message = message.dropLast() }
        if let semicolon = message.firstIndex(of: ";"),
            message[..<semicolon].allSatisfy({ $0.isNumber || $0 == "," || $0 == "-" || $0.isLetter })
        {
            let fields = message[..<semicolon].split(separator: ",", omittingEmptySubsequences: false)
            // TIME_US is unsigned (printk's %llu): a negative or oversized one is no time.
            let micros = fields.count >= 3 ? Int(fields[2]).flatMap { $0 >= 0 ? $0 : nil } : nil
            return (micros, message[message.index(after: semicolon)...])
        }
        if message.first == "[", let close = message.firstIndex(of: "]") {
            let stamp = message[message.index(after: message.startIndex)..<close].drop(while: { $0 == " " })
            var micros: Int?
            let parts = stamp.split(separator: ".", omittingEmptySubsequences: false)
            if parts.count == 2, let seconds = Int(parts[0]), seconds >= 0, parts[1].count == 6,
                let fraction = Int(parts[1]), fraction >= 0
            {
                let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000)
                micros = overflow || scaled > Int.max - fraction ? nil : scaled + fraction
            }
            return (micros, message[message.index(after: close)...].drop(while: { $0 == " " }))
        }
        return (nil, message)
    }

    static func keyValues(_ text: Substring, separator: Character) -> [Substring: Substring] {
        var out: [Substring: Substring] = [:]
        for part in text.split(separator: separator) {
            let pair = part.drop(while: { $0 == " " }).split(separator: "=", maxSplits: 1)
            if pair.count == 2 { out[pair[0]] = pair[1].prefix(while: { $0 != " " }) }
        }
        return out
    }

    /// `0.4a` (chp.c's `%x.%02x`) -> chpid.
    static func channelPathID(_ text: Substring) -> ChannelPathID? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[1].count == 2, (1...2).contains(parts[0].count),
            let css = UInt8(parts[0], radix: 16), let chpid = UInt8(parts[1], radix: 16)
        else { return nil }
        return ChannelPathID(cssid: css, chpid: chpid)
    }
}
