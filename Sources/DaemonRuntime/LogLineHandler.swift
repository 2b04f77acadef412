// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Logging

#if canImport(Glibc)
import Glibc
#endif

/// swift-log's `StreamLogHandler` line on standard error (`TIME LEVEL LABEL: KEY=VALUE … [SOURCE]
/// MESSAGE`), made safe for what clients put into it: a certificate's DN, a peer's address, a
/// command's text. One event is always one line, and a value cannot pose as another key:
///
/// - Control characters (C0, DEL, C1), line and paragraph separators, invisible format
///   characters (bidi overrides, zero-width ones) and every white space but the ASCII space (NBSP,
///   EM SPACE, ideographic space, ...) are written as `\n`, `\r`, `\t` or `\u{XX}`, in the
///   message and in metadata: a DN `CN=evil\nforged …` cannot start a line, and nothing can look
///   like a separator that is not one.
/// - A metadata value that is empty or holds a space, a `"` or one of the characters above is
///   written in double quotes, with `\"` and `\\` escaped inside them (logfmt's convention):
///   `dn="O=Example,CN=a reason=x"` is one value, not two keys.
/// - Other values are written as they are (`dn=C=GB,O=Example,CN=mgmt`).
///
/// Under journald (standard error is the stream `$JOURNAL_STREAM` names, as systemd sets it for
/// a service), a line starts with its syslog priority as sd-daemon(3) defines it (`<4>` for a
/// warning), so `journalctl -p warning` finds cssd's warnings, and carries no timestamp: the
/// journal records its own. Elsewhere the line starts with the time, as before.
package struct LogLineHandler: LogHandler {
    /// How a line begins: with the time (a terminal, a file), or with the syslog priority for
    /// journald, which stamps each line itself.
    package enum Prefix: Sendable, Equatable {
        case timestamp
        case journalPriority
    }

    package var logLevel: Logger.Level = .info
    package var metadata: Logger.Metadata = [:]
    package var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let prefix: Prefix

    package init(label: String, prefix: Prefix = LogLineHandler.standardErrorPrefix) {
        self.label = label
        self.prefix = prefix
    }

    /// `.journalPriority` when standard error is the journal stream `$JOURNAL_STREAM` names
    /// (`DEVICE:INODE`, systemd.exec(5) "Environment variables in spawned processes"): the
    /// variable alone is not enough, since a child of a service inherits it with another stderr.
    package static let standardErrorPrefix: Prefix = {
        guard let value = getenv("JOURNAL_STREAM").map({ String(cString: $0) }) else { return .timestamp }
        let parts = value.split(separator: ":")
        var info = stat()
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]), fstat(2, &info) == 0
        else { return .timestamp }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode ? .journalPriority : .timestamp
    }()

    /// The syslog priority of a level (sd-daemon(3)'s `SD_*` prefixes): trace and debug 7,
    /// info 6, notice 5, warning 4, error 3, critical 2.
    package static func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    /// One event as its line (newline included).
    package func line(for event: LogEvent) -> String {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let extra = event.metadata { all.merge(extra) { _, new in new } }
        var line =
            switch prefix {
            case .timestamp: "\(Self.timestamp()) \(event.level) \(label):"
            case .journalPriority: "<\(Self.syslogPriority(event.level))>\(event.level) \(label):"
            }
        for (key, value) in all.sorted(by: { $0.key < $1.key }) {
            line += " \(Self.escaped(key))=\(Self.value("\(value)"))"
        }
        return line + " [\(Self.escaped(event.source))] \(Self.escaped("\(event.message)"))\n"
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        // One write(2) per line: lines of several threads never interleave.
        var bytes = Array(line(for: event).utf8)
        bytes.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }

    /// A metadata value: bare, or quoted when it could otherwise be read as more than one.
    static func value(_ text: String) -> String {
        let needsQuotes =
            text.isEmpty
            || text.unicodeScalars.contains { $0 == " " || $0 == "\"" || isEscaped($0) }
        guard needsQuotes else { return text }
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default: out += escape(scalar)
            }
        }
        return out + "\""
    }

    /// The text with control characters escaped (backslashes kept as they are).
    static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isEscaped) else { return text }
        var out = ""
        for scalar in text.unicodeScalars { out += escape(scalar) }
        return out
    }

    private static func escape(_ scalar: Unicode.Scalar) -> String {
        guard isEscaped(scalar) else { return String(Character(scalar)) }
        switch scalar {
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\t": return "\\t"
        default: return "\\u{" + String(scalar.value, radix: 16) + "}"
        }
    }

    /// Written as an escape: controls, separators, format characters, white space but " ".
    private static func isEscaped(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII { return scalar.value < 0x20 || scalar.value == 0x7f }
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .spaceSeparator, .surrogate, .privateUse,
            .unassigned:
            return true
        default:
            return scalar.properties.isWhitespace
        }
    }

    /// `2026-12-07T08:49:29+0000`, local time, as StreamLogHandler writes it.
    private static func timestamp() -> String {
        var buffer = [Int8](repeating: 0, count: 64)
        var now = time(nil)
        var parts = tm()
        guard localtime_r(&now, &parts) != nil else { return "<unknown>" }
        let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
