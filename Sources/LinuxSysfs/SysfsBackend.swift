// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel

/// A real machine through Linux sysfs (`--backend linux-sysfs[:ROOT]`). The view is the last
/// reading of the tree; `vary-path` and `configure-chpid` write the chpid's `status` and
/// `configure` files as `chchp` does, then read the tree again, so the reply is what the
/// kernel now says. Changes made by others are found by `refresh()` (the server calls it on a
/// timer and when inotify reports a write). Operations Linux has no file for are unsupported.
public final class SysfsBackend: ObservedBackend, BlockingWriteBackend {
    public let name = "linux-sysfs"
    /// The directory that holds `devices/` and `bus/` (`/sys`).
    public let root: String
    public private(set) var subsystem: Subsystem
    private var details: [ChannelPathID: ChannelPathDetails]
    /// Changes a command's re-read found besides its own, for the next `refresh()`.
    private var unreported: [PathChange] = []
    /// Problems of the last reading (files not understood), for the log.
    public private(set) var problems: [String]

    /// Reads the tree once.
    /// - Throws: `BackendError.io` naming what could not be read.
    public init(root: String = "/sys") throws(BackendError) {
        self.root = root
        let observation = try SysfsObservation.read(root: root)
        subsystem = try observation.subsystem()
        details = observation.details
        problems = observation.problems
    }

    public func details(of path: ChannelPathID) -> ChannelPathDetails? {
        details[path] ?? ChannelPathDetails()
    }

    /// Directories whose files change when the machine does, for inotify.
    public var watchedDirectories: [String] {
        var dirs: [String] = []
        for cssid in subsystem.cssids {
            let css = root + "/devices/css" + Hex.string(cssid)
            dirs.append(css)
            for path in subsystem.channelPaths where path.id.cssid == cssid { dirs.append(css + "/" + Self.pathDirectory(path.id)) }
        }
        for sch in subsystem.subchannels { dirs.append(subchannelDirectory(sch.id)) }
        return dirs
    }

    /// Reads the tree again: the changes since the last reading (and those a command's
    /// re-read found besides its own), in the model's form.
    public func refresh() throws(BackendError) -> [PathChange] {
        let changes = try reread()
        defer { unreported = [] }
        return unreported + changes
    }

    // MARK: Operations

    public func varyPath(_ id: ChannelPathID, to state: VaryState) throws(BackendError) -> PathChange {
        let write = try planVary(id, to: state)
        return try completeWrite(write, write.perform())
    }

    public func configurePath(_ id: ChannelPathID, to state: ConfigureState) throws(BackendError) -> PathChange {
        let write = try planConfigure(id, to: state)
        return try completeWrite(write, write.perform())
    }

    public func planVary(_ id: ChannelPathID, to state: VaryState) throws(BackendError) -> PendingWrite {
        try plan(state == .online ? "online" : "offline", file: "status", of: id)
    }

    public func planConfigure(_ id: ChannelPathID, to state: ConfigureState) throws(BackendError) -> PendingWrite {
        guard state == .configured || state == .standby else { throw .model(.invalidConfigureTarget(state)) }
        return try plan(state == .configured ? "1" : "0", file: "configure", of: id)
    }

    public func completeWrite(_ write: PendingWrite, _ outcome: Result<Void, BackendError>) throws(BackendError)
        -> PathChange
    {
        if case .failure(let error) = outcome { throw error }
        let before = subsystem.channelPath(write.chpid)!
        var own = PathChange(before: before, after: before, affected: [], crws: [], crwsLost: 0)
        for change in try reread() {
            if change.chpid == write.chpid { own = change } else { unreported.append(change) }
        }
        return own
    }

    public func varyPath(_ id: ChannelPathID, to state: VaryState, subchannel: SubchannelID) throws(BackendError)
        -> PathChange
    {
        throw unsupported("vary-path with 'subchannel'", "Linux varies a channel path for all its devices only")
    }

    public func injectPathFault(_ id: ChannelPathID, _ fault: PathFault) throws(BackendError) -> PathChange {
        throw unsupported("inject-path-fault", "faults happen to the machine; they cannot be injected through sysfs")
    }

    public func resetChannelPath(_ id: ChannelPathID) throws(BackendError) -> ResetChannelPathResult {
        throw unsupported("reset-channel-path", "Linux has no sysfs file for RCHP")
    }

    public func modifySubchannel(_ id: SubchannelID, schib: SCHIB) throws(BackendError) -> ModifySubchannelResult {
        throw unsupported("modify-subchannel", "the kernel's driver owns the subchannel's SCHIB")
    }

    public func storeChannelReportWord() throws(BackendError) -> StoreCRWResult {
        throw unsupported("store-crw", "the kernel consumes channel reports itself")
    }

    // MARK: Internals

    private func plan(_ value: String, file: String, of id: ChannelPathID) throws(BackendError) -> PendingWrite {
        guard subsystem.channelPath(id) != nil else { throw .model(.unknownChannelPath(id)) }
        let path = root + "/devices/css" + Hex.string(id.cssid) + "/" + Self.pathDirectory(id) + "/" + file
        return PendingWrite(chpid: id) {
            do throws(BackendError) {
                try SysfsFiles.write(value, to: path)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
    }

    private func reread() throws(BackendError) -> [PathChange] {
        let observation = try SysfsObservation.read(root: root, previous: subsystem)
        let newer = try observation.subsystem()
        let changes: [PathChange]
        if subsystem.hasSameLayout(as: newer) {
            changes = subsystem.pathChanges(to: newer)
        } else {
            // Devices came or went: only the paths' own changes can be compared.
            changes = newer.channelPaths.compactMap { after in
                guard let before = subsystem.channelPath(after.id), before != after else { return nil }
                return PathChange(before: before, after: after, affected: [], crws: [], crwsLost: 0)
            }
        }
        subsystem = newer
        details = observation.details
        problems = observation.problems
        return changes
    }

    private func unsupported(_ operation: String, _ reason: String) -> BackendError {
        .unsupported(operation: operation, backend: name, reason: reason)
    }

    static func pathDirectory(_ id: ChannelPathID) -> String {
        "chp\(id)"  // chp0.4a: a ChannelPathID prints in Linux's notation
    }

    private func subchannelDirectory(_ id: SubchannelID) -> String {
        root + "/devices/css" + Hex.string(id.cssid) + "/0." + Hex.string(id.ssid) + "." + Hex.string(id.schno, width: 4)
    }
}
