// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import ChannelMeasurement
import JSONValues
import PathChangePipeline
import QMPWire

/// The channel-measurement commands of API/measurement.json (issue 21), over
/// `ServerState.backend`'s facility, with `ServerState.measurementClock` as the model time.
/// One static method per command, as the generated `MeasurementCommandsSchema` requires.
enum MeasurementCommands {
    static func queryChpidMeasurements(_ arguments: QueryChpidMeasurementsArguments, _ context: CommandContext)
        throws(QMPError) -> CommandOutcome
    {
        let server = context.server
        let backend = server.backend
        let facility = backend.channelMeasurementFacility
        var members = facilityMembers(facility)
        if case .unsupported = facility {
            members.append(("channel-paths", .array()))
            return .reply(.object(members))
        }
        let reports = try CSSCommands.backendCall { () throws(BackendError) in
            try backend.channelMeasurements(arguments.chpids, at: server.measurementClock())
        }
        members.append(("channel-paths", .array(reports.map(pathMeasurement))))
        return .reply(.object(members))
    }

    static func setChannelMeasurement(_ arguments: SetChannelMeasurementArguments, _ context: CommandContext)
        throws(QMPError) -> CommandOutcome
    {
        let server = context.server
        let backend = server.backend
        let write = try CSSCommands.backendCall { () throws(BackendError) in
            try backend.planChannelMeasurement(enable: arguments.enabled)
        }
        guard write.perform != nil else {
            // The model: nothing blocks; the switch is the model's, kept with --state-dir.
            let state = try CSSCommands.backendCall { () throws(BackendError) in
                try backend.completeChannelMeasurement(write, .success(nil))
            }
            return recorded(.object(facilityMembers(state)), server)
        }
        // A sysfs write of cm_enable makes the kernel issue CHSC requests: off the event loop.
        return .deferred(
            DeferredWork(blocking: write.perform) { (outcome) throws(QMPError) in
                if case .success(let reading?) = outcome { server.applyObserved(reading) }
                let state = try CSSCommands.backendCall { () throws(BackendError) in
                    try backend.completeChannelMeasurement(write, outcome)
                }
                return .object(facilityMembers(state))
            })
    }

    static func setChpidLoad(_ arguments: SetChpidLoadArguments, _ context: CommandContext) throws(QMPError)
        -> CommandOutcome
    {
        let server = context.server
        let metrics = loadMetrics(arguments.load)
        let load = try CSSCommands.backendCall { () throws(BackendError) in
            try server.backend.setChannelLoad(arguments.chpid, metrics, at: server.measurementClock())
        }
        return recorded(
            .object([
                ("chpid", .string(arguments.chpid.description)),
                ("cmg", .integer(Int(load.cmg?.rawValue ?? 0))),
                ("load", .object(load.metrics.sorted { $0.key < $1.key }.map { ($0.key, .real($0.value)) })),
            ]), server)
    }

    /// `value` as the reply of a change of the model's facility, which `--state-dir` keeps as
    /// the facility's whole state (`MeasurementStateLog`, not the command log: a replay would
    /// run at another model time): the reply waits until that record is durable, as a
    /// recorded command's does. Without a state dir, or for a real host's facility (the host
    /// keeps its `cm_enable`), the reply goes at once.
    static func recorded(_ value: JSON, _ server: ServerState) -> CommandOutcome {
        guard let log = server.durability as? MeasurementStateLog, log.keepsMeasurement,
            let model = server.backend as? ModelBackend
        else { return .reply(value) }
        let token = log.appendMeasurement(
            state: model.measurement.savedState(at: server.measurementClock()), time: server.clock())
        return .deferred(
            .durable(token, of: log) { (outcome) throws(QMPError) -> JSON in
                if case .failure(let error) = outcome {
                    throw .generic("the change was made but could not be recorded in the state dir: \(error)")
                }
                return value
            })
    }

    // MARK: - Replies

