// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// chpstat's metrics over the interval between two samples, per CMG (s390-tools v2.43.0
/// `cmg1.c` ... `cmg5.c`, `update_metrics`): same formulas, same order of operations and same
/// conversions as its C, so that the doubles come out bit for bit identical.
///
/// A metric is nil where chpstat leaves it at `METRICS_INIT` (-1.0, printed `-1.0`): the
/// interval is 0 ticks, a counter is invalid (CUIV) in either sample, the extended CUE is
/// missing from either sample, a maximum is 0 (`max != 0.0`), DPU cores are 0. Where chpstat
/// divides by a zero characteristic without checking (`util_data` with `max_read_data_units`
/// or `max_write_data_units` at 0), the value is what C gives, `inf` or `nan`; `chpstat(...)`
/// returns it as is, and `ChannelMeasurementReport.metrics` reports it as not available.
///
/// Costs O(counters), no allocation beyond the result.
package enum MeasurementFormulas {
    /// chpstat `get_delta`: `current - last` for a counter `width` bits wide (24 for the
    /// timestamp, 32 for the counters), taking one wrap into account.
    package static func delta(_ last: UInt32, _ current: UInt32, width: Int) -> UInt32 {
        if current >= last { return current - last }
        return UInt32(truncatingIfNeeded: (UInt64(1) << UInt64(width)) - UInt64(last) + UInt64(current))
    }

    /// chpstat `get_delta64` for the 64-bit sums.
    package static func delta64(_ last: UInt64, _ current: UInt64) -> UInt64 {
        current &- last
    }

    /// chpstat `tick_to_s`: `CM_TICK * t`.
    package static func seconds(ticks: UInt32) -> Double { CUE.secondsPerTick * Double(ticks) }

    /// chpstat's `metrics` group for `cmg` between samples `a` (older) and `b` (newer), in
    /// chpstat's key order (`pr_metrics`).
    /// - Parameters:
    ///   - characteristics: the path's CMCB decoded for `cmg` (ignored for CMG 1, which has
    ///     none).
    /// - Returns: one value per key; nil where chpstat prints `-1.0`.
    package static func chpstat(
        _ cmg: CMG, characteristics: CMGCharacteristics, from a: MeasurementSample, to b: MeasurementSample
    ) -> [MeasurementValue] {
        var m = Metrics()
        let ticks = delta(a.cue.timestamp, b.cue.timestamp, width: CUE.timestampWidth)
        if ticks != 0 {
            m.interval = seconds(ticks: ticks)
            let pair = Pair(cmg: cmg, a: a, b: b)
            switch cmg {
            case .cmg1: cmg1(&m, pair, ticks: ticks)
            case .cmg2:
                workUnits(&m, pair, characteristics, seconds: m.interval!)
                ficon(&m, pair, seconds: m.interval!)
            case .cmg3: cmg3(&m, pair, characteristics, seconds: m.interval!)
            case .cmg4:
                workUnits(&m, pair, characteristics, seconds: m.interval!)
                dpu(&m, pair, characteristics, ticks: ticks)
            case .cmg5:
                workUnits(&m, pair, characteristics, seconds: m.interval!)
                ficon(&m, pair, seconds: m.interval!)
                dpu(&m, pair, characteristics, ticks: ticks)
            }
        }
        return m.values(for: cmg)
    }

    /// The metric keys of `cmg`, in chpstat's order.
    package static func keys(_ cmg: CMG) -> [String] { Metrics().values(for: cmg).map(\.key) }

    // MARK: - Per CMG

    /// Both samples' counters, with chpstat's `cue_valid2` and `field_delta`.
    private struct Pair {
        let cmg: CMG
        let a: MeasurementSample
        let b: MeasurementSample
        let extended: Bool

        init(cmg: CMG, a: MeasurementSample, b: MeasurementSample) {
            self.cmg = cmg
            self.a = a
            self.b = b
            extended = a.extendedCUE != nil && b.extendedCUE != nil
        }

        /// The counter's 32-bit delta when it is valid in both samples (`cue_valid2`); the
        /// extended CUE's counters only need both extended CUEs.
        func delta(_ key: String) -> UInt32? {
            guard let counter = cmg.counter(key), let last = counter.value(in: a), let current = counter.value(in: b)
            else { return nil }
            return MeasurementFormulas.delta(
                UInt32(truncatingIfNeeded: last), UInt32(truncatingIfNeeded: current), width: 32)
        }

        func delta64(_ key: String) -> UInt64? {
            guard let counter = cmg.counter(key), let last = counter.value(in: a), let current = counter.value(in: b)
            else { return nil }
            return MeasurementFormulas.delta64(last, current)
        }
    }

    /// `cmg1.c` `update_metrics`.
    private static func cmg1(_ m: inout Metrics, _ p: Pair, ticks: UInt32) {
        if let delta = p.delta("channel_path_busy_time_cpc") {
            m.utilTotal = 100.0 * Double(delta) / Double(ticks)
        }
        if let delta = p.delta("channel_path_busy_time") {
            m.utilPart = 100.0 * Double(delta) / Double(ticks)
        }
    }

    /// `cmg2.c` / `cmg4.c` / `cmg5.c` `calc_metrics`: the CUE's work and data units.
    private static func workUnits(_ m: inout Metrics, _ p: Pair, _ c: CMGCharacteristics, seconds: Double) {
        var dataRead = Metrics.initial
        var dataWrite = Metrics.initial
        if let d = p.delta("channel_work_units_cpc") {
            let delta = Double(d)
            let max = Double(c.maxChannelWorkUnits) * seconds
            if max != 0.0 { m.utilTotal = 100.0 * delta / max }
        }
        if let d = p.delta("channel_work_units") {
            let delta = Double(d)
            let max = Double(c.maxChannelWorkUnits) * seconds
            if max != 0.0 { m.utilPart = 100.0 * delta / max }
        }
        if let d = p.delta("bus_cycles_cpc") {
            let delta = Double(d)
            let max = Double(c.maxBusCycles) * seconds
            if max != 0.0 { m.utilBus = 100.0 * delta / max }
        }
        if let d = p.delta("data_units_read_cpc") {
            let delta = Double(d)
            m.readTotal = delta * Double(c.dataUnitSize) / seconds
            dataRead = 100.0 * delta / Double(c.maxReadDataUnits) / seconds
        }
        if let d = p.delta("data_units_read") {
            m.readPart = Double(d) * Double(c.dataUnitSize) / seconds
        }
        if let d = p.delta("data_units_written_cpc") {
            let delta = Double(d)
            m.writeTotal = delta * Double(c.dataUnitSize) / seconds
            dataWrite = 100.0 * delta / Double(c.maxWriteDataUnits) / seconds
        }
        if let d = p.delta("data_units_written") {
            m.writePart = Double(d) * Double(c.dataUnitSize) / seconds
        }
        // zt_common.h `MAX(x, y)`: `x > y ? x : y` (a NaN `x` yields `y`), -1.0 when neither
        // was computed.
        let utilData = dataRead > dataWrite ? dataRead : dataWrite
        m.utilData = utilData == Metrics.initial ? nil : utilData
    }

    /// `cmg2.c` / `cmg5.c` `calc_ext_metrics`: FICON and zHPF operations.
    private static func ficon(_ m: inout Metrics, _ p: Pair, seconds: Double) {
        guard p.extended else { return }
        func family(_ name: String) -> (rate: Double, active: Double, defer: Double) {
            let total = Double(p.delta("total_\(name)_ops_cpc") ?? 0)
            let active = total != 0.0 ? Double(p.delta64("sum_\(name)_ops_cpc") ?? 0) / total : 0.0
            let deferred = Double(p.delta("total_deferred_\(name)_ops_cpc") ?? 0)
            return (total / seconds, active, deferred / seconds)
        }
        (m.ficonRate, m.ficonActive, m.ficonDefer) = family("ficon")
        (m.hpfRate, m.hpfActive, m.hpfDefer) = family("hpf")
    }

    /// `cmg4.c` / `cmg5.c` `calc_ext_metrics`: the DPU, whose times count in timestamp ticks.
    private static func dpu(_ m: inout Metrics, _ p: Pair, _ c: CMGCharacteristics, ticks: UInt32) {
        guard p.extended, c.dpuNumCores != 0 else { return }
        let cores = Double(c.dpuNumCores)
        let exec = Double(p.delta("dpu_exec_time_cpc") ?? 0)
        m.dpuUtil = 100.0 * exec / (Double(ticks) * cores)
        let channelExec = Double(p.delta("dpu_channel_exec_time_cpc") ?? 0)
        let total = 100.0 * channelExec / (Double(ticks) * cores)
        m.dpuUtilTotal = total
        if let part = p.delta("channel_work_units"), let all = p.delta("channel_work_units_cpc") {
            let delta = Double(part)
            let delta2 = Double(all)
            m.dpuUtilPart = delta2 != 0.0 ? total * delta / delta2 : 0.0
        }
    }

    /// `cmg3.c` `calc_metrics`: messages and data sent, with the characteristics' defaults.
    private static func cmg3(_ m: inout Metrics, _ p: Pair, _ c: CMGCharacteristics, seconds: Double) {
        // "When not valid (reported as 0) some CMCB fields have default values or can be
        // derived from related fields."
        let dataSize = c.dataUnitSize != 0 ? c.dataUnitSize : 1
        let dataSizeCPC = c.dataUnitSizeCPC != 0 ? c.dataUnitSizeCPC : dataSize
        let msgSize = c.msgUnitSize != 0 ? c.msgUnitSize : 1
        let msgSizeCPC = c.msgUnitSizeCPC != 0 ? c.msgUnitSizeCPC : msgSize
        if let d = p.delta("data_units_sent_cpc") { m.writeTotal = Double(d) * Double(dataSizeCPC) / seconds }
        if let d = p.delta("data_units_sent") { m.writePart = Double(d) * Double(dataSize) / seconds }
        if let d = p.delta("msg_units_sent_cpc") { m.msgRateTotal = Double(d) * Double(msgSizeCPC) / seconds }
        if let d = p.delta("msg_units_sent") { m.msgRatePart = Double(d) * Double(msgSize) / seconds }
        if let d = p.delta("data_units_sent_cpc"), let d2 = p.delta("msg_units_sent_cpc"), d2 != 0 {
            m.msgSizeTotal = Double(d) * Double(dataSizeCPC) / (Double(d2) * Double(msgSizeCPC))
        }
        if let d = p.delta("data_units_sent"), let d2 = p.delta("msg_units_sent"), d2 != 0 {
            m.msgSizePart = Double(d) * Double(dataSize) / (Double(d2) * Double(msgSize))
        }
        if let d = p.delta("unsuccessful_attempts_to_send") { m.sendFailPart = Double(d) / seconds }
        if let d = p.delta("unavailable_receive_buffers_cpc") { m.rcvFailTotal = Double(d) / seconds }
        if let d = p.delta("unavailable_receive_buffers") { m.rcvFailPart = Double(d) / seconds }
    }

    /// Every metric any CMG has (chpstat `metrics1_t` ... `metrics5_t`), nil = `METRICS_INIT`.
    private struct Metrics {
        static let initial = -1.0

        var interval: Double?
        var utilTotal: Double?
        var utilPart: Double?
        var utilBus: Double?
        var utilData: Double?
        var readTotal: Double?
        var readPart: Double?
        var writeTotal: Double?
        var writePart: Double?
        var ficonRate: Double?
        var ficonActive: Double?
        var ficonDefer: Double?
        var hpfRate: Double?
        var hpfActive: Double?
        var hpfDefer: Double?
        var dpuUtil: Double?
        var dpuUtilTotal: Double?
        var dpuUtilPart: Double?
        var msgRateTotal: Double?
        var msgRatePart: Double?
        var msgSizeTotal: Double?
        var msgSizePart: Double?
        var sendFailPart: Double?
        var rcvFailTotal: Double?
        var rcvFailPart: Double?

        /// chpstat's `pr_metrics` for `cmg`.
        func values(for cmg: CMG) -> [MeasurementValue] {
            func v(_ key: String, _ value: Double?, _ unit: MeasurementValue.Unit) -> MeasurementValue {
                // pr_metric: valid iff the field is not METRICS_INIT.
                MeasurementValue(key, value.flatMap { $0 == Metrics.initial ? nil : .double($0) }, unit: unit)
            }
            let base = [
                v("interval", interval, .number),
                v("util_total", utilTotal, .percent),
                v("util_part", utilPart, .percent),
            ]
            let work = [
                v("util_bus", utilBus, .percent),
                v("util_data", utilData, .percent),
                v("read_total", readTotal, .bytesPerSecond),
                v("read_part", readPart, .bytesPerSecond),
                v("write_total", writeTotal, .bytesPerSecond),
                v("write_part", writePart, .bytesPerSecond),
            ]
            let ficon = [
                v("ficon_rate", ficonRate, .number),
                v("ficon_active", ficonActive, .number),
                v("ficon_defer", ficonDefer, .number),
                v("hpf_rate", hpfRate, .number),
                v("hpf_active", hpfActive, .number),
                v("hpf_defer", hpfDefer, .number),
            ]
            let dpu = [
                v("dpu_util", dpuUtil, .percent),
                v("dpu_util_total", dpuUtilTotal, .percent),
                v("dpu_util_part", dpuUtilPart, .percent),
            ]
            switch cmg {
            case .cmg1: return base
            case .cmg2: return base + work + ficon
            case .cmg4: return base + work + dpu
            case .cmg5: return base + work + ficon + dpu
            case .cmg3:
                // cmg3.c prints no interval.
                return [
                    v("write_part", writePart, .bytesPerSecond),
                    v("write_total", writeTotal, .bytesPerSecond),
                    v("msg_rate_part", msgRatePart, .number),
                    v("msg_rate_total", msgRateTotal, .number),
                    v("msg_size_part", msgSizePart, .number),
                    v("msg_size_total", msgSizeTotal, .number),
                    v("send_fail_part", sendFailPart, .number),
                    v("rcv_fail_part", rcvFailPart, .number),
                    v("rcv_fail_total", rcvFailTotal, .number),
                ]
            }
        }
    }
}
