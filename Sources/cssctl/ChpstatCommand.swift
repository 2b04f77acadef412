// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import ArgumentParser
import ChpstatView

#if canImport(Glibc)
import Glibc
#endif

/// The signal that asked `cssctl chpstat` to stop (0: none). Written by the signal handler
/// only, read between sleeps.
nonisolated(unsafe) var chpstatSignal: Int32 = 0

/// `chpstat` over QMP: s390-tools' chpstat v2.43.0 (every option of its man page, its exit
/// statuses, its output bytes) with the data of a cssd socket. Its command line is chpstat's,
/// parsed by chpstat's rules (`ChpstatOptions`), not by ArgumentParser: `CSSCtl.main` hands it
/// over before ArgumentParser sees it; this type is registered so that `cssctl help` lists it.
struct ChpstatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chpstat",
        abstract: "Channel-path statistics as s390-tools' chpstat shows them (query-chpid-measurements).",
        discussion: """
            Takes chpstat's options: -s/--status, -e/--enable, -d/--disable,
            -l/--list-columns, -L/--list-keys, -n/--iterations, -i/--interval,
            -c/--columns, -k/--keys, -a/--all, --scale, --cmg,
            --format json|json-seq|jsonl|pairs|csv, --chars, --util, --metrics,
            --no-ansi, --no-prefix, and CHPID arguments (0.40 or 40); FMT_NOMETA=1
            drops the meta object. Also --socket, --timeout, --tls-creds as for the
            other subcommands.
            Exit status as chpstat's: 0 success, 1 usage error, 2 run-time error
            (including a connection failure or an error reply).
            """)

    @Argument(parsing: .captureForPassthrough, help: "chpstat's options and CHPIDs.")
    var arguments: [String] = []

    func run() throws {
        throw ExitCode(Self.run(arguments))
    }

    /// Runs chpstat with `arguments` (those after `chpstat`, connection options included).
    /// - Returns: the exit status.
    static func run(_ arguments: [String]) -> Int32 {
        var rest: [String] = []
        var socket: String?
        var timeout = 60
        var tlsCreds: String?
        var index = 0
        // --socket, --timeout and --tls-creds are cssctl's; everything else is chpstat's.
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" {
                rest += arguments[(index - 1)...]
                break
            }
            let name = String(argument.split(separator: "=", maxSplits: 1).first ?? "")
            guard ConnectionOptions.names.contains(name) else {
                rest.append(argument)
                continue
            }
            var value: String
            if argument.contains("=") {
                value = String(argument.dropFirst(name.count + 1))
            } else if index < arguments.count {
                value = arguments[index]
                index += 1
            } else {
                printError("cssctl chpstat: Option '\(argument)' requires an argument")
                return 1
            }
            switch name {
            case "--socket": socket = value
            case "--timeout":
                guard let seconds = Int(value), seconds >= 0, seconds <= Int(Int32.max / 1000) else {
                    printError("cssctl chpstat: --timeout out of range: \(value)")
                    return 1
                }
                timeout = seconds
            default: tlsCreds = value
            }
            value = ""
        }
        let source = QMPChpstatSource(socket: socket, timeoutSeconds: timeout, tlsCreds: tlsCreds)
        defer { source.close() }
        var environment = ChpstatEnvironment(
            programName: "cssctl chpstat", version: CSSCtl.version, hostName: Self.hostName(),
            localTime: Self.localTime, hideMeta: getenv("FMT_NOMETA").map { String(cString: $0) == "1" } ?? false,
            terminal: isatty(STDOUT_FILENO) != 0, standardOutput: Self.writeStandardOutput,
            standardError: { printError(String($0.dropLast(while: { $0 == "\n" }))) })
        environment.helpSupplement = Self.connectionHelp
        var chpstat = Chpstat(source: source, environment: environment)
        catchStopSignals()
        let status = chpstat.run(rest)
        if status < 0 && chpstatSignal != 0 {
            // As chpstat: the output is complete, then the signal ends the process.
            signal(chpstatSignal, SIG_DFL)
            raise(chpstatSignal)
        }
        return status < 0 ? 128 + chpstatSignal : status
    }

    /// SIGINT and SIGTERM set `chpstatSignal`, which ends chpstat's wait (sleep returns early).
    static func catchStopSignals() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { chpstatSignal = $0 }
        sigemptyset(&action.sa_mask)
        sigaction(SIGINT, &action, nil)
        sigaction(SIGTERM, &action, nil)
    }

    /// cssctl's part of --help.
    static let connectionHelp = """

        CONNECTION (cssctl)
              --socket ADDRESS    unix:PATH, tcp:HOST:PORT or a path (default: $CSSD_SOCKET, else ./cssd.sock)
              --timeout SECONDS   Give up when the server stays silent this long (0: never; default 60)
              --tls-creds DIR     TLS client credentials for tcp: (ca-cert.pem, client-cert.pem, client-key.pem)

        Data: query-chpid-measurements and query-chpids; --enable/--disable: set-channel-measurement.

        """

    /// `gethostname()`.
    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "" }
        return String(cString: buffer)
    }

    /// `strftime(format, localtime(epoch))`.
    static func localTime(_ epoch: Int, _ format: String) -> String {
        var seconds = time_t(epoch)
        var parts = tm()
        guard localtime_r(&seconds, &parts) != nil else { return "" }
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, format, &parts)
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Writes a whole report to standard output at once and flushes it (chpstat flushes after
    /// each iteration, so that a pipe sees every report as soon as it is complete).
    static func writeStandardOutput(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = write(STDOUT_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                if n <= 0 {
                    if n < 0 && errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
    }
}

extension String {
    fileprivate func dropLast(while predicate: (Character) -> Bool) -> Substring {
        var end = endIndex
        while end > startIndex, predicate(self[index(before: end)]) { end = index(before: end) }
        return self[..<end]
    }
}
