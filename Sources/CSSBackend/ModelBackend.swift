// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import ChannelMeasurement

/// The in-memory model as a backend: every operation is the model's own.
package final class ModelBackend: ChannelSubsystemBackend {
    package let kind = BackendKind.model
    package var subsystem: Subsystem

    /// The channel-measurement facility (off at start) and what the queries have seen of it.
    package private(set) var measurement: MeasurementModel
    private var measurementTracker = MeasurementTracker()
    /// The partition's name the metrics carry (`partition` label); a real host's comes from
    /// `/proc/sysinfo`.
    package var partitionName: String? = "MODEL"

    /// The model over `subsystem`; its channel-measurement facility is `measurement`, or by
    /// default one with each path's usual CMG and no load (`MeasurementModel(subsystem:)`).
    package init(_ subsystem: Subsystem, measurement: MeasurementModel? = nil) {
        self.subsystem = subsystem
        self.measurement = measurement ?? MeasurementModel(subsystem: subsystem)
    }

    package func details(of path: ChannelPathID) -> ChannelPathDetails? { nil }

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

    /// Reads every chpid at `time` into the tracker (so that the running totals see every
    /// update the queries span), then reports the selected ones.
    package func channelMeasurements(_ chpids: [ChannelPathID]?, at time: MeasurementTime) throws(BackendError)
        -> [ChannelMeasurementReport]
    {
        let all = measurement.channels.keys.sorted()
        let selected = chpids ?? all
        for id in selected where measurement.channels[id] == nil {
            throw .model(.unknownChannelPath(id))
        }
        let (seconds, attoseconds) = time.components
        let now = Double(seconds) + Double(attoseconds) * 1e-18
        for id in all {
            if let reading = measurement.reading(id, at: time) { measurementTracker.record(reading, at: now) }
        }
        return selected.compactMap { measurementTracker.report($0) }
    }

    package func setChannelLoad(_ chpid: ChannelPathID, _ load: [String: Double], at time: MeasurementTime)
        throws(BackendError) -> ChannelLoad
    {
        do throws(MeasurementFacilityError) {
            return try measurement.setLoad(chpid, load, at: time)
        } catch {
            if case .unknownChannelPath(let id) = error { throw .model(.unknownChannelPath(id)) }
            throw .measurement(error)
        }
    }

    private func modelCall<T>(_ body: () throws(ModelError) -> T) throws(BackendError) -> T {
        do throws(ModelError) { return try body() } catch { throw .model(error) }
    }
}
