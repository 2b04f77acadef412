// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import ChannelMeasurement

/// One of chpstat's key-value pairs (`struct cmg_pair_t`) as the view prints it.
struct ChpstatPair: Equatable {
    typealias Value = MeasurementValue.Number
    typealias Unit = MeasurementValue.Unit

    let key: String
    let group: KeyGroups
    /// nil: not available (chpstat's invalid pair).
    let value: Value?
    let unit: Unit
}

/// chpstat's CMG registry (`cmg1.c` ... `cmg5.c`) on top of the ChannelMeasurement target, which
/// has the layouts, the key names in chpstat's order and the formulas.
enum ChpstatCMG {
    /// The CMGs chpstat knows, in its registry order (which orders keys and --cmg columns).
    static let supported = CMG.allCases.map { Int($0.rawValue) }

    /// Whether chpstat reads the characteristics of `cmg` (all but CMG 1).
    static func hasCharacteristics(_ cmg: Int) -> Bool { group(cmg)?.hasCharacteristics ?? false }

    /// The keys `cmg` has in `group`, in chpstat's order.
    static func keys(cmg: Int, group: KeyGroups) -> [String] {
        guard let measurementGroup = self.group(cmg) else { return [] }
        switch group {
        case .characteristics:
            return CMGCharacteristics(cmg: measurementGroup, cmcb: CMCB(), full: true).values.map(\.key)
        case .utilization:
            return measurementGroup.utilization(of: MeasurementSample(cue: CUE())).map(\.key)
        case .metrics:
            return MeasurementFormulas.keys(measurementGroup)
        default:
            return []
        }
    }

    /// `pr_chars`: the characteristics group.
    static func characteristics(_ state: PathState) -> [ChpstatPair] {
        guard let cmg = group(state.cmg) else { return [] }
        return pairs(characteristics(of: state, cmg).values, .characteristics)
    }

    /// `pr_cue`, `pr_ext_cue`: the newer entries' timestamp and counters.
    static func utilization(_ state: PathState) -> [ChpstatPair] {
        guard let cmg = group(state.cmg) else { return [] }
        return pairs(cmg.utilization(of: sample(state.newer)), .utilization)
    }

    /// `update_metrics`: the metrics between the older and the newer entries.
    ///
    /// A value chpstat computes as infinite or NaN (it divides `util_data` by
    /// `max_read_data_units` / `max_write_data_units` without checking for 0, and prints `inf`
    /// or `nan`, which JSON does not have) is not available here.
    static func metrics(_ state: PathState) -> [ChpstatPair] {
        guard let cmg = group(state.cmg) else { return [] }
        let values = MeasurementFormulas.chpstat(
            cmg, characteristics: characteristics(of: state, cmg), from: sample(state.older), to: sample(state.newer))
        return pairs(values, .metrics).map { pair in
            if case .double(let number) = pair.value, !number.isFinite {
                return ChpstatPair(key: pair.key, group: pair.group, value: nil, unit: pair.unit)
            }
            return pair
        }
    }

    private static func group(_ cmg: Int) -> CMG? { try? CMG(checking: cmg) }

    private static func characteristics(of state: PathState, _ cmg: CMG) -> CMGCharacteristics {
        let cmcb = (try? CMCB(bytes: state.characteristics.cmcb)) ?? CMCB()
        return CMGCharacteristics(cmg: cmg, cmcb: cmcb, full: state.characteristics.full)
    }

    private static func sample(_ entries: ChpstatEntries) -> MeasurementSample {
        MeasurementSample(
            cue: (try? CUE(bytes: entries.cue)) ?? CUE(),
            extendedCUE: entries.extendedCUE.flatMap { try? ExtendedCUE(bytes: $0) })
    }

    private static func pairs(_ values: [MeasurementValue], _ group: KeyGroups) -> [ChpstatPair] {
        values.map { ChpstatPair(key: $0.key, group: group, value: $0.value, unit: $0.unit) }
    }
}
