// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

@main
struct CSSCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cssctl",
        abstract: "Command-line client for cssd (and any QMP server).",
        discussion: """
            With no subcommand, runs one QMP command (see 'cssctl help exec'). --socket and
            --timeout may come before or after the subcommand. Examples:
              cssctl query-version      (the installed cssd: /run/cssd/qmp.sock)
              cssctl --socket tcp:127.0.0.1:4444 some-command dev=0.0.1234 opts.force=true
              cssctl --json '{"execute": "query-commands"}' --raw
              cssctl schema-docs --module qmp --output API/qmp.md
              cssctl --socket /run/cssd/qmp.sock lschp
              cssctl --socket /run/cssd/qmp.sock chchp -v 0 0.40-0.43
              cssctl --socket /run/cssd/qmp.sock chpstat --format json -n 1
              cssctl events --socket /run/cssd/qmp.sock --chpid 0.40 --format table
              cssctl bench --socket /tmp/cssd.sock --socket /tmp/qemu.sock

            Exit status: 0 success, 1 error reply, 2 connection or protocol failure,
            64 usage error.
            """,
        version: "cssctl \(CSSCtl.release)",
        subcommands: [
            ExecCommand.self, SchemaDocsCommand.self, BenchCommand.self, GenTopologyCommand.self, EventsCommand.self,
            LschpCommand.self, LscssCommand.self, ChpstatCommand.self, ChchpCommand.self, ScenarioCommand.self,
        ],
        defaultSubcommand: ExecCommand.self
    )

    /// cssctl's release, the same as cssd's (`query-version`'s `package` is `cssd 0.1.0`):
    /// `cssctl --version`.
    static let release = "0.1.0"

    /// Parses the command line with connection options allowed before the subcommand's name
    /// (`ConnectionOptions.movedAfterSubcommand`), then runs the subcommand.
    static func main() {
        let names = Set(configuration.subcommands.compactMap { $0.configuration.commandName })
        let arguments = ConnectionOptions.movedAfterSubcommand(
            Array(CommandLine.arguments.dropFirst()), subcommands: names)
        // chpstat's command line follows chpstat's (getopt) rules and exit statuses, not
        // ArgumentParser's: it is parsed by ChpstatView.
        if arguments.first == ChpstatCommand.configuration.commandName {
            Glibc.exit(ChpstatCommand.run(Array(arguments.dropFirst())))
        }
        main(arguments)
    }

    /// What `cssctl chpstat --version` and chpstat's `meta.version` say: the chpstat release
    /// whose output it reproduces.
    static let version = "2.43.0-cssctl"
}

/// Exit statuses shared by the subcommands.
enum Exit {
    /// The server answered with an error.
    static let errorReply = ExitCode(1)
    /// No usable answer: cannot connect, the server hung up, or it broke the protocol.
    static let failure = ExitCode(2)
}

/// Writes a line to standard error (unbuffered, so it interleaves sensibly with crashes and exits).
func printError(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let n = write(2, bytes.baseAddress! + offset, bytes.count - offset)
            if n <= 0 {
                if n < 0 && errno == EINTR { continue }
                return
            }
            offset += n
        }
    }
}

/// Runs `body`, turning a `ClientFailure` into a message and exit status 2.
func reportingFailures<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let failure as ClientFailure {
        printError("cssctl: \(failure)")
        throw Exit.failure
    }
}
