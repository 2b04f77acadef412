// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

extension MeasurementModel {
    /// The facility a topology sets up (`Topology.measurement`, topology file key
    /// `channel-measurement`) over the subsystem built from it: each path's group by its type
    /// unless the description names one, its load, and the partition's authorization. The
    /// facility starts disabled and loads are in force from time 0.
    /// - Throws: `TopologyError` naming the field (`channel-measurement.chpids[2].load.util_bus`):
    ///   a chpid the machine does not have or named twice, a group outside 1-5, a load key the
    ///   path's group does not take, a value that is negative or not finite, or one that drives
    ///   a counter too fast to be measured (`ChannelLoadError.tooFast`).
    package init(topology: Topology, subsystem: Subsystem) throws(TopologyError) {
        guard let setup = topology.measurement else {
            self.init(subsystem: subsystem)
            return
        }
        var cmgs: [ChannelPathID: CMG?] = [:]
        var loads: [ChannelPathID: [String: Double]] = [:]
        for (index, path) in setup.chpids.enumerated() {
            let field = "channel-measurement.chpids[\(index)]"
            guard let existing = subsystem.channelPath(path.id) else {
                throw TopologyError(field: "\(field).chpid", reason: "channel path \(path.id) is not in chpids")
            }
            guard cmgs[path.id] == nil, loads[path.id] == nil else {
                throw TopologyError(field: "\(field).chpid", reason: "channel path \(path.id) is named twice")
            }
            switch path.cmg {
            case .byType: cmgs[path.id] = .some(Self.defaultCMG(forType: existing.type))
            case .none: cmgs[path.id] = .some(nil)
            case .group(let value):
                guard let cmg = try? CMG(checking: value) else {
                    throw TopologyError(
                        field: "\(field).cmg", reason: "\(value) is not a channel-measurement group (1-5)")
                }
                cmgs[path.id] = .some(cmg)
            }
            loads[path.id] = path.load
        }
        self.init(subsystem: subsystem, cmgs: cmgs, authorized: setup.authorized)
        for (index, path) in setup.chpids.enumerated() where !path.load.isEmpty {
            do throws(MeasurementFacilityError) {
                try setLoad(path.id, path.load, at: .zero)
            } catch {
                let field = "channel-measurement.chpids[\(index)].load"
                if case .load(.unknownKey(let key, _, _)) = error {
                    throw TopologyError(field: "\(field).\(key)", reason: error.description)
                }
                if case .load(.badValue(let key, _)) = error {
                    throw TopologyError(field: "\(field).\(key)", reason: error.description)
                }
                if case .load(.tooFast(let key, _, _, _)) = error {
                    throw TopologyError(field: "\(field).\(key)", reason: error.description)
                }
                throw TopologyError(field: field, reason: error.description)
            }
        }
    }
}
