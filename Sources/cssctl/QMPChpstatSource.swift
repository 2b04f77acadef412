// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import ChpstatView
import JSONValues
import QMPWire

#if canImport(Glibc)
import Glibc
#endif

/// chpstat's data from a cssd socket: `query-chpid-measurements` (the facility's state, and per
/// chpid its CMG, shared, speed and the last raw blocks as the server read them),
/// `query-chpids` (which chpids exist, their type), `set-channel-measurement` (--enable,
/// --disable). The view computes chpstat's metrics from successive raw blocks itself, as
/// chpstat does from successive reads of sysfs.
///
/// The server is asked once per read round: reads between two sleeps see the same answer, and a
/// sleep (chpstat's wait for the firmware's next update) makes the next read ask again. The
/// connection is opened at the first read, so that `--help` or a usage error needs no server.
/// A connection failure or an error reply is a run-time error (exit status 2), as a sysfs read
/// failure is for chpstat.
final class QMPChpstatSource: ChpstatSource {
    private let socket: String?
    private let timeoutSeconds: Int
    private let tlsCreds: String?
    private var session: ListingSession?
    private var stale = true
    private var state = ChpstatFacility.unsupported
    private var measurements: [Int: JSON] = [:]
    /// query-chpids' entries of css 0 (what Linux shows as chp0.XX), asked once.
    private var channelPaths: [Int: JSON]?

    init(socket: String?, timeoutSeconds: Int, tlsCreds: String?) {
        self.socket = socket
        self.timeoutSeconds = timeoutSeconds
        self.tlsCreds = tlsCreds
    }

    func close() { session = nil }

    private func execute(_ command: String, _ arguments: [(String, JSON)] = []) throws(ChpstatExit) -> JSON {
        do {
            if session == nil {
                session = try ListingSession(
                    socket: socket, timeoutSeconds: timeoutSeconds, tls: try loadClientCredentials(tlsCreds))
            }
            return try session!.execute(command, arguments)
        } catch let failure as ClientFailure {
            session = nil
            throw .runtime("\(failure)")
        } catch let reply as ListingSession.ErrorReply {
            throw .runtime("\(command): \(reply.text)")
        } catch {
            throw .runtime("\(command): \(error)")
        }
    }

    /// Asks the server again if a sleep has passed since the last answer.
    private func refresh() throws(ChpstatExit) {
        guard stale else { return }
        if channelPaths == nil {
            var paths: [Int: JSON] = [:]
            for path in try execute("query-chpids").elements {
                if let id = Self.chpid(path["chpid"]?.stringValue) { paths[id] = path }
            }
            channelPaths = paths
        }
        let reply = try execute("query-chpid-measurements")
        switch reply["state"]?.stringValue {
        case "enabled": state = .enabled
        case "disabled": state = .disabled
        default: state = .unsupported
        }
        measurements = [:]
        for path in reply["channel-paths"]?.elements ?? [] {
            if let id = Self.chpid(path["chpid"]?.stringValue) { measurements[id] = path }
        }
        stale = false
    }

    func facility() throws(ChpstatExit) -> ChpstatFacility {
        try refresh()
        return state
    }

    func setFacility(enabled: Bool) throws(ChpstatExit) {
        do {
            _ = try execute("set-channel-measurement", [("enabled", .bool(enabled))])
        } catch {
            // The server's error names what is missing (the authorization, and where an
            // administrator grants it) where chpstat points to its man page.
            throw .runtime("Unable to \(enabled ? "enable" : "disable") channel-path statistics\n\(error.message)")
        }
        stale = true
    }

    func channelPath(_ chpid: Int) throws(ChpstatExit) -> ChpstatChannelPath? {
        try refresh()
        guard let path = channelPaths?[chpid] else { return nil }
        let measurement = measurements[chpid]
        let shared = measurement?["shared"]?.boolValue ?? path["shared"]?.boolValue ?? false
        return ChpstatChannelPath(
            cmg: measurement?["cmg"]?.intValue, type: path["type"]?.intValue ?? 0, shared: shared ? 1 : 0,
            speed: measurement?["speed-bps"]?.intValue.flatMap(Self.speedText))
    }

