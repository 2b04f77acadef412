// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// A failure scenario (API/scenarios.md): a named timeline of faults and repairs for the model,
/// already expanded (loops unrolled, `after` resolved) into `steps`, in the order they are
/// played.
///
/// Pure: parsing and checking do no I/O and read no clock. `Scenario.parse(_:)` checks the file
/// on its own (syntax, shape, names, order, loops); `check(against:)` then checks the ids it
/// names against a topology. Both throw `ScenarioError` with the line and column.
package struct Scenario: Hashable, Sendable {
    /// Which clock the offsets count on when the scenario is played.
    package enum Clock: String, Hashable, Sendable, CaseIterable {
        /// As fast as possible, in order: an offset only orders the steps. Deterministic.
        case model
        /// Offsets are milliseconds of wall time from the start (the player's timers).
        case wall
    }

    /// The scenario's name (the `scenario` member): it names the cause of every change made.
    package var name: String
    package var description: String?
    package var clock: Clock
    /// Named groups of chpids (a switch, a storage port), in file order.
    package var groups: [(name: String, chpids: [ChannelPathID])] {
        groupNames.map { ($0, groupMembers[$0] ?? []) }
    }
    package var groupNames: [String]
    package var groupMembers: [String: [ChannelPathID]]
    /// Every step, loops unrolled, sorted by `offset` (file order among equal offsets).
    package var steps: [ScenarioStep]

    /// The offset of the last step, in milliseconds (0 for an empty scenario).
    package var duration: Int { steps.last?.offset ?? 0 }
}

/// One step of the played timeline.
package struct ScenarioStep: Hashable, Sendable {
    /// Milliseconds from the scenario's start.
    package var offset: Int
    /// The step's name; in a loop `LOOP#ITERATION/STEP` (iteration from 1), e.g. `flap#3/down`.
    package var name: String
    package var action: ScenarioAction
    /// Where the step is written (its object) in the file.
    package var position: ScenarioPosition
    /// Where each id the step names is written, to point at it when the topology lacks it.
    package var idPositions: [ScenarioID: ScenarioPosition]
}

/// An id a step names, for checking against the topology.
package enum ScenarioID: Hashable, Sendable {
    case chpid(ChannelPathID)
    case device(DeviceID)
    case subchannel(SubchannelID)
}

/// A device a scenario adds: the subchannel that appears and what it shows (topology.md's
/// subchannel fields).
package struct ScenarioDevice: Hashable, Sendable {
    package var device: DeviceID
    package var subchannel: SubchannelID
    /// The installed paths, slot 0 first (1...8, of the subchannel's css).
    package var chpids: [ChannelPathID]
    /// lscss DevType, type and model (`3390/0c`).
    package var devType: Int
    package var devModel: Int
    /// lscss CU Type (`3990/e9`).
    package var cuType: Int
    package var cuModel: Int
}

/// What a step does. The names and arguments are the QMP commands' where one exists
/// (API/css.md); the others are faults only a scenario makes.
package enum ScenarioAction: Hashable, Sendable {
    /// `inject-path-fault` on one or several chpids at once, as one incident: the machine
    /// queues one channel-path CRW per chpid (hardware: never refused by the interlock).
    case pathFault(chpids: [ChannelPathID], fault: PathFault)
    /// `vary-path` (operator): refused by the last-path interlock unless `force`.
    case vary(chpid: ChannelPathID, state: VaryState, subchannel: SubchannelID?, force: Bool)
    /// `configure-chpid` (operator): standby is refused by the interlock unless `force`.
    case configure(chpid: ChannelPathID, state: ConfigureState, force: Bool)
    /// `inject-device-path-fault`: one device loses (or regains) one path; its neighbours on
    /// the chpid keep theirs (hardware).
    case devicePathFault(device: DeviceID, chpid: ChannelPathID, fault: PathFault)
    /// `add-device`: a device and its subchannel appear (hardware).
    case addDevice(ScenarioDevice)
    /// `remove-device`: a device and its subchannel go (hardware).
    case removeDevice(DeviceID)
    /// `quiesce-control-unit` (`resume` false) / `resume-control-unit`: the storage server
    /// quiesces (CUIR) or resumes the paths `chpids` of a control unit's `devices` (nil: every
    /// DASD using them), as `inject-dasd-path-fault` cuir-quiesce/-resume does for one device
    /// (hardware: the DASD driver itself keeps a device's last path in use).
    case controlUnitQuiesce(chpids: [ChannelPathID], devices: [DeviceID]?, resume: Bool)

    /// The step's command name, as written in the file.
    package var command: String {
        switch self {
        case .pathFault: "inject-path-fault"
        case .vary: "vary-path"
        case .configure: "configure-chpid"
        case .devicePathFault: "inject-device-path-fault"
        case .addDevice: "add-device"
        case .removeDevice: "remove-device"
        case .controlUnitQuiesce(_, _, let resume): resume ? "resume-control-unit" : "quiesce-control-unit"
        }
    }

    /// Hardware steps (what the machine does) are never refused by the last-path interlock;
    /// operator steps are, unless they state `force` as the command would.
    package var isHardware: Bool {
        switch self {
        case .vary, .configure: false
        default: true
        }
    }
}

extension ScenarioDevice {
    /// The subchannel as a topology describes it, for `Subsystem.addDevice`: the topology's
    /// defaults for what a step does not say (not enabled, ISC 0, online, QDIO from the
    /// control unit).
    package var topologySubchannel: Topology.Subchannel {
        Topology.Subchannel(
            id: subchannel, devno: Int(device.devno), devType: devType, devModel: devModel, cuType: cuType,
            cuModel: cuModel, chpids: chpids)
    }
}
