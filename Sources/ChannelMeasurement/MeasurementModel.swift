// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// The channel-measurement facility in the model: per chpid a CMG, a CMCB and a load, and
/// the counters that load drives, as a pure function of the model time passed in.
///
/// - The facility starts disabled, as after a Linux boot; enabling it needs the partition's
///   authorization (`authorized`; on a real machine the HMC's "Global performance data
///   control" or DPM's "Access global performance data"), which a topology may deny.
/// - The machine updates the entries every `updateInterval` (chpstat.8: "at model-dependent
///   intervals that typically last a few seconds"): a reading at time t shows the entries as
///   of the last update boundary, `floor(t / updateInterval) × updateInterval`, with the
///   24-bit timestamp of that boundary in 128 µs units.
/// - A load is set at time t and takes effect at the next update boundary, so that every
///   interval between two updates has one load and chpstat's formulas give it back. The
///   counters are kept exactly (as doubles, floored when read) and stored into the entries'
///   32-bit words, and 64-bit sums, truncated: they wrap as the hardware's do.
///
/// Time must not go backwards between calls (the server's monotonic clock, a scenario's own);
/// a reading at an earlier time shows the latest state. Costs O(counters) per reading.
package struct MeasurementModel: Hashable, Sendable {
    /// One chpid's measurement state.
    package struct Channel: Hashable, Sendable {
        /// Its group; nil: none (sysfs `unknown`).
        package var cmg: CMG?
        /// Its characteristics block (`measurement_chars_full`).
        package var cmcb: CMCB
        /// The load in force from `since` on.
        package internal(set) var load: ChannelLoad
        /// Counter values at `since`, by chpstat key.
        var base: [String: Double] = [:]
        var since: Duration = .zero
        /// The load set for the next update boundary.
        var pending: (from: Duration, load: ChannelLoad)?

        package init(cmg: CMG?, cmcb: CMCB, load: ChannelLoad = .idle) {
            self.cmg = cmg
            self.cmcb = cmcb
            self.load = load
        }

        /// The load in force at `time`.
        package func load(at time: Duration) -> ChannelLoad {
            if let pending, time >= pending.from { return pending.load }
            return load
        }

        package static func == (a: Channel, b: Channel) -> Bool {
            a.cmg == b.cmg && a.cmcb == b.cmcb && a.load == b.load && a.base == b.base && a.since == b.since
                && a.pending?.from == b.pending?.from && a.pending?.load == b.pending?.load
        }

        package func hash(into hasher: inout Hasher) {
            hasher.combine(cmg)
            hasher.combine(cmcb)
            hasher.combine(since)
        }
    }

    /// Whether the facility measures (`css0/cm_enable`); false at start.
    package internal(set) var enabled = false
    /// Whether the partition may enable the facility.
    package var authorized: Bool
    /// How often the machine updates the entries; a multiple of 128 µs.
    package let updateInterval: Duration
    package internal(set) var channels: [ChannelPathID: Channel]

    /// A facility over `channels`, disabled.
    /// - Parameters:
    ///   - authorized: whether enabling is allowed (default true).
    ///   - updateInterval: the entries' update period (default 2 s).
    package init(
        channels: [ChannelPathID: Channel], authorized: Bool = true, updateInterval: Duration = .seconds(2)
    ) {
        precondition(updateInterval > .zero, "the update interval must be positive")
        self.channels = channels
        self.authorized = authorized
        self.updateInterval = updateInterval
    }

    /// The facility for a subsystem's channel paths, each with the CMG its type usually has
    /// (`defaultCMG(forType:)`) unless `cmgs` names one (nil: none), and `defaultCMCB`.
    package init(
        subsystem: Subsystem, cmgs: [ChannelPathID: CMG?] = [:], loads: [ChannelPathID: ChannelLoad] = [:],
        authorized: Bool = true, updateInterval: Duration = .seconds(2)
    ) {
        var channels: [ChannelPathID: Channel] = [:]
        for path in subsystem.channelPaths {
            let cmg = cmgs[path.id] ?? Self.defaultCMG(forType: path.type)
            channels[path.id] = Channel(
                cmg: cmg, cmcb: Self.defaultCMCB(for: cmg, chpid: path.id.chpid, shared: path.shared),
                load: loads[path.id] ?? .idle)
        }
        self.init(channels: channels, authorized: authorized, updateInterval: updateInterval)
    }

    // MARK: - Commands

    /// Enables or disables the facility (`cm_enable`).
    /// - Throws: `MeasurementFacilityError.notAuthorized` when enabling without authorization.
    package mutating func setEnabled(_ on: Bool) throws(MeasurementFacilityError) {
        if on && !authorized { throw .notAuthorized }
        enabled = on
    }

    /// Sets `chpid`'s load from the next update boundary after `time` on.
    /// - Returns: the load, validated.
    /// - Throws: `MeasurementFacilityError.unknownChannelPath`, or `.load` for a key the CMG
    ///   cannot take, or a path without a CMG.
    @discardableResult
    package mutating func setLoad(_ chpid: ChannelPathID, _ metrics: [String: Double], at time: Duration)
        throws(MeasurementFacilityError) -> ChannelLoad
    {
        guard var channel = channels[chpid] else { throw .unknownChannelPath(chpid) }
        guard let cmg = channel.cmg else { throw .load(.noGroup) }
        let load: ChannelLoad
        do throws(ChannelLoadError) { load = try ChannelLoad(metrics, for: cmg) } catch { throw .load(error) }
        if let error = Self.tooFast(load, cmg: cmg, cmcb: channel.cmcb) { throw .load(error) }
        let now = boundary(atOrBefore: time)
        // Fold a pending load whose boundary has passed into the base.
        if let pending = channel.pending, pending.from <= now {
            channel.base = counts(channel, at: pending.from)
            channel.since = pending.from
            channel.load = pending.load
            channel.pending = nil
        }
        let from = now == time ? now : now + updateInterval
        if from == channel.since {
            channel.load = load
        } else {
            channel.pending = (from, load)
        }
        channels[chpid] = channel
        return load
    }

    /// The longest time between two readings of the model that the tracker is fed
    /// (`ModelBackend` reads every chpid at least this often while it is queried). A load is
    /// accepted only if none of its counters moves half its range (2^31; 2^63 for the 64-bit
    /// sums) in this time: the tracker takes one wrap at most between two samples, and a
    /// drop of less than half the range for a step back, so a faster counter would give a
    /// wrong rate. With the default characteristics it allows 10.7 million units per second
    /// (util_bus 214 %, read_total 44 GB/s).
    package static let trackingInterval: Duration = .seconds(200)

    /// Why `load` drives a counter of a path with `cmcb` too fast for the tracker to follow
    /// (`trackingInterval`); nil when it does not. Blames the first key, in chpstat's order,
    /// with which the counter becomes too fast.
    static func tooFast(_ load: ChannelLoad, cmg: CMG, cmcb: CMCB) -> ChannelLoadError? {
        let characteristics = CMGCharacteristics(cmg: cmg, cmcb: cmcb, full: true)
        let seconds = Self.seconds(trackingInterval)
        func fastest(_ load: ChannelLoad) -> (counter: CMGCounter, rate: Double, limit: Double)? {
            let rates = Self.rates(load, cmg: cmg, characteristics: characteristics)
            for counter in cmg.counters {
                let limit = Double(sign: .plus, exponent: counter.width - 1, significand: 1) / seconds
                if let rate = rates[counter.key], !(rate < limit) { return (counter, rate, limit) }
            }
            return nil
        }
        guard fastest(load) != nil else { return nil }
        var partial: [String: Double] = [:]
        for key in ChannelLoad.keys(for: cmg) where load.metrics[key] != nil {
            partial[key] = load.metrics[key]
            guard let prefix = try? ChannelLoad(partial, for: cmg), let (counter, rate, limit) = fastest(prefix)
            else { continue }
            return .tooFast(key, counter: counter.key, perSecond: rate, limit: limit)
        }
        return nil
    }

    // MARK: - Readings

    /// What the machine shows for `chpid` at `time`: the entries as of the last update, or the
    /// facility's state as the problem. Nil for an unknown chpid.
    package func reading(_ chpid: ChannelPathID, at time: Duration) -> ChannelMeasurementReading? {
        guard let channel = channels[chpid] else { return nil }
        var reading = ChannelMeasurementReading(
            chpid: chpid, cmg: channel.cmg.map { Int($0.rawValue) }, shared: channel.cmcb.shared,
            speedBPS: channel.cmcb.speedBPS == 0 ? nil : channel.cmcb.speedBPS)
        guard let cmg = channel.cmg else { return reading }
        guard enabled else {
            reading.problem = .facilityDisabled
            return reading
        }
        // As a Linux 6.10+ kernel: the ext_measurement file is there for every path.
        reading.extendedEntryFile = true
        if cmg.hasCharacteristics {
            reading.characteristics = channel.cmcb
            reading.fullCharacteristics = true
        }
        let at = boundary(atOrBefore: time)
        var sample = MeasurementSample(cue: CUE())
        // Word 0 (the timestamp) is valid, and each counter's word as it is stored.
        sample.cue.cuiv = 0x80
        sample.cue.timestamp = Self.ticks(at)
        let values = counts(channel, at: at)
        for counter in cmg.counters {
            counter.store(Self.wrapped(values[counter.key] ?? 0), in: &sample)
        }
        if cmg.hasExtendedEntry && sample.extendedCUE == nil { sample.extendedCUE = ExtendedCUE() }
        reading.sample = sample
        return reading
    }

    /// The exact counter values (not truncated to their width, but modulo 2^64) of `chpid` at
    /// `time`'s last update boundary; for tests that check the running totals against them.
    package func exactCounts(_ chpid: ChannelPathID, at time: Duration) -> [String: UInt64] {
        guard let channel = channels[chpid] else { return [:] }
        return counts(channel, at: boundary(atOrBefore: time)).mapValues(Self.wrapped)
    }

    /// A count as the hardware's 64 bits hold it: floored, modulo 2^64 (a count past 2^64,
    /// after years at an extreme load, wraps instead of trapping in the conversion).
    static func wrapped(_ count: Double) -> UInt64 {
        guard count.isFinite, count > 0 else { return 0 }
        let range = 18_446_744_073_709_551_616.0  // 2^64
        return UInt64(count < range ? count : count.truncatingRemainder(dividingBy: range))
    }

    /// The timestamp of `time`'s last update boundary in 128 µs units, not wrapped: the
    /// running total of the 24-bit timestamp since model time 0.
    package func timestampTicks(at time: Duration) -> UInt64 { Self.exactTicks(boundary(atOrBefore: time)) }

    /// `time` in 128 µs units (not wrapped).
    package static func exactTicks(_ time: Duration) -> UInt64 {
        let (seconds, attoseconds) = time.components
        let nanoseconds = UInt64(max(seconds, 0)) &* 1_000_000_000 &+ UInt64(max(attoseconds, 0) / 1_000_000_000)
        return nanoseconds / 128_000
    }

    /// The 24-bit timestamp of `time`: 128 µs units, wrapping at 2^24.
    package static func ticks(_ time: Duration) -> UInt32 {
        UInt32(truncatingIfNeeded: exactTicks(time) & 0xff_ffff)
    }

    private func boundary(atOrBefore time: Duration) -> Duration {
        guard time > .zero else { return .zero }
        return updateInterval * Int(time / updateInterval)
    }

    private func counts(_ channel: Channel, at time: Duration) -> [String: Double] {
        guard let cmg = channel.cmg else { return [:] }
        func advance(_ base: [String: Double], _ load: ChannelLoad, _ seconds: Double) -> [String: Double] {
            guard seconds > 0 else { return base }
            var values = base
            let rates = Self.rates(
                load, cmg: cmg, characteristics: CMGCharacteristics(cmg: cmg, cmcb: channel.cmcb, full: true))
            for (key, rate) in rates where rate > 0 {
                values[key, default: 0] += rate * seconds
            }
            return values
        }
        let at = max(time, channel.since)
        if let pending = channel.pending, at >= pending.from {
            let before = advance(channel.base, channel.load, Self.seconds(pending.from - channel.since))
            return advance(before, pending.load, Self.seconds(at - pending.from))
        }
        return advance(channel.base, channel.load, Self.seconds(at - channel.since))
    }

    private static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }

    /// Counter increments per second that make chpstat's formulas give `load` back.
    package static func rates(_ load: ChannelLoad, cmg: CMG, characteristics c: CMGCharacteristics)
        -> [String: Double]
    {
        let ticksPerSecond = 1 / CUE.secondsPerTick
        func per(_ value: Double, _ unit: UInt32) -> Double { unit == 0 ? 0 : value / Double(unit) }
        switch cmg {
        case .cmg1:
            return [
                "channel_path_busy_time_cpc": load["util_total"] / 100 * ticksPerSecond,
                "channel_path_busy_time": load["util_part"] / 100 * ticksPerSecond,
            ]
        case .cmg3:
            let dataSize = c.dataUnitSize != 0 ? c.dataUnitSize : 1
            let dataSizeCPC = c.dataUnitSizeCPC != 0 ? c.dataUnitSizeCPC : dataSize
            let msgSize = c.msgUnitSize != 0 ? c.msgUnitSize : 1
            let msgSizeCPC = c.msgUnitSizeCPC != 0 ? c.msgUnitSizeCPC : msgSize
            return [
                "data_units_sent_cpc": per(load["write_total"], dataSizeCPC),
                "data_units_sent": per(load["write_part"], dataSize),
                "msg_units_sent_cpc": per(load["msg_rate_total"], msgSizeCPC),
                "msg_units_sent": per(load["msg_rate_part"], msgSize),
                "unsuccessful_attempts_to_send": load["send_fail_part"],
                "unavailable_receive_buffers_cpc": load["rcv_fail_total"],
                "unavailable_receive_buffers": load["rcv_fail_part"],
            ]
        case .cmg2, .cmg4, .cmg5:
            var rates = [
                "channel_work_units_cpc": load["util_total"] / 100 * Double(c.maxChannelWorkUnits),
                "channel_work_units": load["util_part"] / 100 * Double(c.maxChannelWorkUnits),
                "bus_cycles_cpc": load["util_bus"] / 100 * Double(c.maxBusCycles),
                "data_units_read_cpc": per(load["read_total"], c.dataUnitSize),
                "data_units_read": per(load["read_part"], c.dataUnitSize),
                "data_units_written_cpc": per(load["write_total"], c.dataUnitSize),
                "data_units_written": per(load["write_part"], c.dataUnitSize),
            ]
            if cmg != .cmg4 {
                for family in ["ficon", "hpf"] {
                    rates["total_\(family)_ops_cpc"] = load["\(family)_rate"]
                    rates["sum_\(family)_ops_cpc"] = load["\(family)_rate"] * load["\(family)_active"]
                    rates["total_deferred_\(family)_ops_cpc"] = load["\(family)_defer"]
                }
            }
            if cmg != .cmg2 {
                let cores = Double(c.dpuNumCores)
                rates["dpu_exec_time_cpc"] = load["dpu_util"] / 100 * cores * ticksPerSecond
                rates["dpu_channel_exec_time_cpc"] = load["dpu_util_total"] / 100 * cores * ticksPerSecond
            }
            return rates
        }
    }

    // MARK: - Defaults

    /// The CMG a path of this descriptor type usually has: 2 for FICON (0x1a, 0x1b), 3 for
    /// coupling links (0x23-0x26), 1 for OSA (0x10, 0x11); none otherwise (virtio 0x32, as
    /// under KVM).
    package static func defaultCMG(forType type: UInt8) -> CMG? {
        switch type {
        case 0x1a, 0x1b: .cmg2
        case 0x23...0x26: .cmg3
        case 0x10, 0x11: .cmg1
        default: nil
        }
    }

    /// A plausible CMCB for `cmg`: every characteristic valid (CMCV 0x1f), 32 Gbit/s
    /// (CMGS 32, CMGP 9), and per CMG: 2, 4, 5: 5,000,000 bus cycles and 4,000,000 work units
    /// per second, 976,562 data units of 4096 bytes each way (4 DPU cores, DPU id 1 for CMG 4
    /// and 5); 3: data units of 256 bytes, message units of 64. Chosen so that no 32-bit
    /// counter wraps faster than every 7 minutes at 100 %.
    package static func defaultCMCB(for cmg: CMG?, chpid: UInt8, shared: Bool) -> CMCB {
        var cmcb = CMCB()
        cmcb.chpid = chpid
        cmcb.shared = shared
        guard let cmg else { return cmcb }
        cmcb.cmg = cmg.rawValue
        cmcb.extended = cmg.hasExtendedEntry
        cmcb.cmcv = 0x1f
        cmcb.cmgs = 32
        cmcb.cmgp = 9
        switch cmg {
        case .cmg1:
            cmcb.cmcv = 0
        case .cmg2:
            cmcb.data = [5_000_000, 4_000_000, 976_562, 976_562, 4096]
        case .cmg3:
            cmcb.data = [256, 256, 64, 64, 0]
        case .cmg4, .cmg5:
            cmcb.dpuID = 1
            cmcb.data = [5_000_000, 4_000_000, 976_562, 976_562, 4 << 24 | 4096]
        }
        return cmcb
    }
}

/// The model's facility refused a command.
package enum MeasurementFacilityError: ChannelMeasurementError, Equatable {
    /// Enabling needs the partition's authorization.
    case notAuthorized
    /// No channel path has this id.
    case unknownChannelPath(ChannelPathID)
    /// The load does not fit the path's CMG.
    case load(ChannelLoadError)

    package var description: String {
        switch self {
        case .notAuthorized:
            "the partition is not authorized to use the channel-measurement facility (grant it in the HMC activation "
                + "profile, Security: Global performance data control, then re-activate; DPM: Partition Details, "
                + "Controls: Access global performance data)"
        case .unknownChannelPath(let id): "channel path \(id) not found"
        case .load(let error): error.description
        }
    }
}
