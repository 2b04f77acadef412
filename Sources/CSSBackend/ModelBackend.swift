// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// The in-memory model as a backend: every operation is the model's own.
public final class ModelBackend: ChannelSubsystemBackend {
    public let name = "model"
    public var subsystem: Subsystem

    public init(_ subsystem: Subsystem) {
        self.subsystem = subsystem
    }

    public func details(of path: ChannelPathID) -> ChannelPathDetails? { nil }

    public func varyPath(_ id: ChannelPathID, to state: VaryState) throws(BackendError) -> PathChange {
        try modelCall { () throws(ModelError) in try subsystem.varyPath(id, to: state) }
    }

    public func varyPath(_ id: ChannelPathID, to state: VaryState, subchannel: SubchannelID) throws(BackendError)
        -> PathChange
    {
        try modelCall { () throws(ModelError) in try subsystem.varyPath(id, to: state, subchannel: subchannel) }
    }

    public func configurePath(_ id: ChannelPathID, to state: ConfigureState) throws(BackendError) -> PathChange {
        try modelCall { () throws(ModelError) in try subsystem.configurePath(id, to: state) }
    }

    public func injectPathFault(_ id: ChannelPathID, _ fault: PathFault) throws(BackendError) -> PathChange {
        try modelCall { () throws(ModelError) in try subsystem.injectPathFault(id, fault) }
    }

    public func resetChannelPath(_ id: ChannelPathID) throws(BackendError) -> ResetChannelPathResult {
        subsystem.resetChannelPath(id)
    }

    public func modifySubchannel(_ id: SubchannelID, schib: SCHIB) throws(BackendError) -> ModifySubchannelResult {
        do throws(ProgramInterruption) {
            return try subsystem.modifySubchannel(id, schib: schib)
        } catch {
            throw .programInterruption(error)
        }
    }

    public func storeChannelReportWord() throws(BackendError) -> StoreCRWResult {
        subsystem.storeChannelReportWord()
    }

    private func modelCall<T>(_ body: () throws(ModelError) -> T) throws(BackendError) -> T {
        do throws(ModelError) { return try body() } catch { throw .model(error) }
    }
}
