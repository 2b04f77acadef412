// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What a kernel-log line asks cssd to read again.
enum KernelLogTrigger: Hashable, Sendable {
    /// A channel path and every subchannel using it.
    case channelPath(ChannelPathID)
    /// The subchannels with this number (a channel report names no subchannel set).
    case subchannelNumber(UInt16)
    /// Reports were lost (CRW overflow) or name no path: every path and the listing.
    case everything
    /// A DASD driver message about this device's paths: its DASD files and its subchannel.
    case device(DeviceID)
}

/// The cio messages that mean a channel path or subchannel changed, as Linux prints them
/// (`pr_fmt` of cio is `"cio: "`). Sources, torvalds/linux `drivers/s390/cio`:
/// - crw.c `crw_collect_info`: `printk(KERN_DEBUG "crw_info : CRW reports slct=%d, oflw=%d,
///   chn=%d, rsc=%X, anc=%d, erc=%X, rsid=%X\n")`: rsc 4 (channel path, rsid = chpid),
///   rsc 3 (subchannel, rsid = number); `oflw=1`: reports were lost.
/// - chsc.c `chsc_process_sei_chp_config`: `pr_notice("Processing %s for channel path
///   %x.%02x\n")`, %s `configure`, `deconfigure` or `cancel deconfigure`.
/// - chsc.c `chsc_process_sei_link_incident`: `pr_warn("Link degraded: RS=%02x RSID=%04x …")`
///   and `pr_err("Link stopped: RS=%02x RSID=%04x …")`; RS 4 means RSID is a chpid.
/// chp.c and css.c log channel-path processing only to the s390 debug feature, not printk.
///
/// And the DASD driver's path messages (host-paths.md §4), which `dev_err`/`dev_warn` print as
/// `dasd-eckd 0.0.1234: MESSAGE` (driver name, device bus id): drivers/s390/block
/// `dasd_3990_erp_disable_path` ("Path %x.%02x (pathmask %02x) is disabled - IFCC threshold
/// exceeded", "… is operational despite excessive IFCCs"), `dasd_generic_last_path_gone` ("No
/// operational channel path is left for the device"), "No verified channel paths remain for the
/// device", `dasd_eckd_read_conf` ("Not all channel paths lead to the same device, …") and "A
/// channel path to the device has become operational".
enum KernelLogLine {
    enum Parsed: Equatable {
        case trigger(KernelLogTrigger)
        /// Not a cio channel-path message (most of the log).
        case ignored
        /// A cio message of a known kind whose fields do not parse.
        case garbled
    }

    /// Parses one record: a `/dev/kmsg` record (`PRIORITY,SEQ,TIME,FLAGS;MESSAGE`), a dmesg
    /// line (`[  12.345678] MESSAGE`) or the bare message.
    static func parse(_ line: Substring) -> Parsed {
        var message = line
        if let semicolon = message.firstIndex(of: ";"),
            message[..<semicolon].allSatisfy({ $0.isNumber || $0 == "," || $0 == "-" || $0.isLetter })
        {
            message = message[message.index(after: semicolon)...]
        } else if message.first == "[", let close = message.firstIndex(of: "]") {
            message = message[message.index(after: close)...].drop(while: { $0 == " " })
        }
        if message.hasPrefix("dasd-eckd ") || message.hasPrefix("dasd-fba ") {
            return dasd(message)
        }
        if message.hasPrefix("crw_info : CRW reports ") {
            return crw(message.dropFirst("crw_info : CRW reports ".count))
        }
        if message.hasPrefix("cio: Processing ") {
            guard let range = message.firstRange(of: " for channel path ") else { return .garbled }
            let id = message[range.upperBound...].trimmingSuffix()
            guard let chpid = channelPathID(id) else { return .garbled }
            return .trigger(.channelPath(chpid))
        }
        if message.hasPrefix("cio: Link degraded: ") || message.hasPrefix("cio: Link stopped: ") {
            guard let start = message.firstRange(of: " RS=")?.lowerBound else { return .garbled }
            let fields = keyValues(message[start...], separator: " ")
            // Unsigned parses: the kernel prints `%02x`/`%04x`; a "-1" from a hostile writer is
            // garbled, never a trap converting it.
            guard let rs = fields["RS"].flatMap({ UInt($0, radix: 16) }),
                let rsid = fields["RSID"].flatMap({ UInt($0, radix: 16) })
            else { return .garbled }
            if rs == 4, let chpid = UInt8(exactly: rsid) {
                return .trigger(.channelPath(ChannelPathID(cssid: 0, chpid: chpid)))
            }
            return .trigger(.everything)
        }
        return .ignored
    }

