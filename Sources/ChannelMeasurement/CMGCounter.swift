// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// One counter of a CMG's measurement entries: its chpstat key, where it sits, and its width.
/// The names and places are chpstat v2.43.0's structs (`cue1_t` ... `ext_cue5_t` in
/// `cmg1.c` ... `cmg5.c`); a `_cpc` suffix counts the whole machine (every partition), no
/// suffix this partition.
package struct CMGCounter: Hashable, Sendable, CustomStringConvertible {
    /// Where the counter is read from.
    package enum Location: Hashable, Sendable {
        /// A 32-bit word of the CUE (1...7), valid when its CUIV bit is set.
        case entry(word: Int)
        /// A 32-bit word of the extended CUE (0...15), valid when the extended CUE was read.
        case extendedEntry(word: Int)
        /// A 64-bit doubleword of the extended CUE starting at this word, valid likewise.
        case extendedEntry64(word: Int)
    }

    /// chpstat's key, e.g. `channel_work_units_cpc`.
    package let key: String
    package let location: Location

    package init(_ key: String, _ location: Location) {
        self.key = key
        self.location = location
    }

    /// The counter's width in bits: 32, or 64 for the extended CUE's sums.
    package var width: Int {
        if case .extendedEntry64 = location { return 64 }
        return 32
    }

    /// Whether this partition's share (no `_cpc` suffix) rather than the whole machine's.
    package var countsPartition: Bool { !key.hasSuffix("_cpc") }

    package var description: String { key }

    /// The counter's value in `sample`; nil when the CUIV marks it invalid or the sample has
    /// no extended CUE.
    package func value(in sample: MeasurementSample) -> UInt64? {
        switch location {
        case .entry(let word):
            return sample.cue.isValid(word: word) ? UInt64(sample.cue[word: word]) : nil
        case .extendedEntry(let word):
            return sample.extendedCUE.map { UInt64($0[word: word]) }
        case .extendedEntry64(let word):
            return sample.extendedCUE.map { $0[doubleword: word] }
        }
    }

    /// Writes `value` (truncated to the counter's width) into `sample`, setting the CUE word's
    /// validity bit, or creating the extended CUE; for the model, which fills entries.
    package func store(_ value: UInt64, in sample: inout MeasurementSample) {
        switch location {
        case .entry(let word):
            sample.cue[word: word] = UInt32(truncatingIfNeeded: value)
            sample.cue.cuiv |= 0x80 >> UInt8(word)
        case .extendedEntry(let word):
            var entry = sample.extendedCUE ?? ExtendedCUE()
            entry[word: word] = UInt32(truncatingIfNeeded: value)
            sample.extendedCUE = entry
        case .extendedEntry64(let word):
            var entry = sample.extendedCUE ?? ExtendedCUE()
            entry[doubleword: word] = value
            sample.extendedCUE = entry
        }
    }
}

extension CMG {
    /// The counters of the CUE, in chpstat's key order (`pr_cue`, without the timestamp).
    package var entryCounters: [CMGCounter] { Self.tables[Int(rawValue)].entry }

    /// The counters of the extended CUE, in chpstat's key order (`pr_ext_cue`); empty for
    /// CMG 1 and 3.
    package var extendedEntryCounters: [CMGCounter] { Self.tables[Int(rawValue)].extended }

    /// Every counter: the CUE's, then the extended CUE's.
    package var counters: [CMGCounter] { Self.tables[Int(rawValue)].all }

    /// The counter with chpstat key `key`, if the group has one.
    package func counter(_ key: String) -> CMGCounter? { Self.tables[Int(rawValue)].byKey[key] }

    /// Built once: the formulas and the tracker look counters up per reading and per metric.
    private static let tables: [CounterTable] =
        [CounterTable(entry: [], extended: [])]
        + allCases.map { CounterTable(entry: $0.makeEntryCounters(), extended: $0.makeExtendedEntryCounters()) }

    private struct CounterTable: Sendable {
        let entry: [CMGCounter]
        let extended: [CMGCounter]
        let all: [CMGCounter]
        let byKey: [String: CMGCounter]

        init(entry: [CMGCounter], extended: [CMGCounter]) {
            self.entry = entry
            self.extended = extended
            all = entry + extended
            byKey = Dictionary(uniqueKeysWithValues: all.map { ($0.key, $0) })
        }
    }

    private func makeEntryCounters() -> [CMGCounter] {
        switch self {
        case .cmg1:
            return [
                CMGCounter("channel_path_busy_time_cpc", .entry(word: 1)),
                CMGCounter("channel_path_busy_time", .entry(word: 2)),
            ]
        case .cmg2, .cmg4, .cmg5:
            return [
                CMGCounter("bus_cycles_cpc", .entry(word: 1)),
                CMGCounter("channel_work_units_cpc", .entry(word: 2)),
                CMGCounter("channel_work_units", .entry(word: 3)),
                CMGCounter("data_units_written_cpc", .entry(word: 4)),
                CMGCounter("data_units_written", .entry(word: 5)),
                CMGCounter("data_units_read_cpc", .entry(word: 6)),
                CMGCounter("data_units_read", .entry(word: 7)),
            ]
        case .cmg3:
            return [
                CMGCounter("msg_units_sent", .entry(word: 1)),
                CMGCounter("msg_units_sent_cpc", .entry(word: 2)),
                CMGCounter("unsuccessful_attempts_to_send", .entry(word: 3)),
                CMGCounter("unavailable_receive_buffers", .entry(word: 4)),
                CMGCounter("unavailable_receive_buffers_cpc", .entry(word: 5)),
                CMGCounter("data_units_sent", .entry(word: 6)),
                CMGCounter("data_units_sent_cpc", .entry(word: 7)),
            ]
        }
    }

    private func makeExtendedEntryCounters() -> [CMGCounter] {
        // CMG 5 puts CMG 4's DPU pair first, then CMG 2's block (`ext_cue5_t`).
        func ficonBlock(at base: Int) -> [CMGCounter] {
            [
                CMGCounter("total_ficon_ops_cpc", .extendedEntry(word: base)),
                CMGCounter("total_deferred_ficon_ops_cpc", .extendedEntry(word: base + 1)),
                CMGCounter("sum_ficon_ops_cpc", .extendedEntry64(word: base + 2)),
                CMGCounter("total_hpf_ops_cpc", .extendedEntry(word: base + 4)),
                CMGCounter("total_deferred_hpf_ops_cpc", .extendedEntry(word: base + 5)),
                CMGCounter("sum_hpf_ops_cpc", .extendedEntry64(word: base + 6)),
            ]
        }
        let dpu = [
            CMGCounter("dpu_channel_exec_time_cpc", .extendedEntry(word: 0)),
            CMGCounter("dpu_exec_time_cpc", .extendedEntry(word: 1)),
        ]
        switch self {
        case .cmg1, .cmg3: return []
        case .cmg2: return ficonBlock(at: 0)
        case .cmg4: return dpu
        case .cmg5: return dpu + ficonBlock(at: 2)
        }
    }
}
