// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// The source of truth behind the commands: the in-memory model, or a real machine seen
/// through Linux sysfs. Queries read `subsystem`, the backend's current view (for a real
/// machine: the last observation). Operations change the source and return what changed, in
/// the model's `PathChange` form, so that replies and path events do not depend on the backend.
/// A backend that cannot do an operation (sysfs has no CRWs to store) says so with
/// `BackendError.unsupported`.
///
/// Backends run on the server's event loop, one call at a time.
public protocol ChannelSubsystemBackend: AnyObject {
    /// `model` or `linux-sysfs`, for messages.
    var name: String { get }
    /// The current view.
    var subsystem: Subsystem { get }
    /// What the source says about a path beyond the model (sysfs `cmg`, `chid_external`);
    /// nil when it says nothing more.
    func details(of path: ChannelPathID) -> ChannelPathDetails?

    func varyPath(_ id: ChannelPathID, to state: VaryState) throws(BackendError) -> PathChange
    func varyPath(_ id: ChannelPathID, to state: VaryState, subchannel: SubchannelID) throws(BackendError) -> PathChange
    func configurePath(_ id: ChannelPathID, to state: ConfigureState) throws(BackendError) -> PathChange
    func injectPathFault(_ id: ChannelPathID, _ fault: PathFault) throws(BackendError) -> PathChange
    func resetChannelPath(_ id: ChannelPathID) throws(BackendError) -> ResetChannelPathResult
    func modifySubchannel(_ id: SubchannelID, schib: SCHIB) throws(BackendError) -> ModifySubchannelResult
    func storeChannelReportWord() throws(BackendError) -> StoreCRWResult
}

/// Facts about a channel path that only a real machine reports.
public struct ChannelPathDetails: Hashable, Sendable {
    /// Channel-measurement group; nil when unknown.
    public var cmg: Int?
    /// Whether the path is shared; nil when unknown (sysfs `unknown`).
    public var shared: Bool?
    /// Whether `pchid` is a physical channel id (else an internal one); nil without a chid.
    public var chidExternal: Bool?

    public init(cmg: Int? = nil, shared: Bool? = nil, chidExternal: Bool? = nil) {
        self.cmg = cmg
        self.shared = shared
        self.chidExternal = chidExternal
    }
}

public enum BackendError: Error, Sendable, CustomStringConvertible {
    /// The model refused (unknown id, a state that cannot be requested, ...).
    case model(ModelError)
    /// MSCH refused the SCHIB (operand exception).
    case programInterruption(ProgramInterruption)
    /// The backend has no such operation.
    case unsupported(operation: String, backend: String, reason: String)
    /// The source refused: a file that could not be written or read, with the errno.
    case io(path: String, operation: String, errno: Int32, message: String)

    public var description: String {
        switch self {
        case .model(let error): return error.description
        case .programInterruption(let interruption): return interruption.description
        case .unsupported(let operation, let backend, let reason):
            return "\(operation) is not supported by the \(backend) backend: \(reason)"
        case .io(let path, let operation, _, let message): return "\(operation) \(path): \(message)"
        }
    }
}

/// A backend that mirrors a machine others change too: it can be read again.
public protocol ObservedBackend: ChannelSubsystemBackend {
    /// Reads the source again: the changes since the last reading, in chpid order.
    func refresh() throws(BackendError) -> [PathChange]
    /// Directories whose files change when the machine does (for inotify).
    var watchedDirectories: [String] { get }
    /// Problems of the last reading (files not understood), for the log.
    var problems: [String] { get }
}

/// A write to the source that may block for long (a sysfs `configure` write returns when the
/// kernel's SCLP request has completed), split so that the server can run the blocking part
/// off its event loop: `perform` on any thread, then `completeWrite` back on the loop.
public struct PendingWrite: Sendable {
    public let chpid: ChannelPathID
    /// The blocking part; touches nothing but the file.
    public let perform: @Sendable () -> Result<Void, BackendError>

    public init(chpid: ChannelPathID, perform: @escaping @Sendable () -> Result<Void, BackendError>) {
        self.chpid = chpid
        self.perform = perform
    }
}

/// A backend whose vary and configure can block: planned and completed around the write.
public protocol BlockingWriteBackend: ChannelSubsystemBackend {
    func planVary(_ id: ChannelPathID, to state: VaryState) throws(BackendError) -> PendingWrite
    func planConfigure(_ id: ChannelPathID, to state: ConfigureState) throws(BackendError) -> PendingWrite
    /// The write's outcome (its error, if it failed) and what a re-read shows.
    func completeWrite(_ write: PendingWrite, _ outcome: Result<Void, BackendError>) throws(BackendError) -> PathChange
}
