// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// What a backend read for one chpid at one time: the path's group and characteristics and
/// one consistent sample of its entries, or why there is none. The linux-sysfs backend fills
/// it from `chp0.XX/{cmg,shared,speed_bps,measurement_chars_full|measurement_chars,
/// measurement,ext_measurement}`; the model from its own state.
package struct ChannelMeasurementReading: Hashable, Sendable {
    package var chpid: ChannelPathID
    /// The group as read: nil for `unknown`; a number outside 1-5 stays as read (and is a
    /// problem).
    package var cmg: Int?
    /// sysfs `shared`; nil when unknown.
    package var shared: Bool?
    /// sysfs `speed_bps` in bit/s; nil when unknown (the file is missing or reads `0`).
    package var speedBPS: UInt64?
    /// The CMCB, full or from the older 20-byte view (`fullCharacteristics`); nil for CMG 1
    /// and when it could not be read.
    package var characteristics: CMCB?
    /// Whether `characteristics` came from `measurement_chars_full` (32 bytes).
    package var fullCharacteristics: Bool
    /// The entries, read consistently; nil when `problem` says why not.
    package var sample: MeasurementSample?
    /// Why there is no sample (or why it cannot be used); nil when all is well.
    package var problem: MeasurementProblem?
    /// Whether the source has the extended entry at all (sysfs `ext_measurement` exists:
    /// Linux 6.10+; the model: true), whatever the CMG; nil when not known (not read).
    /// chpstat warns once when the file is missing.
    package var extendedEntryFile: Bool?

    package init(
        chpid: ChannelPathID, cmg: Int?, shared: Bool? = nil, speedBPS: UInt64? = nil, characteristics: CMCB? = nil,
        fullCharacteristics: Bool = false, sample: MeasurementSample? = nil, problem: MeasurementProblem? = nil
    ) {
        self.chpid = chpid
        self.cmg = cmg
        self.shared = shared
        self.speedBPS = speedBPS
        self.characteristics = characteristics
        self.fullCharacteristics = fullCharacteristics
        self.sample = sample
        self.problem = problem
    }
}

/// One counter's 64-bit running total (`CMGCounter`): the first value read, plus every delta
/// since, across the hardware's 32-bit wraps. It never decreases: Prometheus' `_total`.
package struct CounterTotal: Hashable, Sendable {
    /// chpstat's key, e.g. `data_units_read_cpc`.
    package let key: String
    /// The total; nil while the counter has never been valid.
    package let total: UInt64?

    package init(key: String, total: UInt64?) {
        self.key = key
        self.total = total
    }
}

/// A chpid's measurements as the query reports them: identity, characteristics, the last raw
/// blocks, chpstat's utilization group (the last entry's raw values), 64-bit running totals,
/// and chpstat's metrics over the last interval, or why they are not available.
package struct ChannelMeasurementReport: Hashable, Sendable {
    package var chpid: ChannelPathID
    /// The group as read (see `ChannelMeasurementReading.cmg`).
    package var cmgValue: Int?
    /// The group, when it is one of 1-5.
    package var cmg: CMG? { cmgValue.flatMap { $0 >= 1 && $0 <= 5 ? CMG(rawValue: UInt8($0)) : nil } }
    package var shared: Bool?
    /// bit/s; nil when unknown.
    package var speedBPS: UInt64?
    /// The characteristics decoded for the group; nil for CMG 1, without a group, or unread.
    package var characteristics: CMGCharacteristics?
    /// The last sample taken (raw blocks as read); nil before the first.
    package var lastSample: MeasurementSample?
    /// chpstat's `utilization` group from `lastSample`: `timestamp`, then each counter's raw
    /// value (nil when invalid), in chpstat's order.
    package var utilization: [MeasurementValue]
    /// Each counter's running total, in chpstat's order; empty without a group.
    package var totals: [CounterTotal]
    /// chpstat's `metrics` group over the last interval (values chpstat would print as `inf`
    /// or `nan` are nil here); nil when there is no usable interval (`problem` says why).
    package var metrics: [MeasurementValue]?
    /// Why the measurements or the metrics are not available; nil when they are.
    package var problem: MeasurementProblem?
    /// Samples taken so far (each with a new timestamp).
    package var samples: Int
    /// The last reading's `ChannelMeasurementReading.extendedEntryFile`.
    package var extendedEntryFile: Bool?
    /// The CUE timestamp's running total in 128 µs ticks since the first sample (its value
    /// then, or the model's exact time), across the 24-bit wraps: the clock the metrics'
    /// rates divide by. Nil before the first sample.
    package var timestampTicks: UInt64?

    package init(
        chpid: ChannelPathID, cmgValue: Int? = nil, shared: Bool? = nil, speedBPS: UInt64? = nil,
        characteristics: CMGCharacteristics? = nil, lastSample: MeasurementSample? = nil,
        utilization: [MeasurementValue] = [], totals: [CounterTotal] = [], metrics: [MeasurementValue]? = nil,
        problem: MeasurementProblem? = nil, samples: Int = 0
    ) {
        self.chpid = chpid
        self.cmgValue = cmgValue
        self.shared = shared
        self.speedBPS = speedBPS
        self.characteristics = characteristics
        self.lastSample = lastSample
        self.utilization = utilization
        self.totals = totals
        self.metrics = metrics
        self.problem = problem
        self.samples = samples
    }
}

extension CMG {
    /// chpstat's `utilization` group of `sample` (`pr_cue`, `pr_ext_cue`): the timestamp, the
    /// CUE's counters (nil where the CUIV marks them invalid), the extended CUE's (nil without
    /// one).
    package func utilization(of sample: MeasurementSample) -> [MeasurementValue] {
        var values = [MeasurementValue("timestamp", .u32(sample.cue.timestamp))]
        for counter in counters {
            let value = counter.value(in: sample)
            values.append(
                MeasurementValue(
                    counter.key,
                    value.map { counter.width == 64 ? .u64($0) : .u32(UInt32(truncatingIfNeeded: $0)) }))
        }
        return values
    }
}
