// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// The load the model puts on a channel path: the metrics chpstat should show for it, by
/// chpstat's metric keys and units (`util_part` 40 means 40 %, `read_total` bytes per second,
/// `ficon_rate` operations per second). The model advances the path's counters so that, over
/// any interval, chpstat's formulas give these values back (up to the counters' integer
/// rounding). Values are 0 to `maximumValue`, and the model refuses a load that drives a
/// counter faster than its tracker can follow (`ChannelLoadError.tooFast`). Keys a CMG does not have, and derived metrics (`interval`, `util_data`,
/// `msg_size_*`, `dpu_util_part`), are refused; keys not given are 0.
///
/// | CMG | keys |
/// |---|---|
/// | 1 | util_total, util_part |
/// | 2 | util_total, util_part, util_bus, read_total, read_part, write_total, write_part, ficon_rate, ficon_active, ficon_defer, hpf_rate, hpf_active, hpf_defer |
/// | 3 | write_total, write_part, msg_rate_total, msg_rate_part, send_fail_part, rcv_fail_total, rcv_fail_part |
/// | 4 | CMG 2's without ficon_* and hpf_*, plus dpu_util, dpu_util_total |
/// | 5 | CMG 2's plus dpu_util, dpu_util_total |
package struct ChannelLoad: Hashable, Sendable, CustomStringConvertible {
    /// The metrics, by chpstat key; every value finite and not negative.
    package private(set) var metrics: [String: Double]
    /// The CMG the load was checked for; nil for `idle`, which fits any.
    package private(set) var cmg: CMG?

    /// No load: every counter stands still.
    package static let idle = ChannelLoad()
    /// The largest value a key takes (10^15: a petabyte per second, or a quadrillion
    /// operations): beyond it the doubles that keep the counts would lose whole units within
    /// seconds.
    package static let maximumValue = 1e15

    package init() { metrics = [:] }

    /// A load for `cmg`.
    /// - Throws: `ChannelLoadError` naming a key the CMG cannot be driven by, or a value that
    ///   is negative or not finite.
    package init(_ metrics: [String: Double], for cmg: CMG) throws(ChannelLoadError) {
        let keys = Self.keys(for: cmg)
        for (key, value) in metrics.sorted(by: { $0.key < $1.key }) {
            guard keys.contains(key) else { throw .unknownKey(key, cmg: cmg, known: keys) }
            guard value.isFinite, value >= 0, value <= Self.maximumValue else { throw .badValue(key, value) }
        }
        self.metrics = metrics
        self.cmg = cmg
    }

    /// The metric `key`; 0 when not given.
    package subscript(key: String) -> Double { metrics[key] ?? 0 }

    /// The keys a load for `cmg` may set, in chpstat's order.
    package static func keys(for cmg: CMG) -> [String] {
        let work = ["util_total", "util_part", "util_bus", "read_total", "read_part", "write_total", "write_part"]
        let ficon = ["ficon_rate", "ficon_active", "ficon_defer", "hpf_rate", "hpf_active", "hpf_defer"]
        let dpu = ["dpu_util", "dpu_util_total"]
        switch cmg {
        case .cmg1: return ["util_total", "util_part"]
        case .cmg2: return work + ficon
        case .cmg3:
            return [
                "write_total", "write_part", "msg_rate_total", "msg_rate_part", "send_fail_part", "rcv_fail_total",
                "rcv_fail_part",
            ]
        case .cmg4: return work + dpu
        case .cmg5: return work + ficon + dpu
        }
    }

    /// `key=value` pairs in key order.
    package var description: String {
        metrics.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }
}

/// A load that the chpid's CMG cannot take.
package enum ChannelLoadError: ChannelMeasurementError, Equatable {
    /// `key` is not a metric the CMG's counters can be driven by.
    case unknownKey(String, cmg: CMG, known: [String])
    /// A value that is negative or not finite.
    case badValue(String, Double)
    /// The chpid has no CMG (or a CMG the model does not drive).
    case noGroup
    /// With the path's characteristics, `key` makes `counter` advance `perSecond` units a
    /// second, at or past `limit`: faster than the tracker can follow
    /// (`MeasurementModel.trackingInterval`).
    case tooFast(String, counter: String, perSecond: Double, limit: Double)

    package var description: String {
        switch self {
        case .unknownKey(let key, let cmg, let known):
            "load key '\(key)' is not one CMG \(cmg) can be driven by (expected one of \(known.joined(separator: ", ")))"
        case .badValue(let key, let value):
            "load key '\(key)' must be a number from 0 to 1e15, got \(value)"
        case .noGroup: "the channel path has no channel-measurement group to load"
        case .tooFast(let key, let counter, let rate, let limit):
            "load key '\(key)' makes counter \(counter) advance \(rate) units per second with this path's "
                + "characteristics; at most \(limit.rounded(.down)) per second can be measured (the counter "
                + "may move at most half its range between two readings, which are up to "
                + "\(MeasurementModel.trackingInterval) apart)"
        }
    }
}