    func characteristics(_ chpid: Int) throws(ChpstatExit) -> ChpstatCharacteristics {
        try refresh()
        let blocks = measurements[chpid]?["blocks"]
        guard let cmcb = Self.bytes(blocks?["cmcb"]?.stringValue, count: 32) else {
            throw .runtime("No characteristics for CHPID 0.\(Self.hex2(chpid))\(reason(chpid))")
        }
        return ChpstatCharacteristics(cmcb: cmcb, full: blocks?["cmcb-full"]?.boolValue ?? false)
    }

    /// How long to wait for the server's first read of a path's entries (a real machine's
    /// backend reads at its poll ticks, so right after --enable there may be none yet).
    static let firstReadSeconds = 5

    func entries(_ chpid: Int) throws(ChpstatExit) -> ChpstatEntries {
        try refresh()
        var waited = 0
        while measurements[chpid]?["blocks"]?["cue"] == nil && waited < Self.firstReadSeconds && chpstatSignal == 0 {
            Glibc.sleep(1)
            waited += 1
            stale = true
            try refresh()
        }
        let measurement = measurements[chpid]
        let blocks = measurement?["blocks"]
        guard let cue = Self.bytes(blocks?["cue"]?.stringValue, count: 32) else {
            throw .runtime("No measurement data for CHPID 0.\(Self.hex2(chpid))\(reason(chpid))")
        }
        let extended = Self.bytes(blocks?["ext-cue"]?.stringValue, count: 64)
        // chpstat warns (once) when the kernel has no ext_measurement file (before Linux 6.10),
        // whatever the path's CMG (`read_ext_cue`): the server says whether it has the file.
        // A server without `extended-entry-file` (before it) gets the old guess: no extended
        // block, no full CMCB (6.13+ has both files) and a CMG that has an extended entry.
        let missing: Bool
        if let file = measurement?["extended-entry-file"]?.boolValue {
            missing = !file
        } else {
            let cmg = measurement?["cmg"]?.intValue ?? 0
            missing = extended == nil && !(blocks?["cmcb-full"]?.boolValue ?? false) && [2, 4, 5].contains(cmg)
        }
        return ChpstatEntries(cue: cue, extendedCUE: extended, extendedMissing: missing)
    }

    func sleep(seconds: Int) {
        var remaining = UInt32(seconds)
        while remaining > 0 && chpstatSignal == 0 { remaining = Glibc.sleep(remaining) }
        stale = true
    }

    var interrupted: Bool { chpstatSignal != 0 }

    func now() -> Int { time(nil) }

    private func reason(_ chpid: Int) -> String {
        guard let text = measurements[chpid]?["reason-text"]?.stringValue else { return "" }
        return ": " + text
    }

    /// `0.xx` of css 0 as a number; nil for anything else (Linux shows css 0 only).
    static func chpid(_ text: String?) -> Int? {
        guard let text, text.hasPrefix("0."), text.count == 4 else { return nil }
        return Int(text.dropFirst(2), radix: 16)
    }

    static func hex2(_ value: Int) -> String {
        let digits = String(value, radix: 16)
        return digits.count < 2 ? "0" + digits : digits
    }

    /// Lowercase (or uppercase) hex of exactly `count` bytes.
    static func bytes(_ hex: String?, count: Int) -> [UInt8]? {
        guard let hex else { return nil }
        let digits = Array(hex.utf8)
        guard digits.count == count * 2 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let high = Self.nibble(digits[index]), let low = Self.nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// `speed_bps` as Linux prints it (chp.c): the largest 1000-power suffix (K, M, G, T) that
    /// divides the value exactly, `32G`; nil for 0 (unknown, which chpstat shows as `-`).
    static func speedText(_ bps: Int) -> String? {
        guard bps > 0 else { return nil }
        var value = bps
        var suffix = 0
        let suffixes = ["", "K", "M", "G", "T"]
        while value % 1000 == 0 && suffix < suffixes.count - 1 {
            value /= 1000
            suffix += 1
        }
        return "\(value)\(suffixes[suffix])"
    }
}
