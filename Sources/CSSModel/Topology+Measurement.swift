// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

extension Topology {
    /// The channel-measurement facility as a description sets it up (issue 21; topology file key
    /// `channel-measurement`). Plain data: chpids, groups and load keys are checked when the
    /// model's facility is built (`MeasurementModel(topology:subsystem:)` in ChannelMeasurement),
    /// not by `validate()`.
    package struct Measurement: Hashable, Sendable {
        /// Whether the partition may enable the facility (the HMC's "Global performance data
        /// control"); default true.
        package var authorized: Bool
        /// Paths whose group or load differ from the default (the group by path type, no load).
        package var chpids: [MeasuredPath]

        package init(authorized: Bool = true, chpids: [MeasuredPath] = []) {
            self.authorized = authorized
            self.chpids = chpids
        }
    }

    /// One path's channel-measurement group and load.
    package struct MeasuredPath: Hashable, Sendable {
        /// The group a description gives a path.
        package enum Group: Hashable, Sendable {
            /// The usual group of the path's type.
            case byType
            /// None (sysfs `unknown`).
            case none
            /// This number, 1-5.
            case group(Int)
        }

        package var id: ChannelPathID
        package var cmg: Group
        /// chpstat metric key -> value (s390-tools chpstat's units), as `set-chpid-load` takes it.
        package var load: [String: Double]

        package init(id: ChannelPathID, cmg: Group = .byType, load: [String: Double] = [:]) {
            self.id = id
            self.cmg = cmg
            self.load = load
        }
    }
}