    /// The DASD messages that mean the device's path masks may have changed.
    static let dasdMessages = [
        "is disabled - IFCC threshold exceeded", "is operational despite excessive IFCCs",
        "No operational channel path is left for the device", "No verified channel paths remain for the device",
        "Not all channel paths lead to the same device", "A channel path to the device has become operational",
    ]

    private static func dasd(_ message: Substring) -> Parsed {
        guard dasdMessages.contains(where: { message.contains($0) }) else { return .ignored }
        let afterDriver = message.drop(while: { $0 != " " }).dropFirst()
        guard let colon = afterDriver.firstIndex(of: ":"),
            let device = try? DeviceID(parsing: String(afterDriver[..<colon]))
        else { return .garbled }
        return .trigger(.device(device))
    }

    private static func crw(_ text: Substring) -> Parsed {
        let fields = keyValues(text, separator: ",")
        guard let overflow = fields["oflw"].flatMap({ Int($0) }),
            let rsc = fields["rsc"].flatMap({ UInt($0, radix: 16) }),
            let rsid = fields["rsid"].flatMap({ UInt($0, radix: 16) }).flatMap({ UInt16(exactly: $0) })
        else { return .garbled }
        if overflow != 0 { return .trigger(.everything) }
        switch rsc {
        case 4 where rsid <= 0xff: return .trigger(.channelPath(ChannelPathID(cssid: 0, chpid: UInt8(rsid))))
        case 3: return .trigger(.subchannelNumber(rsid))
        default: return .ignored  // css (0xb), monitoring, ... : nothing sysfs shows
        }
    }

    /// `a=1, b=2` or `A=1 B=2` -> [a: 1, b: 2].
    private static func keyValues(_ text: Substring, separator: Character) -> [Substring: Substring] {
        var out: [Substring: Substring] = [:]
        for part in text.split(separator: separator) {
            let pair = part.trimmingSuffix().drop(while: { $0 == " " }).split(separator: "=", maxSplits: 1)
            if pair.count == 2 { out[pair[0]] = pair[1] }
        }
        return out
    }

    /// `0.4a` (chp.c's `%x.%02x`) -> chpid.
    private static func channelPathID(_ text: Substring) -> ChannelPathID? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[1].count == 2, let css = parseHex(parts[0], maxDigits: 2),
            let chpid = parseHex(parts[1], maxDigits: 2)
        else { return nil }
        return ChannelPathID(cssid: UInt8(css), chpid: UInt8(chpid))
    }
}

extension Substring {
    fileprivate func trimmingSuffix() -> Substring {
        var text = self
        while let last = text.last, last == " " || last == "\n" || last == "\r" || last == "\t" {
            text = text.dropLast()
        }
        return text
    }
}

/// Follows a kernel log on a thread of its own and turns channel-path messages into re-reads.
/// `/dev/kmsg` gives one record per `read` (from the end: older records are not replayed); a
/// FIFO or file is read as lines (a FIFO is reopened when its writer closes; a file is
/// followed like `tail -f`). Lines longer than 8 KiB, garbled lines and other messages are
/// ignored and counted, never fatal.
final class KernelLogWatcher: Sendable {
    struct Counts: Hashable, Sendable {
        var acted = 0
        var ignored = 0
        var garbled = 0
        var tooLong = 0
        /// `/dev/kmsg` records overwritten before they were read (EPIPE).
        var lost = 0

        /// By the outcome names of `cssd_kernel_log_lines_total`.
        var byOutcome: [String: Int] {
            ["acted": acted, "ignored": ignored, "garbled": garbled, "too_long": tooLong, "lost": lost]
        }
    }

    static let maxLine = 8192
    let path: String
    private let log: @Sendable (Bool, String) -> Void
    private let onTrigger: @Sendable (KernelLogTrigger) -> Void
    /// `connected`: a log is open and read (a FIFO has a writer); false while `open` waits for
    /// a FIFO's writer, which may never come.
    private let state = Mutex<(counts: Counts, stopped: Bool, gaveUp: Bool, connected: Bool)>(
        (Counts(), false, false, false))
    /// `/dev/kmsg`'s clock (CLOCK_MONOTONIC, µs) when the first full reading began: at the first
    /// open, the records since then are acted on too (they were logged while the tree was read
    /// and the follower started, and the sweep no longer reads for what they report); nil: only
    /// what comes after the open.
    private let since: UInt64?

