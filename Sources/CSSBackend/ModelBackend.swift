// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// The in-memory model as a backend: every operation is the model's own.
package final class ModelBackend: ChannelSubsystemBackend {
    package let kind = BackendKind.model
    package var subsystem: Subsystem

    package init(_ subsystem: Subsystem) {
        self.subsystem = subsystem
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

    private func modelCall<T>(_ body: () throws(ModelError) -> T) throws(BackendError) -> T {
        do throws(ModelError) { return try body() } catch { throw .model(error) }
    }
}
