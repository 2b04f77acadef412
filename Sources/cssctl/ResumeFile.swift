// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import JSONValues
import QMPWire

#if canImport(Glibc)
import Glibc
#endif

/// A place in cssd's history of path changes: the epoch and the sequence number of the last
/// change seen.
struct ResumePosition: Equatable {
    var epoch: String
    var sequence: UInt64
}

/// `--resume FILE`: the position, as `{"epoch": "...", "sequence": N}`, replaced atomically.
final class ResumeFile {
    let path: String
    /// The last complete change's position (saved), nil before the first event.
    private(set) var position: ResumePosition?
    /// The change being printed (complete once a later one, a gap report or the end comes).
    private var current: ResumePosition?

    /// Reads FILE; an absent file means no position yet.
    init(path: String) throws {
        self.path = path
        guard let file = fopen(path, "r") else {
            guard errno == ENOENT else { throw ClientFailure("--resume \(path): \(String(cString: strerror(errno)))") }
            return
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        guard let value = JSON.parse(String(decoding: bytes, as: UTF8.self)), let epoch = value["epoch"]?.stringValue,
            let sequence = value["sequence"]?.intValue, sequence >= 0
        else {
            throw ClientFailure(
                "--resume \(path): not a position ({\"epoch\": ..., \"sequence\": N}); remove it to start afresh")
        }
        position = ResumePosition(epoch: epoch, sequence: UInt64(sequence))
    }

    /// Notes an event printed; the change before it is complete when its sequence moved on.
    func saw(_ event: JSON) throws {
        guard let data = event["data"], let epoch = data["epoch"]?.stringValue,
            let sequence = data["sequence"]?.intValue
        else { return }
        let seen = ResumePosition(epoch: epoch, sequence: UInt64(sequence))
        if event["event"]?.stringValue == "PATH_EVENTS_GAP" {
            // The gap report is the whole of its position.
            current = nil
            try save(seen)
            return
        }
        if let current, current != seen { try save(current) }
        current = seen
    }

    /// The stream ended between changes (idle, signal, hang-up): the last one is complete.
    func finish(complete: Bool) throws {
        if complete, let current { try save(current) }
    }

    private func save(_ new: ResumePosition) throws {
        guard new != position else { return }
        position = new
        let position = JSON.object([("epoch", .string(new.epoch)), ("sequence", .integer(Int(new.sequence)))])
        let text = position.serialized() + "\n"
        let temporary = path + ".tmp"
        guard let file = fopen(temporary, "w") else {
            throw ClientFailure("--resume \(temporary): \(String(cString: strerror(errno)))")
        }
        let bytes = Array(text.utf8)
        let written = fwrite(bytes, 1, bytes.count, file)
        guard fclose(file) == 0, written == bytes.count, rename(temporary, path) == 0 else {
            throw ClientFailure("--resume \(path): \(String(cString: strerror(errno)))")
        }
    }
}