    init(
        path: String, since: UInt64? = nil, log: @escaping @Sendable (Bool, String) -> Void,
        onTrigger: @escaping @Sendable (KernelLogTrigger) -> Void
    ) {
        self.path = path
        self.since = since
        self.log = log
        self.onTrigger = onTrigger
    }

    /// CLOCK_MONOTONIC in µs: the clock of `/dev/kmsg`'s TIME_US (printk's local_clock, the
    /// same time base up to drift; `since` allows seconds of it).
    static func monotonicMicros() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }

    var counts: Counts { state.withLock { $0.counts } }
    private var stopped: Bool { state.withLock { $0.stopped } }
    /// Whether channel reports reach cssd through this log: false once it could not be opened
    /// for good (missing, refused) or a log file ended, and while a FIFO has no writer (its
    /// forwarder died or never came); the sweep then reads every subchannel whole again
    /// (`SysfsMirror.SweepReading`).
    var isFollowing: Bool { state.withLock { !$0.stopped && !$0.gaveUp && $0.connected } }

    func start() { startThread { [self] in run() } }

    func stop() { state.withLock { $0.stopped = true } }

    private func run() {
        var warned = false
        var opens = 0
        while !stopped {
            let fd = open(path, O_RDONLY | O_CLOEXEC)  // blocks for a FIFO until a writer comes
            guard fd >= 0 else {
                let error = errno
                if !warned { log(true, Self.openFailure(path, error)) }
                warned = true
                if error == ENOENT || error == EACCES || error == EPERM {
                    state.withLock { $0.gaveUp = true }
                    return
                }
                usleep(1_000_000)
                continue
            }
            var info = stat()
            fstat(fd, &info)
            let isCharacterDevice = info.st_mode & S_IFMT == S_IFCHR
            let isFIFO = info.st_mode & S_IFMT == S_IFIFO
            opens += 1
            // /dev/kmsg: what comes now, or at the first open, what came since the first reading.
            let from = opens == 1 ? since : nil
            if isCharacterDevice { lseek(fd, 0, from == nil ? SEEK_END : SEEK_SET) }
            log(false, "following the kernel log \(path)")
            state.withLock { $0.connected = true }
            if isFIFO && opens > 1 {
                // Reports written while nobody wrote to the FIFO were lost (the sweep read for
                // them meanwhile); one pass over everything closes the gap.
                onTrigger(.everything)
            }
            var rotated = false
            if isCharacterDevice {
                readRecords(fd, since: from.map { $0 > Self.clockDrift ? $0 - Self.clockDrift : 0 })
            } else {
                rotated = readLines(fd, follow: info.st_mode & S_IFMT == S_IFREG)
            }
            close(fd)
            state.withLock { $0.connected = false }
            if isFIFO && !stopped {
                log(
                    true,
                    "kernel log \(path): its writer closed the FIFO; until one opens it again, changes are found by the sweep (--sweep-interval)"
                )
            }
            if info.st_mode & S_IFMT == S_IFREG && !rotated {
                state.withLock { $0.gaveUp = true }
                return
            }
        }
    }

    /// The warning for a kernel log that cannot be opened. A refused `/dev/kmsg` is nearly
    /// always a missing `CAP_SYSLOG` (kernel.dmesg_restrict=1) or a private `/dev`: say so, and
    /// what cssd does without it, since nothing else would show that detection got slower.
    static func openFailure(_ path: String, _ error: Int32) -> String {
        var text = "kernel log \(path): \(SysfsFiles.describe(error))"
        if error == EPERM || error == EACCES {
            text += " (reading it needs CAP_SYSLOG where kernel.dmesg_restrict=1, and the device in the service's /dev)"
        }
        return text + "; not following it: changes are found by the sweep (--sweep-interval) instead"
    }

    /// How much older than `since` a record may be and still be acted on: printk's clock and
    /// CLOCK_MONOTONIC may drift apart by this much; acting on an old record only re-reads.
    static let clockDrift: UInt64 = 5_000_000

    /// `/dev/kmsg`: one record per read; records timed before `since` (µs) are skipped.
    private func readRecords(_ fd: Int32, since: UInt64? = nil) {
        var buffer = [UInt8](repeating: 0, count: Self.maxLine)
        while !stopped {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                switch errno {
                case EINTR, EAGAIN: continue
                case EPIPE:
                    // Records overwritten before they were read may have been channel reports,
                    // which the sweep no longer reads for (`SweepReading.vpm`): every chpid and
                    // its subchannels, as for a report overflow.
                    state.withLock { $0.counts.lost += 1 }
                    onTrigger(.everything)
                case EINVAL: state.withLock { $0.counts.tooLong += 1 }  // a record larger than the buffer
                default:
                    log(true, "kernel log \(path): \(SysfsFiles.describe(errno)); not following it")
                    return
                }
                continue
            }
            if n == 0 { return }
            // A record's first line is the message; continuation lines (" KEY=value") follow.
            let end = buffer[..<n].firstIndex(of: 0x0a) ?? n
            if let since, let time = Self.recordTime(buffer[..<end]), time < since { continue }
            handle(String(decoding: buffer[..<end], as: UTF8.self)[...])
        }
    }

    /// A FIFO or file: lines. At the end of a file, waits for more (`follow`), and notices a
    /// rotation: a file truncated in place (logrotate's copytruncate) is read again from its
    /// start; a file renamed away and created anew returns true, to be opened again by name.
    /// Either went unnoticed before, and the lines after it were never acted on.
    /// - Returns: whether the file at `path` is now another one (reopen it).
    @discardableResult
    private func readLines(_ fd: Int32, follow: Bool) -> Bool {
        var idle = 0
        var line: [UInt8] = []
        var discarding = false
        var chunk = [UInt8](repeating: 0, count: 65536)
        while !stopped {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                log(true, "kernel log \(path): \(SysfsFiles.describe(errno))")
                return false
            }
            if n == 0 {
                guard follow else { return false }
                usleep(20_000)  // a plain file has no way to wait for growth without inotify
                idle += 1
                // Every half second at the end of the file: two stats, no reads.
                if idle % 25 == 0 {
                    var open = stat()
                    var named = stat()
                    if fstat(fd, &open) == 0, open.st_size < lseek(fd, 0, SEEK_CUR) {
                        log(false, "kernel log \(path) was truncated: following it from its start")
                        lseek(fd, 0, SEEK_SET)
                        line.removeAll(keepingCapacity: true)
                        discarding = false
                    } else if stat(path, &named) == 0, named.st_ino != open.st_ino || named.st_dev != open.st_dev {
                        log(false, "kernel log \(path) was replaced (rotated): following the new file")
                        return true
                    }
                }
                continue
            }
            idle = 0
            for byte in chunk[..<n] {
                if byte == 0x0a {
                    if discarding {
                        discarding = false
                    } else {
                        handle(String(decoding: line, as: UTF8.self)[...])
                    }
                    line.removeAll(keepingCapacity: true)
                } else if !discarding {
                    line.append(byte)
                    if line.count > Self.maxLine {
                        state.withLock { $0.counts.tooLong += 1 }
                        discarding = true
                        line.removeAll(keepingCapacity: true)
                    }
                }
            }
        }
        return false
    }

    /// A `/dev/kmsg` record's TIME_US (`PRI,SEQ,TIME_US,FLAGS;...`), nil when it has none.
    static func recordTime(_ record: ArraySlice<UInt8>) -> UInt64? {
        guard let semicolon = record.firstIndex(of: UInt8(ascii: ";")) else { return nil }
        let fields = record[..<semicolon].split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
        guard fields.count >= 3 else { return nil }
        return UInt64(String(decoding: fields[2], as: UTF8.self))
    }

    private func handle(_ line: Substring) {
        if line.first == " " || line.isEmpty {  // a kmsg continuation line, or nothing
            state.withLock { $0.counts.ignored += 1 }
            return
        }
        switch KernelLogLine.parse(line) {
        case .trigger(let trigger):
            state.withLock { $0.counts.acted += 1 }
            log(false, "kernel log: \(line) -> re-read \(trigger)")
            onTrigger(trigger)
        case .ignored:
            state.withLock { $0.counts.ignored += 1 }
        case .garbled:
            let first = state.withLock { state -> Bool in
                state.counts.garbled += 1
                return state.counts.garbled == 1
            }
            if first {
                log(true, "kernel log: a cio message that does not parse, ignored (logged once): \(line.prefix(200))")
            }
        }
    }
}
