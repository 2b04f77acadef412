// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// Successive readings per chpid turned into what the query and the metrics report: 64-bit
/// running totals across the 32-bit (and 24-bit timestamp) wraps, chpstat's metrics over the
/// last interval, or why they are not available.
///
/// A reading counts as a new sample only when its CUE timestamp differs from the last one's
/// (chpstat `cue_modified`). Between two samples each 32-bit counter's delta is taken modulo
/// 2^32 (one wrap at most), as chpstat does, except that a drop by less than half the range
/// (2^31; 2^63 for the extended CUE's 64-bit sums) is a counter that went backwards, not a wrap: the interval then has no metrics, the
/// totals do not move, and the new value is the next baseline. So the totals are exact as long
/// as the chpid is read more often than its fastest counter wraps and at most every 2140 s
/// (the 24-bit timestamp wraps after 2147 s); a reading further apart (by the caller's clock)
/// yields no metrics, and its deltas are counted as one wrap at most.
///
/// Pure: the caller passes its monotonic time in seconds with each reading. Costs O(counters)
/// per reading, memory O(chpids).
package struct MeasurementTracker: Sendable {
    /// The key under which `record`'s `advances` and `exact` give the CUE timestamp's, in
    /// 128 µs ticks (the model's time since its start, not wrapped at 24 bits).
    package static let timestampKey = "timestamp"

    /// chpstat's `MAX_INTERVAL`: the longest interval the 24-bit timestamp can tell.
    package static let maximumInterval = 2140.0

    private struct Channel: Sendable {
        var reading: ChannelMeasurementReading
        /// The last sample, and when (caller's seconds) it was taken.
        var last: (sample: MeasurementSample, time: Double)?
        /// The sample before it, for the metrics.
        var previous: MeasurementSample?
        var totals: [String: UInt64] = [:]
        /// The CUE timestamp's running total in 128 µs ticks, across the 24-bit wraps.
        var ticks: UInt64?
        var metrics: [MeasurementValue]?
        var problem: MeasurementProblem?
        var samples = 0
    }

    private var channels: [ChannelPathID: Channel] = [:]

    package init() {}

    /// The chpids tracked, in order.
    package var chpids: [ChannelPathID] { channels.keys.sorted() }

    /// Takes a reading made at `time` (the caller's monotonic clock, in seconds).
    /// - Parameter known: each counter's exact advance since the last sample, by chpstat key,
    ///   when the caller knows it (the model, which can tell its counts at any time, after a
    ///   gap longer than it feeds in steps): taken instead of the delta modulo the counter's
    ///   width, so the totals keep every wrap. Nil: the hardware's case, one wrap at most.
    /// - Parameter known: under `timestampKey`, the timestamp's exact advance in ticks.
    /// - Parameter exact: each counter's exact count (modulo 2^64), when the caller knows it
    ///   (the model): a total that starts takes it instead of the counter's value, so that the
    ///   totals are the model's counts, which continue across a restart (`--state-dir`) where
    ///   the 32-bit words alone would make them start again below what was served.
    package mutating func record(
        _ reading: ChannelMeasurementReading, at time: Double, advances known: [String: UInt64]? = nil,
        exact: [String: UInt64]? = nil
    ) {
        var channel = channels[reading.chpid] ?? Channel(reading: reading)
        // A new group (or none) means other counters: start again.
        if channel.reading.cmg != reading.cmg {
            channel = Channel(reading: reading)
        }
        channel.reading = reading
        defer { channels[reading.chpid] = channel }

        guard let cmgValue = reading.cmg else {
            channel.problem = .noGroup
            channel.last = nil
            return
        }
        guard let cmg = cmgValue >= 1 && cmgValue <= 5 ? CMG(rawValue: UInt8(cmgValue)) : nil else {
            channel.problem = .unknownGroup(cmgValue)
            channel.last = nil
            return
        }
        if let problem = reading.problem {
            channel.problem = problem
            channel.metrics = nil
            if problem.breaksBaseline { channel.last = nil }
            return
        }
        guard let sample = reading.sample else {
            channel.problem = .missing(file: "measurement", detail: "no sample was read")
            channel.metrics = nil
            return
        }
        guard let (last, lastTime) = channel.last else {
            // The first sample: the totals start at the counters' values (or exact counts).
            for counter in cmg.counters {
                if let value = counter.value(in: sample), channel.totals[counter.key] == nil {
                    channel.totals[counter.key] = exact?[counter.key] ?? value
                }
            }
            if channel.ticks == nil { channel.ticks = exact?[Self.timestampKey] ?? UInt64(sample.cue.timestamp) }
            channel.last = (sample, time)
            channel.previous = nil
            channel.metrics = nil
            channel.problem = .firstSample
            channel.samples += 1
            return
        }
        if sample.cue.timestamp == last.cue.timestamp {
            // chpstat: no new data. Counters that moved without the timestamp are inconsistent.
            if sample != last {
                channel.problem = .timestampDidNotMove
                channel.metrics = nil
            }
            return
        }
        channel.samples += 1
        channel.last = (sample, time)
        channel.previous = last
        channel.ticks =
            (channel.ticks ?? 0)
            &+ (known?[Self.timestampKey]
                ?? UInt64(MeasurementFormulas.delta(last.cue.timestamp, sample.cue.timestamp, width: 24)))
        // Deltas first: a counter that went backwards spoils the whole interval.
        var deltas: [(String, UInt64)] = []
        for counter in cmg.counters {
            guard let current = counter.value(in: sample) else { continue }
            guard let before = counter.value(in: last) else {
                // Valid again after a gap: count from here.
                if channel.totals[counter.key] == nil { channel.totals[counter.key] = exact?[counter.key] ?? current }
                continue
            }
            if let advance = known?[counter.key] {
                deltas.append((counter.key, advance))
                continue
            }
            // Serial-number arithmetic (RFC 1982): a drop by less than half the range is a
            // step back; a larger one is a wrap.
            if current < before, before - current < UInt64(1) << UInt64(counter.width - 1) {
                channel.problem = .counterWentBackwards(key: counter.key, last: before, current: current)
                channel.metrics = nil
                return
            }
            let delta =
                counter.width == 32
                ? UInt64(
                    MeasurementFormulas.delta(
                        UInt32(truncatingIfNeeded: before), UInt32(truncatingIfNeeded: current), width: 32))
                : MeasurementFormulas.delta64(before, current)
            deltas.append((counter.key, delta))
        }
        for (key, delta) in deltas {
            channel.totals[key, default: 0] &+= delta
        }
        let elapsed = time - lastTime
        if elapsed > Self.maximumInterval {
            channel.problem = .intervalTooLong(seconds: elapsed)
            channel.metrics = nil
            return
        }
        guard let cmcb = reading.characteristics ?? (cmg.hasCharacteristics ? nil : CMCB()) else {
            // chpstat stops without the CMCB; a rate from zero unit sizes would be wrong. The
            // totals above count units, which need no characteristics.
            channel.problem = .missing(
                file: "measurement_chars", detail: "CMG \(cmg) needs the characteristics for its metrics")
            channel.metrics = nil
            return
        }
        let characteristics = CMGCharacteristics(cmg: cmg, cmcb: cmcb, full: reading.fullCharacteristics)
        channel.metrics = MeasurementFormulas.chpstat(cmg, characteristics: characteristics, from: last, to: sample)
            .map { value in
                // chpstat prints inf and nan (a zero maximum); a rate that is not a number is
                // not available.
                if case .double(let number) = value.value, !number.isFinite {
                    return MeasurementValue(value.key, nil, unit: value.unit)
                }
                return value
            }
        channel.problem = nil
    }

    /// Stops tracking `chpid` (its path is gone).
    package mutating func remove(_ chpid: ChannelPathID) {
        channels[chpid] = nil
    }

    /// What the query reports for `chpid`; nil when it was never read.
    package func report(_ chpid: ChannelPathID) -> ChannelMeasurementReport? {
        guard let channel = channels[chpid] else { return nil }
        let reading = channel.reading
        var report = ChannelMeasurementReport(
            chpid: chpid, cmgValue: reading.cmg, shared: reading.shared, speedBPS: reading.speedBPS,
            problem: channel.problem, samples: channel.samples)
        report.extendedEntryFile = reading.extendedEntryFile
        report.timestampTicks = channel.ticks
        guard let cmg = report.cmg else { return report }
        if cmg.hasCharacteristics, let cmcb = reading.characteristics {
            report.characteristics = CMGCharacteristics(cmg: cmg, cmcb: cmcb, full: reading.fullCharacteristics)
        }
        report.lastSample = channel.last?.sample
        report.utilization = channel.last.map { cmg.utilization(of: $0.sample) } ?? []
        report.totals = cmg.counters.map { CounterTotal(key: $0.key, total: channel.totals[$0.key]) }
        report.metrics = channel.metrics
        return report
    }

    /// Every tracked chpid's report, in chpid order.
    package var reports: [ChannelMeasurementReport] { chpids.compactMap { report($0) } }
}

extension MeasurementTracker {
    /// Whether every total of `chpid`'s counters has started (a first sample was taken since
    /// its group last changed); the model passes its exact counts until then.
    package func isCounting(_ chpid: ChannelPathID) -> Bool {
        guard let channel = channels[chpid], let cmg = channel.reading.cmg.flatMap({ UInt8(exactly: $0) }),
            let group = CMG(rawValue: cmg)
        else { return false }
        return group.counters.allSatisfy { channel.totals[$0.key] != nil }
    }
}
