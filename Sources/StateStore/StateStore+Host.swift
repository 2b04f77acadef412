// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import NIOCore
import SQLiteNIO

extension StateStore {
    /// The host as last recorded (linux-sysfs): `current` with the recorded channel paths and
    /// masks set; nil when none was recorded yet (a new state dir, or an older format).
    package func recordedHost(onto current: Subsystem) throws(StateStoreError) -> Subsystem? {
        do {
            let paths = try Self.rows(connection, "SELECT chpid, state FROM host_paths")
            guard !paths.isEmpty else { return nil }
            var recorded = current
            for row in paths {
                guard let blob = row.column("state")?.blob else { throw StateCodingError("a host path without state") }
                var reader = StateReader(Array(blob.readableBytesView))
                let path = try ChannelPath(from: &reader)
                guard recorded.channelPath(path.id) != nil else { continue }
                try recorded.setObservedPath(path)
            }
            for row in try Self.rows(connection, "SELECT id, pam, pom, lpm FROM host_masks") {
                let raw = UInt32(truncatingIfNeeded: row.column("id")?.integer ?? -1)
                let id = SubchannelID(
                    cssid: UInt8(raw >> 24), ssid: UInt8(truncatingIfNeeded: raw >> 16),
                    schno: UInt16(truncatingIfNeeded: raw))
                guard let subchannel = recorded.subchannel(id) else { continue }
                try recorded.setObservedMasks(
                    id, pam: UInt8(truncatingIfNeeded: row.column("pam")?.integer ?? 0),
                    pom: UInt8(truncatingIfNeeded: row.column("pom")?.integer ?? 0),
                    lpm: UInt8(truncatingIfNeeded: row.column("lpm")?.integer ?? 0), vpm: subchannel.verifiedPathMask)
            }
            return recorded
        } catch let error as StateStoreError {
            throw error
        } catch {
            throw StateStoreError("\(path): the recorded host state is corrupt (\(error))")
        }
    }

    /// Records the whole host as it is now (linux-sysfs, when nothing was recorded yet).
    package func recordHost(_ host: Subsystem) throws(StateStoreError) {
        do {
            try commitLock.withLock {
                _ = try Self.rows(connection, "BEGIN")
                try writeHost(paths: host.channelPaths, masks: host.subchannels.map { ($0.id, $0.schib.pmcw) })
                _ = try Self.rows(connection, "COMMIT")
            }
        } catch {
            _ = try? Self.rows(connection, "ROLLBACK")
            throw StateStoreError("cannot write \(path): \(error)")
        }
    }

    /// How the host's devices differ from the ones last recorded (`recordHostLayout`).
    package struct HostLayoutChange: Sendable, Equatable {
        package var subchannelsAdded = 0
        package var subchannelsRemoved = 0
        package var channelPathsAdded = 0
        package var channelPathsRemoved = 0

        package var isEmpty: Bool { self == HostLayoutChange() }
    }

    /// Makes the recorded host's devices those of `host` (linux-sysfs, at start, after the
    /// changes of `recordedHost` were published): the rows of subchannels and channel paths
    /// that are gone are deleted, and new ones are recorded as they are now (no earlier state
    /// of theirs was recorded: there is nothing to publish about them). The rows of the others
    /// are left to the changes published at start, which write them once durable; so after a
    /// crash in between those changes are published again at the next start, never lost.
    /// One transaction; O(subchannels).
    /// - Returns: what was added and removed since the last recorded state.
    /// - Throws: `StateStoreError` when the tables cannot be read or written.
    package func recordHostLayout(_ host: Subsystem) throws(StateStoreError) -> HostLayoutChange {
        do {
            return try commitLock.withLock {
                let recordedPaths = Set(
                    try Self.rows(connection, "SELECT chpid FROM host_paths").compactMap { $0.column("chpid")?.integer }
                )
                let recordedSubchannels = Set(
                    try Self.rows(connection, "SELECT id FROM host_masks").compactMap { $0.column("id")?.integer })
                let paths = host.channelPaths
                let subchannels = host.subchannels
                let currentPaths = Set(paths.map { Int($0.id.rawValue) })
                let currentSubchannels = Set(subchannels.map { Int($0.id.rawValue) })
                let addedPaths = paths.filter { !recordedPaths.contains(Int($0.id.rawValue)) }
                let addedSubchannels = subchannels.filter { !recordedSubchannels.contains(Int($0.id.rawValue)) }
                let removedPaths = Array(recordedPaths.subtracting(currentPaths))
                let removedSubchannels = Array(recordedSubchannels.subtracting(currentSubchannels))
                let change = HostLayoutChange(
                    subchannelsAdded: addedSubchannels.count, subchannelsRemoved: removedSubchannels.count,
                    channelPathsAdded: addedPaths.count, channelPathsRemoved: removedPaths.count)
                guard !change.isEmpty else { return change }
                _ = try Self.rows(connection, "BEGIN")
                for (table, key, removed) in [
                    ("host_paths", "chpid", removedPaths), ("host_masks", "id", removedSubchannels),
                ] {
                    var index = 0
                    while index < removed.count {
                        let chunk = removed[index..<min(index + 500, removed.count)]
                        let marks = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
                        _ = try Self.rows(
                            connection, "DELETE FROM \(table) WHERE \(key) IN (\(marks))",
                            chunk.map { SQLiteData.integer($0) })
                        index += chunk.count
                    }
                }
                try writeHost(paths: addedPaths, masks: addedSubchannels.map { ($0.id, $0.schib.pmcw) })
                _ = try Self.rows(connection, "COMMIT")
                return change
            }
        } catch {
            _ = try? Self.rows(connection, "ROLLBACK")
            throw StateStoreError("cannot write \(path): \(error)")
        }
    }

    /// Upserts channel paths and subchannel masks into the host tables (inside a transaction).
    func writeHost(paths: [ChannelPath], masks: [(SubchannelID, PMCW)]) throws {
        var index = 0
        while index < paths.count {
            let chunk = paths[index..<min(index + 400, paths.count)]
            var binds: [SQLiteData] = []
            for path in chunk {
                var writer = StateWriter(capacity: 16)
                path.write(to: &writer)
                binds.append(.integer(Int(path.id.rawValue)))
                binds.append(.blob(ByteBuffer(bytes: writer.bytes)))
            }
            let values = Array(repeating: "(?, ?)", count: chunk.count).joined(separator: ", ")
            _ = try Self.rows(connection, "INSERT OR REPLACE INTO host_paths (chpid, state) VALUES " + values, binds)
            index += chunk.count
        }
        index = 0
        while index < masks.count {
            let chunk = masks[index..<min(index + 400, masks.count)]
            var binds: [SQLiteData] = []
            binds.reserveCapacity(chunk.count * 4)
            for (id, pmcw) in chunk {
                binds.append(.integer(Int(id.rawValue)))
                binds.append(.integer(Int(pmcw.pam)))
                binds.append(.integer(Int(pmcw.pom)))
                binds.append(.integer(Int(pmcw.lpm)))
            }
            let values = Array(repeating: "(?, ?, ?, ?)", count: chunk.count).joined(separator: ", ")
            _ = try Self.rows(
                connection, "INSERT OR REPLACE INTO host_masks (id, pam, pom, lpm) VALUES " + values, binds)
            index += chunk.count
        }
    }
}
