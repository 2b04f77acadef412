// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import DaemonRuntime
import Logging
import Testing

/// The two line prefixes: the time for a terminal or file, the syslog priority for journald
/// (sd-daemon(3)), which stamps lines itself and filters on the priority (`journalctl -p`).
@Suite struct LogLineHandlerTests {
    static func event(_ level: Logger.Level, _ message: Logger.Message, _ metadata: Logger.Metadata? = nil)
        -> LogEvent
    {
        LogEvent(
            level: level, message: message, metadata: metadata, source: "QMPServer", file: #fileID,
            function: #function, line: #line)
    }

    @Test func journaldLinesStartWithThePriorityAndCarryNoTime() {
        let handler = LogLineHandler(label: "cssd", prefix: .journalPriority)
        #expect(
            handler.line(for: Self.event(.warning, "kernel log /dev/kmsg: not following it"))
                == "<4>warning cssd: [QMPServer] kernel log /dev/kmsg: not following it\n")
        #expect(
            handler.line(for: Self.event(.info, "ready", ["peer": "a b"]))
                == "<6>info cssd: peer=\"a b\" [QMPServer] ready\n")
        #expect(handler.line(for: Self.event(.critical, "x")).hasPrefix("<2>critical "))
    }

    @Test func everyLevelHasTheSdDaemonPriority() {
        let expected: [(Logger.Level, Int)] = [
            (.trace, 7), (.debug, 7), (.info, 6), (.notice, 5), (.warning, 4), (.error, 3), (.critical, 2),
        ]
        for (level, priority) in expected { #expect(LogLineHandler.syslogPriority(level) == priority) }
    }

    @Test func elsewhereLinesStartWithTheTime() {
        let line = LogLineHandler(label: "cssd", prefix: .timestamp).line(for: Self.event(.warning, "w"))
        // 2026-12-07T08:49:29+0000 warning cssd: [QMPServer] w
        let time = line.prefix(while: { $0 != " " })
        #expect(time.count == 24 && time.dropFirst(4).first == "-" && time.contains("T"))
        #expect(line.hasSuffix(" warning cssd: [QMPServer] w\n"))
    }
}
