// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// The ids a scenario may name: those of the running topology (the server builds this from its
/// subsystem when a scenario is loaded, so devices added by commands or earlier scenarios count).
package struct ScenarioTargets: Sendable {
    package var chpids: Set<ChannelPathID>
    /// Each device with its subchannel.
    package var devices: [DeviceID: SubchannelID]
    package var subchannels: Set<SubchannelID>

    package init(chpids: Set<ChannelPathID>, devices: [DeviceID: SubchannelID], subchannels: Set<SubchannelID>) {
        self.chpids = chpids
        self.devices = devices
        self.subchannels = subchannels
    }

    /// The ids of a topology description.
    package init(topology: Topology) {
        chpids = Set(topology.channelPaths.map(\.id))
        subchannels = Set(topology.subchannels.map(\.id))
        devices = [:]
        for subchannel in topology.subchannels {
            guard let devno = subchannel.devno else { continue }
            let id = DeviceID(cssid: subchannel.id.cssid, ssid: subchannel.id.ssid, devno: UInt16(devno))
            devices[id] = subchannel.id
        }
    }
}

extension Scenario {
    /// Checks every id the steps name against `targets`, in timeline order: a device or
    /// subchannel exists from the step that adds it until the step that removes it.
    /// - Throws: `ScenarioError` at the id's place in the file: an unknown chpid, device or
    ///   subchannel; a device added twice or while its number or subchannel is in use; a
    ///   device-path fault on a chpid the device does not use (for devices the scenario adds).
    package func check(against targets: ScenarioTargets) throws(ScenarioError) {
        var devices = targets.devices
        var subchannels = targets.subchannels
        var addedPaths: [DeviceID: [ChannelPathID]] = [:]
        for step in steps {
            func place(_ id: ScenarioID) -> ScenarioPosition { step.idPositions[id] ?? step.position }
            func chpid(_ id: ChannelPathID) throws(ScenarioError) {
                guard targets.chpids.contains(id) else {
                    throw ScenarioError(
                        place(.chpid(id)), "step '\(step.name)': unknown chpid \(id) (not in the topology)")
                }
            }
            func device(_ id: DeviceID) throws(ScenarioError) {
                guard devices[id] != nil else {
                    throw ScenarioError(
                        place(.device(id)),
                        "step '\(step.name)': unknown device \(id) (not in the topology at this step)")
                }
            }
            switch step.action {
            case let .pathFault(chpids, _):
                for id in chpids { try chpid(id) }
            case let .vary(id, _, subchannel, _):
                try chpid(id)
                if let subchannel, !subchannels.contains(subchannel) {
                    throw ScenarioError(
                        place(.subchannel(subchannel)),
                        "step '\(step.name)': unknown subchannel \(subchannel) (not in the topology at this step)")
                }
            case let .configure(id, _, _):
                try chpid(id)
            case let .devicePathFault(id, path, _):
                try device(id)
                try chpid(path)
                if let paths = addedPaths[id], !paths.contains(path) {
                    throw ScenarioError(
                        place(.chpid(path)), "step '\(step.name)': device \(id) does not use chpid \(path)")
                }
            case let .addDevice(added):
                for id in added.chpids { try chpid(id) }
                guard devices[added.device] == nil else {
                    throw ScenarioError(
                        place(.device(added.device)), "step '\(step.name)': device \(added.device) is already there")
                }
                guard !subchannels.contains(added.subchannel) else {
                    throw ScenarioError(
                        place(.subchannel(added.subchannel)),
                        "step '\(step.name)': subchannel \(added.subchannel) is already in use")
                }
                devices[added.device] = added.subchannel
                subchannels.insert(added.subchannel)
                addedPaths[added.device] = added.chpids
            case let .controlUnitQuiesce(chpids, devices, _):
                for id in chpids { try chpid(id) }
                for id in devices ?? [] { try device(id) }
            case let .removeDevice(id):
                try device(id)
                if let subchannel = devices.removeValue(forKey: id) { subchannels.remove(subchannel) }
                addedPaths[id] = nil
            }
        }
    }
}
