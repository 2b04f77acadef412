// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import QMPWire

/// The last-path interlock (issue 22): `vary-path` to offline, `configure-chpid` to standby and
/// a `modify-subchannel` that clears LPM bits are refused when they would take the last
/// operational path of a device in use, unless the caller passes `force: true` (which the
/// audit line records). A device passed through to a guest (vfio-ccw) is in use whatever its
/// host `online` says: the host's ccw device is unbound, the guest drives it (the model's
/// guests; on linux-sysfs a subchannel whose mediated device is held, or whose holder cannot
/// be told). Faults (inject-path-fault, what a host reports) are hardware and never
/// pass through here.
///
/// The check is the model's what-if (`Subsystem+Impact.swift`) on the backend's current view,
/// the same for both backends. A linux-sysfs write blocks off the event loop between its check
/// and its completion; paths whose removal is still in flight (`ServerState.pathsGoing`) are
/// taken as gone, so that two writes in flight together cannot take a device's last path when
/// neither would alone. Devices that lose their last path through the writes in flight alone
/// were accepted (or forced) with them and are not held against the new one.
enum LastPathInterlock {
    /// How many devices a refusal names (the count covers all).
    static let named = 16

    /// Throws the refusal when `impact` takes the last path of a device in use and `force` is
    /// not given.
    /// - Parameters:
    ///   - action: what was asked, for the text (`vary-path 0.40 offline`).
    ///   - impact: the action's impact, with the paths in flight taken as gone.
    ///   - already: the impact of the paths in flight alone, if any.
    /// - Throws: GenericError naming how many devices and the first 16 (`refusal`).
    ///   - passedThrough: whether a device's subchannel is passed through to a guest.
    static func check(
        _ action: String, impact: PathImpact, already: PathImpact?, force: Bool,
        passedThrough: (SubchannelID) -> Bool = { _ in false }
    ) throws(QMPError) {
        guard !force else { return }
        var devices = impact.lostLastPath.filter { $0.inUse || passedThrough($0.subchannel) }
        if let already {
            let lost = Set(already.lostLastPath.map(\.subchannel))
            devices.removeAll { lost.contains($0.subchannel) }
        }
        guard !devices.isEmpty else { return }
        throw refusal(action, devices: devices)
    }

    /// The refusal's text: the action, how many devices in use would lose their last
    /// operational path, the first 16 of them by device number, and the ways on.
    static func refusal(_ action: String, devices: [ImpactedDevice]) -> QMPError {
        let names = devices.prefix(named).map(\.device.description).joined(separator: ", ")
        let more = devices.count > named ? " and \(devices.count - named) more" : ""
        let noun = devices.count == 1 ? "device" : "devices"
        return .generic(
            "\(action) refused: it would take the last operational path of \(devices.count) \(noun) in use: "
                + "\(names)\(more) (query-path-impact lists them; pass 'force': true to do it anyway)")
    }
}

/// A path removal (vary offline, configure standby) whose write is in flight: registered when
/// the write is planned, removed when it completes. Held weakly by `ServerState.pathsGoing`
/// and strongly by the write's completion, so that a write whose session stopped before it
/// completed (its completion dropped) stops counting by itself.
final class PathGoing {
    let chpid: ChannelPathID

    init(_ chpid: ChannelPathID) { self.chpid = chpid }
}

/// A weak reference to a `PathGoing`.
struct WeakPathGoing {
    weak var value: PathGoing?
}

extension ServerState {
    /// The chpids whose removal is in flight, each once; forgets the ones whose write was
    /// dropped.
    func chpidsGoing() -> [ChannelPathID] {
        pathsGoing.removeAll { $0.value == nil }
        var seen = Set<ChannelPathID>()
        return pathsGoing.compactMap { $0.value?.chpid }.filter { seen.insert($0).inserted }
    }

}

extension CommandContext {
    /// Checks `removal` against the interlock, with the removals in flight taken as gone. A
    /// command replayed from the state dir's log is not checked: it succeeded when it was
    /// made (perhaps before the interlock existed, or forced), and replay must reproduce it.
    /// - Throws: DeviceNotFound for an unknown id (as the operation would), or the refusal.
    func checkLastPaths(_ action: String, _ removal: PathRemoval, force: Bool) throws(QMPError) {
        guard !force, session.origin != .replay else { return }
        let subsystem = server.backend.subsystem
        // Chpids that read standby count as gone too: on linux-sysfs a `configure` write returns
        // before every subchannel's PAM is seen cleared, and a check in that window took the
        // other path of a device on those two (in the model their PAM bits are already clear,
        // so this changes nothing there).
        var going = server.chpidsGoing()
        for path in subsystem.channelPaths where path.configure == .standby && !going.contains(path.id) {
            going.append(path.id)
        }
        var combined = removal
        combined.chpids = going + removal.chpids
        let impact = try ImpactCommands.modelCall { () throws(ModelError) in try subsystem.impact(of: combined) }
        let already =
            going.isEmpty
            ? nil
            : try ImpactCommands.modelCall { () throws(ModelError) in try subsystem.impactOfRemoving(chpids: going) }
        let guests = server.guests
        let host = server.backend.hostPassthrough
        try LastPathInterlock.check(action, impact: impact, already: already, force: force) {
            guests.binding(of: $0) != nil || host?.isHeld($0) == true
        }
    }
}
