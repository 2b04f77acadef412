// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import ArgumentParser
import CSSModel
import TopologyFile

#if canImport(Glibc)
import Glibc
#endif

/// Writes a synthetic topology file (CSSModel's generator) for scale tests and benchmarks.
struct GenTopologyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gen-topology",
        abstract: "Write a synthetic topology file (format: API/topology.md).",
        discussion: """
            One channel subsystem with FICON (0x1a) chpids C.00 upwards, shared, and N
            DASDs (3390/0c on 3990/e9) numbered C.0.0000 upwards (filling subchannel
            set 0, then 1, ...) with devno = subchannel number. Subchannel i uses
            chpids (i*K + j) mod M for j < K, so each chpid is shared by N*K/M
            subchannels. Example (262,144 subchannels, 65,536 per chpid):
              cssctl gen-topology --subchannels 262144 --chpids 32 --paths 8 \\
                  --output big.json
              cssd --topology big.json
            """)

    @Option(name: .customLong("subchannels"), help: "Number of subchannels N (0...262144).")
    var subchannels: Int

    @Option(name: .customLong("chpids"), help: "Number of channel paths M (1...256).")
    var chpids: Int

    @Option(name: .customLong("paths"), help: "Paths per subchannel K (1...8, at most M).")
    var paths: Int

    @Option(help: "The channel subsystem id in hex, as in ids (0...ff; fe is QEMU's virtual css).")
    var cssid: String = "0"

    @Option(help: "Write to this file instead of standard output.")
    var output: String?

    func run() throws {
        let topology: Topology
        do {
            topology = try Topology.synthetic(
                subchannels: subchannels, chpids: chpids, paths: paths, cssid: try parsedCSSID())
        } catch {
            throw ValidationError("--\(error.field): \(error.reason)")
        }
        let bytes = TopologyFile.encode(topology)
        let fd: Int32
        if let output {
            fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                printError("cssctl: cannot open \(output): \(String(cString: strerror(errno)))")
                throw Exit.failure
            }
        } else {
            fd = 1
        }
        let written = bytes.withUnsafeBytes { writeAll(fd, $0) }
        let closed = output == nil ? 0 : close(fd)
        guard written, closed == 0 else {
            printError("cssctl: cannot write \(output ?? "standard output"): \(String(cString: strerror(errno)))")
            throw Exit.failure
        }
    }

    /// `--cssid` in hex (optional 0x), as it appears in ids like `fe.0.0000`.
    private func parsedCSSID() throws(TopologyError) -> Int {
        guard let value = Hex.prefixedNumber(cssid) else {
            throw TopologyError(field: "cssid", reason: "'\(cssid)' is not a hex cssid like 0 or fe")
        }
        guard value <= 0xff else {
            throw TopologyError(field: "cssid", reason: "'\(cssid)' is out of range (0..ff)")
        }
        return value
    }
}

/// Writes the whole buffer, retrying short writes and EINTR.
private func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
    var offset = 0
    while offset < bytes.count {
        let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if n < 0 {
            if errno == EINTR { continue }
            return false
        }
        offset += n
    }
    return true
}
