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
/// Without a file (`path` nil) the position is only kept in memory, for `--reconnect`.
final class ResumeFile {
    let path: String?
    /// The last complete change's position (saved), nil before the first event.
    private(set) var position: ResumePosition?
    /// The change being printed (complete once a later one, a gap report or the end comes).
    private var current: ResumePosition?
    /// How many of its events were printed.
    private var currentPrinted = 0
    /// After a reconnection, the events of the cut change that were printed already, to pass
    /// over when the server sends the change again (in the same order: it replays its journal).
    private var skip: (change: ResumePosition, events: Int)?

    /// Reads FILE; an absent file (or none) means no position yet.
    init(path: String?) throws {
        self.path = path
        guard let path else { return }
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

    /// Whether to print `event`, noting it: false only for an event printed before a
    /// reconnection and sent again. The change before it is complete when its sequence moved on.
    func admit(_ event: JSON) throws -> Bool {
        guard let data = event["data"], let epoch = data["epoch"]?.stringValue,
            let sequence = data["sequence"]?.intValue
        else { return true }
        let seen = ResumePosition(epoch: epoch, sequence: UInt64(sequence))
        if let pending = skip, pending.change == seen, pending.events > 0 {
            skip = (pending.change, pending.events - 1)
            return false
        }
        skip = nil
        if event["event"]?.stringValue == "PATH_EVENTS_GAP" {
            // The gap report is the whole of its position.
            current = nil
            try save(seen)
            return true
        }
        if let current, current != seen {
            try save(current)
            currentPrinted = 0
        }
        current = seen
        currentPrinted += 1
        return true
    }

    /// Where a subscription without a position starts (the journal's newest change when it
    /// subscribed): saved at once, so that a run that prints nothing still leaves a position.
    func start(at start: ResumePosition) throws {
        if position == nil { try save(start) }
    }

    /// The stream ended. Between changes (idle) the last one is complete. Otherwise (--count, a
    /// signal, a hang-up) it may not be: the position is the one before it, so a resumed run
    /// prints it again rather than skip its other events.
    func finish(complete: Bool) throws {
        guard let current else { return }
        if complete {
            try save(current)
            self.current = nil
        } else if current.sequence > 0 {
            let before = ResumePosition(epoch: current.epoch, sequence: current.sequence - 1)
            if position.map({ $0.epoch != before.epoch || $0.sequence < before.sequence }) ?? true { try save(before) }
            skip = (current, currentPrinted)
        }
    }

    private func save(_ new: ResumePosition) throws {
        guard new != position else { return }
        position = new
        guard let path else { return }
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
