// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

@testable import ChannelMeasurement

/// Builds samples by chpstat key, so that each test states only the counters it is about.
enum Samples {
    /// A sample of `cmg` at `timestamp` with `counters` (by chpstat key) valid and set; with an
    /// extended CUE when `extended` (CMG 2, 4, 5).
    static func make(
        _ cmg: CMG, timestamp: UInt32, _ counters: [String: UInt64], extended: Bool = true
    ) -> MeasurementSample {
        var sample = MeasurementSample(cue: CUE())
        sample.cue.cuiv = 0x80
        sample.cue.timestamp = timestamp
        if extended && cmg.hasExtendedEntry { sample.extendedCUE = ExtendedCUE() }
        for (key, value) in counters {
            guard let counter = cmg.counter(key) else { fatalError("CMG \(cmg) has no \(key)") }
            if case .entry = counter.location {} else if !extended { continue }
            counter.store(value, in: &sample)
        }
        // Every CUE counter valid unless a test clears it.
        sample.cue.cuiv = 0xff
        return sample
    }

    /// A CMCB with `cmg` and words 3-7.
    static func cmcb(_ cmg: CMG, _ data: [UInt32]) -> CMCB {
        var cmcb = CMCB()
        cmcb.cmg = cmg.rawValue
        cmcb.cmcv = 0x1f
        cmcb.data = data
        return cmcb
    }

    static func characteristics(_ cmg: CMG, _ data: [UInt32]) -> CMGCharacteristics {
        CMGCharacteristics(cmg: cmg, cmcb: cmcb(cmg, data), full: true)
    }
}

extension Array where Element == MeasurementValue {
    /// The value under `key` as a double; nil when not available or absent.
    func double(_ key: String) -> Double? { self[key]?.doubleValue }
}

/// `a` and `b` agree to 12 significant digits (hand-computed decimals against binary doubles).
func close(_ a: Double?, _ b: Double) -> Bool {
    guard let a else { return false }
    return abs(a - b) <= 1e-12 * max(abs(b), 1)
}