    static func facilityMembers(_ state: ChannelMeasurementFacilityState) -> [(String, JSON)] {
        var members: [(String, JSON)] = [("state", .string(state.description))]
        if case .unsupported(let reason) = state { members.append(("reason", .string(reason))) }
        return members
    }

    /// One `ChannelPathMeasurement` (API/measurement.json), members in schema order.
    static func pathMeasurement(_ report: ChannelMeasurementReport) -> JSON {
        var members: [(String, JSON)] = [("chpid", .string(report.chpid.description))]
        if let cmg = report.cmgValue { members.append(("cmg", .integer(cmg))) }
        if let shared = report.shared { members.append(("shared", .bool(shared))) }
        if let speed = report.speedBPS { members.append(("speed-bps", integer(speed))) }
        if let file = report.extendedEntryFile { members.append(("extended-entry-file", .bool(file))) }
        members.append(("available", .bool(report.metrics != nil)))
        if let problem = report.problem, report.metrics == nil {
            members.append(("reason", .string(problem.reason)))
            members.append(("reason-text", .string(problem.description)))
        }
        members.append(("samples", .integer(report.samples)))
        if let characteristics = report.characteristics, !characteristics.values.isEmpty {
            members.append(("characteristics", group(characteristics.values)))
        }
        if !report.utilization.isEmpty { members.append(("utilization", group(report.utilization))) }
        if !report.totals.isEmpty {
            members.append(("totals", .object(report.totals.map { ($0.key, $0.total.map(integer) ?? .null) })))
        }
        if let metrics = report.metrics { members.append(("metrics", group(metrics))) }
        var blocks: [(String, JSON)] = []
        if let cmcb = report.characteristics?.cmcb {
            blocks.append(("cmcb", .string(hex(cmcb.bytes))))
            blocks.append(("cmcb-full", .bool(report.characteristics?.full ?? false)))
        }
        if let sample = report.lastSample {
            blocks.append(("cue", .string(hex(sample.cue.bytes))))
            if let extended = sample.extendedCUE { blocks.append(("ext-cue", .string(hex(extended.bytes)))) }
        }
        if !blocks.isEmpty { members.append(("blocks", .object(blocks))) }
        return .object(members)
    }

    /// A chpstat group: key -> number, null where not available.
    static func group(_ values: [MeasurementValue]) -> JSON {
        .object(
            values.map { value in
                switch value.value {
                case .none: (value.key, .null)
                case .u32(let number): (value.key, .integer(Int(number)))
                case .u64(let number): (value.key, integer(number))
                case .double(let number): (value.key, number.isFinite ? .real(number) : .null)
                }
            })
    }

    /// A 64-bit unsigned value: an integer up to 2^63 - 1 (JSON's integers here are signed 64
    /// bits), the nearest double above.
    static func integer(_ value: UInt64) -> JSON {
        value <= UInt64(Int.max) ? .integer(Int(value)) : .real(Double(value))
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xf)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The given members of `ChannelLoadMetrics` by chpstat key.
    static func loadMetrics(_ load: ChannelLoadMetrics) -> [String: Double] {
        let pairs: [(String, Double?)] = [
            ("util_total", load.utilTotal), ("util_part", load.utilPart), ("util_bus", load.utilBus),
            ("read_total", load.readTotal), ("read_part", load.readPart), ("write_total", load.writeTotal),
            ("write_part", load.writePart), ("ficon_rate", load.ficonRate), ("ficon_active", load.ficonActive),
            ("ficon_defer", load.ficonDefer), ("hpf_rate", load.hpfRate), ("hpf_active", load.hpfActive),
            ("hpf_defer", load.hpfDefer), ("dpu_util", load.dpuUtil), ("dpu_util_total", load.dpuUtilTotal),
            ("msg_rate_total", load.msgRateTotal), ("msg_rate_part", load.msgRatePart),
            ("send_fail_part", load.sendFailPart), ("rcv_fail_total", load.rcvFailTotal),
            ("rcv_fail_part", load.rcvFailPart),
        ]
        var metrics: [String: Double] = [:]
        for (key, value) in pairs { if let value { metrics[key] = value } }
        return metrics
    }
}
