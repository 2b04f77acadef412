// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import ArgumentParser
import JSONValues
import QMPTransport
import X509Credentials

#if canImport(Glibc)
import Glibc
#endif

/// Measures request throughput and latency of one or more QMP servers, in one run, so that
/// cssd can be compared with QEMU under the same client and the same machine load.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark QMP servers: sequential round trips, then pipelined requests.",
        discussion: """
            For each --socket in turn: connect, negotiate, then
              sequential: --count round trips, one request at a time (after
                          --warmup ones);
              pipelined:  --pipelined-count requests with up to --window in flight
                          (0: no limit);
              connect:    --connections connections one after another, each connect
                          (and TLS handshake) up to the greeting, then closed:
                          handshakes per second.

            Every request is {"execute":COMMAND,"id":N}. Latency runs from sending a
            request to reading its reply. With two or more sockets, a ratio line per
            mode compares the ops/s of each socket with the LAST one. --tls-socket
            servers (TLS with the client certificate of --tls-creds) run before the
            --socket ones, so that this compares TLS with plain TCP:
              cssctl bench --tls-creds DIR --tls-socket tcp:127.0.0.1:4445 \\
                  --socket tcp:127.0.0.1:4444

            Exits with status 1 when any reply was an error.
            """)

    @Option(name: .customLong("socket"), help: "A server: unix:PATH, tcp:HOST:PORT or a path (repeatable).")
    var sockets: [String] = []

    @Option(name: .customLong("tls-socket"), help: "A TLS server: tcp:HOST:PORT (repeatable; needs --tls-creds).")
    var tlsSockets: [String] = []

    @Option(
        name: .customLong("tls-creds"),
        help: "Client credentials for --tls-socket: a directory with ca-cert.pem, client-cert.pem, client-key.pem.")
    var tlsCreds: String?

    @Option(help: "Connections (with their handshakes) to time, one after another (0: skip).")
    var connections = 0

    @Option(name: .customLong("label"), help: "A name for the server at the same position (repeatable).")
    var labels: [String] = []

    @Option(help: "Sequential round trips to measure (0: skip).")
    var count = 20000

    @Option(help: "Sequential round trips before measuring.")
    var warmup = 500

    @Option(help: "Pipelined requests (0: skip).")
    var pipelinedCount = 200_000

    @Option(help: "Most pipelined requests in flight (0: no limit, write as fast as possible).")
    var window = 4096

    @Option(help: "The command to send; it must take no arguments.")
    var command = "query-version"

    // Also --timeout, the other subcommands' name for the same wait (cssctl --timeout 5 bench).
    @Option(
        name: [.customLong("stall-timeout"), .customLong("timeout")],
        help: "Fail when a server sends nothing for this many seconds while replies are due.")
    var stallTimeout = 30

    @Flag(help: "Print the results as JSON.")
    var json = false

    func validate() throws {
        guard count >= 0, warmup >= 0, pipelinedCount >= 0, window >= 0 else {
            throw ValidationError("counts and --window must not be negative")
        }
        guard count > 0 || pipelinedCount > 0 || connections > 0 else {
            throw ValidationError("nothing to do: every count is 0")
        }
        guard connections >= 0 else { throw ValidationError("--connections must not be negative") }
        guard tlsSockets.isEmpty || tlsCreds != nil else { throw ValidationError("--tls-socket needs --tls-creds") }
        guard labels.count <= max(sockets.count + tlsSockets.count, 1) else {
            throw ValidationError("more --label options than --socket options")
        }
        guard !command.isEmpty else { throw ValidationError("--command must not be empty") }
        guard stallTimeout > 0, stallTimeout <= Int(Int32.max / 1000) else {
            throw ValidationError("--stall-timeout out of range")
        }
    }

    struct Row {
        let label: String
        let socket: String
        let mode: String
        let window: Int?
        let measurement: Measurement
    }

    func run() throws {
        let plain = sockets.isEmpty && tlsSockets.isEmpty ? [QMPAddress.defaultServerText] : sockets
        let targets = tlsSockets + plain
        let names = targets.indices.map { $0 < labels.count ? labels[$0] : targets[$0] }
        let credentials = try reportingFailures { try loadClientCredentials(tlsCreds) }
        let table = Table(labelWidth: max(5, names.map(\.count).max() ?? 0))
        if !json { table.printHeader() }

        var rows: [Row] = []
        try reportingFailures {
            for (index, (target, name)) in zip(targets, names).enumerated() {
                let address = try QMPAddress.server(target)
                let stall = Int32(stallTimeout * 1000)
                let tls = index < tlsSockets.count ? credentials : nil
                if connections > 0 {
                    let row = Row(
                        label: name, socket: address.description, mode: "connect", window: nil,
                        measurement: try Self.connectionRate(address, tls: tls, count: connections, stall: stall))
                    rows.append(row)
                    if !json { table.printRow(row) }
                }
                let connection = try QMPClientConnection(
                    connectingTo: address, replyTimeoutMilliseconds: stall, tls: tls)
                try connection.readGreeting()
                try connection.negotiate()
                let runner = BenchRunner(
                    connection: connection, template: RequestTemplate(command: command), stallMilliseconds: stall)
                if count > 0 {
                    let row = Row(
                        label: name, socket: address.description, mode: "sequential", window: nil,
                        measurement: try runner.sequential(warmup: warmup, count: count))
                    rows.append(row)
                    if !json { table.printRow(row) }
                }
                if pipelinedCount > 0 {
                    let row = Row(
                        label: name, socket: address.description, mode: "pipelined", window: window,
                        measurement: try runner.pipelined(count: pipelinedCount, window: window))
                    rows.append(row)
                    if !json { table.printRow(row) }
                }
            }
        }

        let ratios = Self.ratios(rows, last: names.last!)
        if json {
            print(Self.json(rows, ratios))
        } else {
            for ratio in ratios {
                print("\(ratio.label)/\(ratio.base) \(ratio.mode): \(Self.ratioText(ratio.value))x")
            }
        }
        // A fast benchmark of error replies measures the wrong thing: say so, and fail.
        let failed = rows.filter { $0.measurement.errors > 0 }
        for row in failed {
            let m = row.measurement
            printError(
                "cssctl: WARNING: \(row.label) \(row.mode): \(m.errors) of \(m.requests) replies were errors"
                    + " (first: \(m.firstError ?? "?"))")
        }
        if !failed.isEmpty { throw Exit.errorReply }
    }

    /// `count` connections one after another, each timed from connect(2) to its greeting
    /// (through the TLS handshake), then closed.
    static func connectionRate(_ address: QMPAddress, tls: TLSCredentials?, count: Int, stall: Int32)
        throws(ClientFailure)
        -> Measurement
    {
        var latencies = [UInt64](repeating: 0, count: count)
        let started = monotonicNanoseconds()
        for k in 0..<count {
            let begin = monotonicNanoseconds()
            let connection = try QMPClientConnection(connectingTo: address, replyTimeoutMilliseconds: stall, tls: tls)
            try connection.readGreeting()
            latencies[k] = monotonicNanoseconds() - begin
        }
        return Measurement(
            requests: count, seconds: Double(monotonicNanoseconds() - started) / 1e9,
            stats: LatencyStats(sorting: &latencies))
    }

    // MARK: Output

    struct Ratio {
        let mode: String
        let label: String
        let base: String
        let value: Double
    }

    /// ops/s of each socket over the last socket's, per mode.
    static func ratios(_ rows: [Row], last: String) -> [Ratio] {
        var result: [Ratio] = []
        for mode in ["connect", "sequential", "pipelined"] {
            let ofMode = rows.filter { $0.mode == mode }
            guard ofMode.count >= 2, let base = ofMode.last, base.label == last else { continue }
            for row in ofMode.dropLast() {
                let baseRate = base.measurement.opsPerSecond
                let value = baseRate > 0 ? row.measurement.opsPerSecond / baseRate : .infinity
                result.append(Ratio(mode: mode, label: row.label, base: base.label, value: value))
            }
        }
        return result
    }

    static func ratioText(_ value: Double) -> String { fixed(value, value >= 10 ? 1 : 2) }

    /// Hand-built so numbers keep a fixed, readable precision (jansson prints reals with 17 digits).
    static func json(_ rows: [Row], _ ratios: [Ratio]) -> String {
        func string(_ text: String) -> String { JSON.string(text).serialized() }
        var out = "{\n  \"results\": ["
        for (index, row) in rows.enumerated() {
            let m = row.measurement
            let s = m.stats
            out += index == 0 ? "\n" : ",\n"
            out += "    {\"label\": \(string(row.label)), \"socket\": \(string(row.socket)), \"mode\": \"\(row.mode)\""
            out += ", \"requests\": \(m.requests), \"window\": \(row.window.map(String.init) ?? "null")"
            out += ", \"seconds\": \(fixed(m.seconds, 6)), \"ops_per_second\": \(fixed(m.opsPerSecond, 1))"
            out += ", \"latency_us\": {\"mean\": \(microseconds(s.mean)), \"p50\": \(microseconds(s.p50))"
            out +=
                ", \"p90\": \(microseconds(s.p90)), \"p99\": \(microseconds(s.p99)), \"max\": \(microseconds(s.max))}"
            out += ", \"errors\": \(m.errors), \"first_error\": \(m.firstError.map(string) ?? "null")"
            out += ", \"events\": \(m.events)}"
        }
        out += rows.isEmpty ? "],\n" : "\n  ],\n"
        out += "  \"ratios\": ["
        for (index, ratio) in ratios.enumerated() {
            out += index == 0 ? "\n" : ",\n"
            out +=
                "    {\"mode\": \"\(ratio.mode)\", \"label\": \(string(ratio.label)), \"relative_to\": \(string(ratio.base))"
            out += ", \"ratio\": \(ratio.value.isFinite ? fixed(ratio.value, 2) : "null")}"
        }
        out += ratios.isEmpty ? "]\n}" : "\n  ]\n}"
        return out
    }

    /// The text table, printed a row at a time so a slow server shows progress.
    struct Table {
        let labelWidth: Int
        static let columns = ["requests", "ops/s", "p50 µs", "p90 µs", "p99 µs", "max µs", "errors"]
        static let widths = [9, 11, 9, 9, 9, 10, 7]

        func printHeader() {
            var line = pad("label", labelWidth, left: true) + "  " + pad("mode", 10, left: true)
            for (title, width) in zip(Self.columns, Self.widths) { line += " " + pad(title, width) }
            print(line)
        }

        func printRow(_ row: Row) {
            let m = row.measurement
            let cells = [
                String(m.requests), fixed(m.opsPerSecond, 0), microseconds(m.stats.p50), microseconds(m.stats.p90),
                microseconds(m.stats.p99), microseconds(m.stats.max), String(m.errors),
            ]
            var line = pad(row.label, labelWidth, left: true) + "  " + pad(row.mode, 10, left: true)
            for (cell, width) in zip(cells, Self.widths) { line += " " + pad(cell, width) }
            print(line)
        }

        private func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, width - text.count))
            return left ? text + fill : fill + text
        }
    }
}
