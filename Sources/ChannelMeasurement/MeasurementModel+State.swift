// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// The facility as `--state-dir` keeps it (issue 21): what the commands set (`enabled`, each
/// chpid's load, the load waiting for the next update boundary) and where each chpid's
/// counters stand (their exact values at the time the load took effect), with the CMG each
/// chpid had, in model time. Restored onto the same topology's facility, it gives the same
/// counters at every model time: with a model clock that continues from the saved time, no
/// counter (32-bit word or 64-bit total) goes backwards across a restart.
///
/// Layout (big-endian, `StateWriter`): version 1; the model time (seconds, attoseconds, two
/// Int64); enabled (a flag); a UInt32 count of chpids, each: chpid (UInt16), CMG (0 none),
/// the load (its CMG, 0 for `idle`; its metrics), `since` (two Int64), the counts at `since`,
/// and the pending load (a flag, then its boundary and load). Metrics and counts are a UInt16
/// count of (key, Double bits) pairs in key order. About 40 bytes per chpid plus 20 per
/// metric or count.
extension MeasurementModel {
    /// The format version written first.
    static let stateVersion: UInt8 = 1

    /// The facility's state at model time `time` (the time the state dir records with it).
    /// Costs O(chpids × counters).
    package func savedState(at time: Duration) -> [UInt8] {
        var writer = StateWriter(capacity: 32 + channels.count * 64)
        writer.put(Self.stateVersion)
        Self.put(time, &writer)
        writer.put(enabled)
        writer.put(UInt32(channels.count))
        for (id, channel) in channels.sorted(by: { $0.key < $1.key }) {
            writer.put(UInt16(id.cssid) << 8 | UInt16(id.chpid))
            writer.put(channel.cmg?.rawValue ?? 0)
            Self.put(channel.load, &writer)
            Self.put(channel.since, &writer)
            Self.put(channel.base, &writer)
            writer.put(channel.pending != nil)
            if let pending = channel.pending {
                Self.put(pending.from, &writer)
                Self.put(pending.load, &writer)
            }
        }
        return writer.bytes
    }

    /// Takes the state `savedState(at:)` wrote onto this facility (the topology's, with its
    /// characteristics and authorization): enabled, each saved chpid's load and counts.
    /// - Returns: the model time it was saved at.
    /// - Throws: `StateCodingError` for bytes that are corrupt, of another version, or of
    ///   another topology (a chpid this facility lacks, or with another CMG); the facility is
    ///   then left as it was.
    @discardableResult
    package mutating func restoreState(_ bytes: [UInt8]) throws(StateCodingError) -> Duration {
        var reader = StateReader(bytes)
        let version: UInt8 = try reader.get()
        guard version == Self.stateVersion else {
            throw StateCodingError("channel-measurement state version \(version), not \(Self.stateVersion)")
        }
        let time = try Self.duration(&reader)
        var restored = self
        restored.enabled = try reader.flag()
        for _ in 0..<(try reader.count(each: 20)) {
            let id = try reader.channelPathID()
            guard var channel = restored.channels[id] else {
                throw StateCodingError("it measures channel path \(id), which this topology lacks")
            }
            let cmgValue: UInt8 = try reader.get()
            guard cmgValue == (channel.cmg?.rawValue ?? 0) else {
                throw StateCodingError(
                    "channel path \(id) had CMG \(cmgValue), this topology gives it \(channel.cmg?.rawValue ?? 0)")
            }
            channel.load = try Self.load(&reader)
            channel.since = try Self.duration(&reader)
            channel.base = try Self.values(&reader)
            channel.pending = nil
            if try reader.flag() {
                let from = try Self.duration(&reader)
                channel.pending = (from, try Self.load(&reader))
            }
            restored.channels[id] = channel
        }
        guard reader.isAtEnd else { throw StateCodingError("\(bytes.count - reader.offset) bytes after the state") }
        self = restored
        return time
    }

    private static func put(_ time: Duration, _ writer: inout StateWriter) {
        writer.put(time.components.seconds)
        writer.put(time.components.attoseconds)
    }

    private static func duration(_ reader: inout StateReader) throws(StateCodingError) -> Duration {
        let seconds: Int64 = try reader.get()
        let attoseconds: Int64 = try reader.get()
        return Duration(secondsComponent: seconds, attosecondsComponent: attoseconds)
    }

    private static func put(_ values: [String: Double], _ writer: inout StateWriter) {
        writer.put(UInt16(values.count))
        for (key, value) in values.sorted(by: { $0.key < $1.key }) {
            writer.put(key)
            writer.put(value.bitPattern)
        }
    }

    private static func values(_ reader: inout StateReader) throws(StateCodingError) -> [String: Double] {
        var values: [String: Double] = [:]
        for _ in 0..<Int(try reader.get(UInt16.self)) {
            let key = try reader.string()
            values[key] = Double(bitPattern: try reader.get())
        }
        return values
    }

    private static func put(_ load: ChannelLoad, _ writer: inout StateWriter) {
        writer.put(load.cmg?.rawValue ?? 0)
        put(load.metrics, &writer)
    }

    /// A load as `put` wrote it, checked again (a value out of range is corrupt).
    private static func load(_ reader: inout StateReader) throws(StateCodingError) -> ChannelLoad {
        let cmgValue: UInt8 = try reader.get()
        let metrics = try values(&reader)
        guard cmgValue != 0 else {
            guard metrics.isEmpty else { throw StateCodingError("an idle load with metrics") }
            return .idle
        }
        guard let cmg = CMG(rawValue: cmgValue) else { throw StateCodingError("a load for CMG \(cmgValue)") }
        do throws(ChannelLoadError) {
            return try ChannelLoad(metrics, for: cmg)
        } catch {
            throw StateCodingError("a load that is not valid: \(error)")
        }
    }
}
