// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import JSONValues

#if canImport(Glibc)
import Glibc
#endif

/// Topology files: a machine's I/O configuration as JSON, read by `cssd --topology FILE` and
/// written by `cssctl gen-topology`. The format is documented in API/topology.md:
///
/// ```json
/// {"format": "cssd-topology", "version": 1,
///  "chpids": [{"chpid": "0.4a", "type": "0x1a", "shared": true}],
///  "subchannels": [{"subchannel": "0.0.0000", "devno": "0.0.4711", "dev-type": "3390/0c",
///                   "cu-type": "3990/e9", "chpids": ["0.4a"]}]}
/// ```
///
/// Decoding is all or nothing: the result has passed `Topology.validate()`, and any problem,
/// syntactic or semantic, is a `TopologyFileError` naming the file and the line/column or the
/// field path.
package enum TopologyFile {
    /// The value of the `format` key.
    package static let formatName = "cssd-topology"
    /// The value of the `version` key this code reads and writes.
    package static let version = 1

    /// Reads and decodes a topology file.
    /// - Parameters:
    ///   - path: the file to read.
    ///   - name: how errors name the file; the path by default.
    /// - Throws: `TopologyFileError` if the file cannot be read, is not valid JSON, does not
    ///   follow the format, or describes a topology that cannot be built.
    package static func decode(contentsOf path: String, name: String? = nil) throws(TopologyFileError) -> Topology {
        let name = name ?? path
        let bytes: [UInt8]
        do {
            bytes = try readFile(path)
        } catch {
            throw TopologyFileError(file: name, location: .file, message: "cannot read the file: \(error.reason)")
        }
        return try decode(bytes, name: name)
    }

    /// Decodes a topology from the bytes of a file (UTF-8 JSON).
    /// - Parameter name: how errors name the file.
    package static func decode(_ bytes: [UInt8], name: String = "<string>") throws(TopologyFileError) -> Topology {
        var outcome: Result<Topology, TopologyFileError>!
        bytes.withUnsafeBytes { buffer in
            do throws(TopologyFileError) {
                outcome = .success(try decode(buffer, name: name))
            } catch {
                outcome = .failure(error)
            }
        }
        return try outcome.get()
    }

    /// Decodes a topology from JSON text.
    package static func decode(_ text: String, name: String = "<string>") throws(TopologyFileError) -> Topology {
        try decode(Array(text.utf8), name: name)
    }

    /// Decodes a topology from raw bytes; the other `decode` functions end here.
    package static func decode(_ bytes: UnsafeRawBufferPointer, name: String) throws(TopologyFileError) -> Topology {
        // The common case in one pass; anything unusual, and every error, through jansson.
        let topology: Topology
        if let fast = FastTopologyReader.read(bytes) {
            topology = fast
        } else {
            topology = try decodeTree(bytes, name: name)
        }
        do {
            try topology.validate()
        } catch {
            throw TopologyFileError(file: name, validation: error)
        }
        return topology
    }

    /// Parses with jansson and walks the tree: the decoder for every file, and the one that
    /// names the line, column or field of a problem. No semantic validation.
    static func decodeTree(_ bytes: UnsafeRawBufferPointer, name: String) throws(TopologyFileError) -> Topology {
        // Strict JSON; a repeated key is a syntax error, so no key can silently shadow
        // another; any top-level value, so that a non-object gets our own message.
        let root: JSON
        do {
            root = try JSON.parseDocument(bytes)
        } catch {
            throw TopologyFileError(
                file: name, location: .position(line: error.line, column: error.column),
                message: "JSON syntax error: \(error.message)")
        }
        return try root.withNode { (node) throws(TopologyFileError) in try TopologyDecoder(file: name).document(node) }
    }

    /// The file text for `topology`: pretty-printed, keys in a fixed order, one chpid or
    /// subchannel per line, ending in a newline. `decode(encode(t)) == t` for any topology
    /// that passes `validate()`.
    package static func encode(_ topology: Topology) -> [UInt8] {
        TopologyEncoder.encode(topology)
    }

    /// `encode(_:)` as a String.
    package static func encodeText(_ topology: Topology) -> String {
        String(decoding: encode(topology), as: UTF8.self)
    }
}

/// A system call that failed, with strerror's text.
struct SystemError: Error {
    let reason: String
    init(errno code: Int32) { reason = String(cString: strerror(code)) }
}

/// The whole file, read with one fstat and as few reads as it takes.
func readFile(_ path: String) throws(SystemError) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw SystemError(errno: errno) }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw SystemError(errno: errno) }
    guard (info.st_mode & S_IFMT) != S_IFDIR else { throw SystemError(errno: EISDIR) }
    var bytes: [UInt8] = []
    var capacity = max(Int(info.st_size), 0) + 1
    var count = 0
    while true {
        if count == capacity { capacity *= 2 }
        if bytes.count < capacity { bytes.append(contentsOf: repeatElement(0, count: capacity - bytes.count)) }
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, capacity - count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw SystemError(errno: errno)
        }
        if n == 0 { break }
        count += n
    }
    bytes.removeLast(bytes.count - count)
    return bytes
}
