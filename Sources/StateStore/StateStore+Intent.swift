// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import PathChangePipeline
import SQLiteNIO

/// Intended chpid states (linux-sysfs, API/intent.md), in their own table `host_intent`
/// (chpid, vary, configure: NULL where nothing is intended; vary 1 online / 0 offline,
/// configure as sysfs prints it). The table is added on first use (`CREATE TABLE IF NOT
/// EXISTS`): a state dir of an older cssd gains it without a format change, and an older cssd
/// ignores it. Each update is its own transaction under the commit lock, so it is on disk
/// (`synchronous=FULL`) before the command that made it replies. A few rows per chpid at most.
extension StateStore: IntentLog {
    /// `loadIntents`, with the store's own error (what the daemon's refusal to start names).
    package func recordedIntents() throws(StateStoreError) -> [ChannelPathID: ChpidIntent] {
        do {
            return try loadIntents()
        } catch let error as StateStoreError {
            throw error
        } catch {
            throw StateStoreError("\(path): the recorded intent cannot be read (\(error))")
        }
    }

    package func loadIntents() throws -> [ChannelPathID: ChpidIntent] {
        do {
            return try commitLock.withLock {
                try ensureIntentTable()
                var intents: [ChannelPathID: ChpidIntent] = [:]
                for row in try Self.rows(connection, "SELECT chpid, vary, configure FROM host_intent") {
                    guard let raw = row.column("chpid")?.integer, (0...0xffff).contains(raw) else {
                        throw StateStoreError("\(path): host_intent holds a row without a valid chpid")
                    }
                    let chpid = ChannelPathID(cssid: UInt8(raw >> 8), chpid: UInt8(raw & 0xff))
                    var intent = ChpidIntent()
                    if let vary = row.column("vary")?.integer {
                        guard vary == 0 || vary == 1 else {
                            throw StateStoreError("\(path): host_intent has vary \(vary) for chpid \(chpid)")
                        }
                        intent.vary = vary == 1 ? .online : .offline
                    }
                    if let configure = row.column("configure")?.integer {
                        guard let state = ConfigureState(rawValue: configure), state != .notRecognized else {
                            throw StateStoreError("\(path): host_intent has configure \(configure) for chpid \(chpid)")
                        }
                        intent.configure = state
                    }
                    if !intent.isEmpty { intents[chpid] = intent }
                }
                return intents
            }
        } catch let error as StateStoreError {
            throw error
        } catch {
            throw StateStoreError("\(path): the recorded intent cannot be read (\(error))")
        }
    }

    package func recordIntent(_ update: IntentUpdate) throws {
        do {
            try commitLock.withLock {
                guard !closed else { throw StateStoreError("\(path): the state store is closed") }
                try ensureIntentTable()
                let chpid = SQLiteData.integer(Int(update.chpid.rawValue))
                switch update {
                case .set(_, let vary, let configure):
                    // The fields given replace the recorded ones; the others stay (COALESCE).
                    _ = try Self.rows(
                        connection,
                        "INSERT INTO host_intent (chpid, vary, configure) VALUES (?, ?, ?) "
                            + "ON CONFLICT (chpid) DO UPDATE SET vary = COALESCE(excluded.vary, vary), "
                            + "configure = COALESCE(excluded.configure, configure)",
                        [
                            chpid, vary.map { .integer($0 == .online ? 1 : 0) } ?? .null,
                            configure.map { .integer($0.rawValue) } ?? .null,
                        ])
                case .clear:
                    _ = try Self.rows(connection, "DELETE FROM host_intent WHERE chpid = ?", [chpid])
                }
            }
        } catch let error as StateStoreError {
            throw error
        } catch {
            throw StateStoreError("cannot write \(path): \(error)")
        }
    }

    /// Under `commitLock`.
    private func ensureIntentTable() throws {
        _ = try Self.rows(
            connection,
            "CREATE TABLE IF NOT EXISTS host_intent (chpid INTEGER PRIMARY KEY, vary INTEGER, configure INTEGER)")
    }
}
