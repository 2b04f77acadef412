// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import ArgumentParser
import Scenario
import TopologyFile

#if canImport(Glibc)
import Glibc
#endif

/// Failure scenarios (API/scenarios.md): without a server, check a file or convert a host's
/// kernel log into one; with one, play, watch and stop (ScenarioCommand+Server.swift).
struct ScenarioCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scenario",
        abstract:
            "Check a failure scenario, make one from a host's kernel log, or play, watch and stop one on cssd (API/scenarios.md).",
        subcommands: [Check.self, FromKmsg.self, Play.self, Watch.self, Stop.self])

    /// `cssctl scenario check FILE [--topology FILE]`: exit 0 and a summary, or exit 1 and
    /// `FILE:LINE:COLUMN: REASON`.
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a scenario file; with --topology, also the ids it names.",
            discussion: """
                Prints the scenario's name, clock, step count and duration, or the first
                problem as FILE:LINE:COLUMN: REASON (exit status 1).
                """)

        @Argument(help: "The scenario file.")
        var file: String

        @Option(help: "A topology file (API/topology.md) whose chpids, devices and subchannels the steps must name.")
        var topology: String?

        func run() throws {
            let text = try readText(file, utf8: true)
            var targets: ScenarioTargets?
            if let topology {
                do { targets = ScenarioTargets(topology: try TopologyFile.decode(contentsOf: topology)) } catch {
                    printError("cssctl: \(error)")
                    throw Exit.failure
                }
            }
            let scenario: Scenario
            do throws(ScenarioError) {
                scenario = try Scenario.parse(text)
                if let targets { try scenario.check(against: targets) }
            } catch {
                printError("\(file):\(error)")
                throw Exit.errorReply
            }
            writeOutput(
                "\(scenario.name): \(scenario.clock.rawValue) clock, \(scenario.steps.count) steps, \(scenario.duration) ms\n"
            )
        }
    }

    /// `cssctl scenario from-kmsg FILE [--name NAME]`: the scenario on standard output, the
    /// skipped lines on standard error.
    struct FromKmsg: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "from-kmsg",
            abstract: "Turn a host's kernel log (dmesg or /dev/kmsg records) into a scenario.",
            discussion: """
                Channel reports, channel-path configuration, link incidents and DASD IFCC
                path messages become steps at the offsets their timestamps give (ms from the
                first line). Lines the model cannot replay are listed on standard error
                with their line numbers. Example:
                  dmesg > incident.log; cssctl scenario from-kmsg incident.log > incident.json
                """)

        @Argument(help: "The kernel log ('-' for standard input).")
        var file: String

        @Option(help: "The scenario's name (letters, digits, '-', '_', '.').")
        var name: String = "kernel-log"

        func run() throws {
            let log = try readText(file)
            let result = KernelLogConversion.convert(log, name: name)
            // The name is checked as a scenario file would check it.
            do { _ = try Scenario.parse(result.text) } catch {
                printError("cssctl: --name '\(name)': \(error.reason)")
                throw Exit.errorReply
            }
            writeOutput(result.text)
            for (line, reason) in result.skipped { printError("\(file):\(line): skipped: \(reason)") }
        }
    }
}

/// Most bytes a scenario or a kernel log given to cssctl may have: a scenario at the step limit
/// is well under it, and a file without end (`/dev/zero`) is refused before memory runs out.
private let maximumTextBytes = 64 << 20

/// A whole text file, or standard input for `-`, of at most `maximumTextBytes`.
/// - Parameter utf8: refuse text that is not UTF-8 (a scenario file, as RFC 8259 asks), naming
///   the line and column of the first bad byte; a kernel log's stray bytes become U+FFFD.
func readText(_ path: String, utf8: Bool = false) throws -> String {
    let fd = path == "-" ? 0 : open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
        printError("cssctl: cannot open \(path): \(String(cString: strerror(errno)))")
        throw Exit.failure
    }
    defer { if fd != 0 { close(fd) } }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            printError("cssctl: cannot read \(path): \(String(cString: strerror(errno)))")
            throw Exit.failure
        }
        if n == 0 { break }
        guard bytes.count + n <= maximumTextBytes else {
            printError("cssctl: \(path) is larger than \(maximumTextBytes >> 20) MiB: refused")
            throw Exit.failure
        }
        bytes.append(contentsOf: chunk[..<n])
    }
    if utf8, let bad = firstInvalidUTF8(bytes) {
        let line = bytes[..<bad].count(where: { $0 == UInt8(ascii: "\n") }) + 1
        let column = bad - (bytes[..<bad].lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0) + 1
        printError("\(path):\(line):\(column): not UTF-8 (byte 0x\(String(bytes[bad], radix: 16)))")
        throw Exit.failure
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// The offset of the first byte of `bytes` that does not begin a valid UTF-8 sequence.
private func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
    var parser = Unicode.UTF8.ForwardParser()
    var iterator = bytes.makeIterator()
    var offset = 0
    while true {
        switch parser.parseScalar(from: &iterator) {
        case .valid(let scalar): offset += scalar.count
        case .emptyInput: return nil
        case .error: return offset
        }
    }
}
