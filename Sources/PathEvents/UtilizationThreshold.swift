// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// The chpstat utilization a subscription can watch (chpstat's metric keys, percent).
package enum UtilizationMetric: String, CaseIterable, Hashable, Sendable {
    /// The whole machine's use of the channel (all partitions): CMG 1, 2, 4, 5.
    case utilTotal = "util_total"
    /// This partition's use of the channel.
    case utilPart = "util_part"
    /// The channel's bus: CMG 2, 4, 5.
    case utilBus = "util_bus"
    /// The channel's data-processing unit: CMG 4, 5.
    case dpuUtil = "dpu_util"
}

/// A subscription's utilization threshold (`subscribe-path-events` `utilization`): tell when
/// a chpid's `metric` rises to `threshold` percent or more, and when it falls below
/// `threshold - hysteresis` again.
package struct UtilizationThreshold: Hashable, Sendable {
    package let metric: UtilizationMetric
    /// Percent, in (0, 1000] (chpstat's utilization can exceed 100 % briefly).
    package let threshold: Double
    /// Percentage points below `threshold` the value must fall to count as below again, in
    /// [0, threshold].
    package let hysteresis: Double

    /// - Throws: `UtilizationThresholdError` for a threshold or hysteresis out of range (or
    ///   not a number).
    package init(metric: UtilizationMetric, threshold: Double, hysteresis: Double) throws(UtilizationThresholdError) {
        guard threshold.isFinite, threshold > 0, threshold <= 1000 else { throw .threshold(threshold) }
        guard hysteresis.isFinite, hysteresis >= 0, hysteresis <= threshold else {
            throw .hysteresis(hysteresis, threshold: threshold)
        }
        self.metric = metric
        self.threshold = threshold
        self.hysteresis = hysteresis
    }
}

/// A threshold or hysteresis out of range; `description` says which and the range.
package enum UtilizationThresholdError: Error, Equatable, Sendable, CustomStringConvertible {
    case threshold(Double)
    case hysteresis(Double, threshold: Double)

    package var description: String {
        switch self {
        case .threshold(let value): "threshold \(value) is not a percentage in (0, 1000]"
        case .hysteresis(let value, let threshold):
            "hysteresis \(value) is not in [0, \(threshold)] (percentage points below the threshold)"
        }
    }
}

/// Which side of its threshold a chpid is on.
package enum UtilizationLevel: String, Hashable, Sendable {
    /// At or above the threshold.
    case above
    /// Below `threshold - hysteresis` (after having been above).
    case below
}

/// `CHANNEL_PATH_UTILIZATION`: a chpid's utilization crossed a subscription's threshold.
package struct ChannelUtilizationEvent: Hashable, Sendable {
    package let chpid: ChannelPathID
    package let metric: UtilizationMetric
    /// The value that crossed, percent (over the backend's last measurement interval).
    package let utilization: Double
    package let threshold: Double
    package let level: UtilizationLevel

    package init(
        chpid: ChannelPathID, metric: UtilizationMetric, utilization: Double, threshold: Double,
        level: UtilizationLevel
    ) {
        self.chpid = chpid
        self.metric = metric
        self.utilization = utilization
        self.threshold = threshold
        self.level = level
    }
}

/// One subscription's view of its chpids against its threshold: the hysteresis.
///
/// A chpid starts below. It goes above (an event) when a value is at or above the threshold,
/// and back below (an event) only when a value is below `threshold - hysteresis`: a value
/// that wanders around the threshold inside that band makes one event, not one per update.
/// A value that is not available (nil) changes nothing. Pure; O(1) per observation, memory
/// O(chpids seen above).
package struct UtilizationWatch: Hashable, Sendable {
    package let threshold: UtilizationThreshold
    private var above: Set<ChannelPathID> = []

    package init(_ threshold: UtilizationThreshold) {
        self.threshold = threshold
    }

    /// Takes `chpid`'s latest value (percent; nil: not available).
    /// - Returns: the level it crossed to, or nil when it stays where it was.
    package mutating func observe(_ chpid: ChannelPathID, _ value: Double?) -> UtilizationLevel? {
        guard let value, value.isFinite else { return nil }
        if above.contains(chpid) {
            guard value < threshold.threshold - threshold.hysteresis else { return nil }
            above.remove(chpid)
            return .below
        }
        guard value >= threshold.threshold else { return nil }
        above.insert(chpid)
        return .above
    }

    /// Forgets `chpid` (its path is gone, or its measurement stopped): it starts below again.
    package mutating func forget(_ chpid: ChannelPathID) {
        above.remove(chpid)
    }

    /// Whether `chpid` is above its threshold now.
    package func isAbove(_ chpid: ChannelPathID) -> Bool { above.contains(chpid) }

    /// The chpids above their threshold now.
    package var chpidsAbove: Set<ChannelPathID> { above }
}
