// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

#if canImport(Glibc)
import Glibc
#endif

/// Nanoseconds on the monotonic clock (never jumps with the wall clock).
@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// Summary of a set of latencies, in nanoseconds. Percentiles are nearest-rank.
struct LatencyStats {
    let count: Int
    let mean: Double
    let p50: UInt64
    let p90: UInt64
    let p99: UInt64
    let max: UInt64

    /// Sorts `samples` in place (the caller's buffer is reused rather than copied).
    init(sorting samples: inout [UInt64]) {
        samples.sort()
        count = samples.count
        guard !samples.isEmpty else {
            mean = 0
            p50 = 0
            p90 = 0
            p99 = 0
            max = 0
            return
        }
        var sum: Double = 0
        for sample in samples { sum += Double(sample) }
        mean = sum / Double(samples.count)
        func percentile(_ p: Double) -> UInt64 {
            let rank = Int((p * Double(samples.count)).rounded(.up))
            return samples[Swift.min(Swift.max(rank, 1), samples.count) - 1]
        }
        p50 = percentile(0.50)
        p90 = percentile(0.90)
        p99 = percentile(0.99)
        max = samples[samples.count - 1]
    }
}

/// `value` with a fixed number of decimals (no Foundation needed for String(format:)).
func fixed(_ value: Double, _ decimals: Int) -> String {
    guard value.isFinite else { return value.isNaN ? "nan" : (value < 0 ? "-inf" : "inf") }
    var scale: Double = 1
    for _ in 0..<decimals { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    guard scaled < 9e18 else { return String(value) }
    let units = UInt64(scaled)
    let whole = units / UInt64(scale)
    var text = (value < 0 && units != 0 ? "-" : "") + String(whole)
    if decimals > 0 {
        let fraction = String(units % UInt64(scale))
        text += "." + String(repeating: "0", count: decimals - fraction.count) + fraction
    }
    return text
}

/// Nanoseconds shown as microseconds with one decimal.
func microseconds(_ nanoseconds: UInt64) -> String { fixed(Double(nanoseconds) / 1000, 1) }
func microseconds(_ nanoseconds: Double) -> String { fixed(nanoseconds / 1000, 1) }
