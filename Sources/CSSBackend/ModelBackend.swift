// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import ChannelMeasurement

/// The in-memory model as a backend: every operation is the model's own.
package final class ModelBackend: ChannelSubsystemBackend {
    package let kind = BackendKind.model
    package var subsystem: Subsystem {
        // Every change of the model may change what its DASD drivers see (a vary changes opm).
        didSet {
            dasdHealthCache = nil
            dasdSummaryCache = nil
        }
    }
    /// `subsystem.dasdPathHealth` and its roll-up, each computed when first asked after a
    /// change of the model, so that metrics scrapes and queries between changes visit no
    /// device (and a scrape never builds the per-device values).
    private var dasdHealthCache: [SubchannelID: DASDPathHealth]?
    private var dasdSummaryCache: [ChannelPathID: DASDChannelPathSummary]?

    /// The channel-measurement facility (off at start) and what the queries have seen of it.
    package private(set) var measurement: MeasurementModel
    private var measurementTracker = MeasurementTracker()
    /// The model time the tracker was last fed at; nil before the first query.
    private var measurementFedAt: MeasurementTime?
    /// The partition's name the metrics carry (`partition` label); a real host's comes from
    /// `/proc/sysinfo`.
    package var partitionName: String? = "MODEL"

    /// The model over `subsystem`; its channel-measurement facility is `measurement`, or by
    /// default one with each path's usual CMG and no load (`MeasurementModel(subsystem:)`).
    package init(_ subsystem: Subsystem, measurement: MeasurementModel? = nil) {
        self.subsystem = subsystem
        self.measurement = measurement ?? MeasurementModel(subsystem: subsystem)
    }

    /// The path's channel-measurement group, as Linux's sysfs `cmg` shows it (lschp's Cmg
    /// column, query-chpids' `cmg`): the measurement model's, whether the facility is enabled
    /// or not (the kernel reads it with the characteristics, not with `cm_enable`). Nil for a
    /// path without one (sysfs `unknown`): the model's own facts then.
    package func details(of path: ChannelPathID) -> ChannelPathDetails? {
        guard let cmg = measurement.channels[path]?.cmg, let channelPath = subsystem.channelPath(path) else {
            return nil
        }
        return ChannelPathDetails(cmg: Int(cmg.rawValue), shared: channelPath.shared)
    }

    /// Nothing to check or block on: `completeWrite` makes the change (and refuses it).
    package func planVary(_ id: ChannelPathID, to state: VaryState) throws(BackendError) -> PendingWrite {
        PendingWrite(chpid: id, change: .vary(state), perform: nil)
    }

    package func planConfigure(_ id: ChannelPathID, to state: ConfigureState) throws(BackendError) -> PendingWrite {
        PendingWrite(chpid: id, change: .configure(state), perform: nil)
    }

    package func completeWrite(_ write: PendingWrite, _ outcome: PendingWrite.Outcome) throws(BackendError)
        -> PathChange
    {
        if case .failure(let error) = outcome { throw error }
        switch write.change {
        case .vary(let state):
            return try modelCall { () throws(ModelError) in try subsystem.varyPath(write.chpid, to: state) }
        case .configure(let state):
            return try modelCall { () throws(ModelError) in try subsystem.configurePath(write.chpid, to: state) }
        }
    }

    package func varyPath(_ id: ChannelPathID, to state: VaryState, subchannel: SubchannelID) throws(BackendError)
        -> PathChange
    {
        try modelCall { () throws(ModelError) in try subsystem.varyPath(id, to: state, subchannel: subchannel) }
    }

    package func injectPathFault(_ id: ChannelPathID, _ fault: PathFault) throws(BackendError) -> PathChange {
        try modelCall { () throws(ModelError) in try subsystem.injectPathFault(id, fault) }
    }

    package func addDevice(_ description: Topology.Subchannel) throws(BackendError) -> DeviceChange {
        try modelCall { () throws(ModelError) in try subsystem.addDevice(description) }
    }

    package func removeDevice(_ device: DeviceID) throws(BackendError) -> DeviceChange {
        try modelCall { () throws(ModelError) in try subsystem.removeDevice(device) }
    }

    // MARK: DASD path health (the model's DASD drivers, Subsystem+DASD.swift)

    package var dasdPathHealth: [SubchannelID: DASDPathHealth] {
        if let dasdHealthCache { return dasdHealthCache }
        let health = subsystem.dasdPathHealth
        dasdHealthCache = health
        return health
    }

    package var dasdChannelPathSummaries: [ChannelPathID: DASDChannelPathSummary] {
        if let dasdSummaryCache { return dasdSummaryCache }
        let summaries = subsystem.dasdChannelPathSummaries
        dasdSummaryCache = summaries
        return summaries
    }

    /// Nothing blocks in the model: the reset is made here, on the event loop, and the part
    /// returned has nothing left to do (the caller then reads `dasdPathHealth`).
    package func planDASDPathReset(_ device: DeviceID, chpids: [ChannelPathID]?) throws(BackendError)
        -> @Sendable () -> PendingWrite.Outcome
    {
        _ = try modelCall { () throws(ModelError) in try subsystem.resetDASDPaths(device: device, chpids: chpids) }
        return { .success(nil) }
    }

    package func injectDASDPathFault(
        _ device: DeviceID, chpid: ChannelPathID, fault: DASDPathFault, count: UInt32, at time: Int64
    ) throws(BackendError) -> DASDPathFaultResult {
        try modelCall { () throws(ModelError) in
            try subsystem.injectDASDPathFault(device: device, chpid: chpid, fault: fault, count: count, at: time)
        }
    }

    package func resetChannelPath(_ id: ChannelPathID) throws(BackendError) -> ResetChannelPathResult {
        subsystem.resetChannelPath(id)
    }

    package func modifySubchannel(_ id: SubchannelID, schib: SCHIB) throws(BackendError) -> ModifySubchannelResult {
        do throws(ProgramInterruption) {
            return try subsystem.modifySubchannel(id, schib: schib)
        } catch {
            throw .programInterruption(error)
        }
    }

    package func storeChannelReportWord() throws(BackendError) -> StoreCRWResult {
        subsystem.storeChannelReportWord()
    }

    // MARK: Channel measurement

    package var channelMeasurementFacility: ChannelMeasurementFacilityState {
        measurement.enabled ? .enabled : .disabled
    }

    /// Nothing blocks: `completeChannelMeasurement` switches (and refuses without
    /// authorization).
    package func planChannelMeasurement(enable: Bool) throws(BackendError) -> PendingMeasurementSwitch {
        PendingMeasurementSwitch(enable: enable, perform: nil)
    }

    package func completeChannelMeasurement(
        _ write: PendingMeasurementSwitch, _ outcome: PendingMeasurementSwitch.Outcome
    ) throws(BackendError) -> ChannelMeasurementFacilityState {
        if case .failure(let error) = outcome { throw error }
        do throws(MeasurementFacilityError) {
            try measurement.setEnabled(write.enable)
        } catch {
            throw .measurement(error)
        }
        return channelMeasurementFacility
    }

    /// Feeds the tracker up to `time`, then reports the selected chpids.
    package func channelMeasurements(_ chpids: [ChannelPathID]?, at time: MeasurementTime) throws(BackendError)
        -> [ChannelMeasurementReport]
    {
        // Each selected path once, in chpid order, as the schema says (and linux-sysfs does).
        let selected = chpids.map { Array(Set($0)).sorted() } ?? measurement.channels.keys.sorted()
        for id in selected where measurement.channels[id] == nil {
            throw .model(.unknownChannelPath(id))
        }
        feedMeasurementTracker(to: time)
        return selected.compactMap { measurementTracker.report($0) }
    }

    /// The longest step between two readings the tracker is fed: the model refuses a load
    /// whose counters move 2^31 (the point at which the tracker takes a drop for a step back)
    /// in this time, and it is under the 24-bit timestamp's 2140 s.
    static let measurementStep: Duration = MeasurementModel.trackingInterval
    /// At most this many intermediate readings per call (12,800 s of model time); a longer gap
    /// jumps, and the jump's reading is given the model's exact advances (the counters may
    /// have wrapped many times unseen), so the totals stay exact and the cost per call bounded.
    static let measurementMaxSteps = 64

    /// Reads every chpid into the tracker at `time`, first at steps of `measurementStep` since
    /// the last call: the model can tell its counters at any past time, so the running totals
    /// stay exact however rarely it is asked (within `measurementMaxSteps`).
    private func feedMeasurementTracker(to time: MeasurementTime) {
        var times: [MeasurementTime] = []
        // The time the first reading jumps from, when the gap is longer than the steps cover.
        var jumpsFrom: MeasurementTime?
        if let last = measurementFedAt, time > last {
            let first = time - Self.measurementStep * Self.measurementMaxSteps
            if first > last { jumpsFrom = last }
            var step = max(last, first) + Self.measurementStep
            while step < time {
                times.append(step)
                step += Self.measurementStep
            }
        }
        if measurementFedAt.map({ time >= $0 }) ?? true {
            times.append(time)
            measurementFedAt = time
        }
        let ids = measurement.channels.keys.sorted()
        for (index, at) in times.enumerated() {
            let (seconds, attoseconds) = at.components
            let now = Double(seconds) + Double(attoseconds) * 1e-18
            for id in ids {
                guard let reading = measurement.reading(id, at: at) else { continue }
                var advances: [String: UInt64]?
                if index == 0, let from = jumpsFrom {
                    let before = measurement.exactCounts(id, at: from)
                    advances = measurement.exactCounts(id, at: at).reduce(into: [:]) { advances, count in
                        advances[count.key] = count.value &- (before[count.key] ?? 0)
                    }
                    advances?[MeasurementTracker.timestampKey] =
                        measurement.timestampTicks(at: at) &- measurement.timestampTicks(at: from)
                }
                // The totals start at the model's exact counts, not at the 32-bit words: they
                // then continue across a restart with the state dir (the counts do).
                var exact: [String: UInt64]?
                if !measurementTracker.isCounting(id) {
                    exact = measurement.exactCounts(id, at: at)
                    exact?[MeasurementTracker.timestampKey] = measurement.timestampTicks(at: at)
                }
                measurementTracker.record(reading, at: now, advances: advances, exact: exact)
            }
        }
    }

    package func setChannelLoad(_ chpid: ChannelPathID, _ load: [String: Double], at time: MeasurementTime)
        throws(BackendError) -> ChannelLoad
    {
        // A sample at the change, so that no interval the tracker later sees spans two loads'
        // folding (the model's counts are exact from the change on).
        feedMeasurementTracker(to: time)
        do throws(MeasurementFacilityError) {
            return try measurement.setLoad(chpid, load, at: time)
        } catch {
            if case .unknownChannelPath(let id) = error { throw .model(.unknownChannelPath(id)) }
            throw .measurement(error)
        }
    }

    /// Takes the facility's state a state dir kept (`MeasurementModel.savedState(at:)`).
    /// - Returns: the model time it was saved at (the server's model clock continues from it).
    /// - Throws: `StateCodingError` for a state of another topology, or corrupt.
    package func restoreMeasurement(_ state: [UInt8]) throws(StateCodingError) -> MeasurementTime {
        let time = try measurement.restoreState(state)
        // What the tracker saw (a replay's readings) is of another facility: start again; its
        // totals start at the restored counts.
        measurementTracker = MeasurementTracker()
        measurementFedAt = nil
        return time
    }

    private func modelCall<T>(_ body: () throws(ModelError) -> T) throws(BackendError) -> T {
        do throws(ModelError) { return try body() } catch { throw .model(error) }
    }
}
