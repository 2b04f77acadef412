// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// The logical vary state of a channel path: the operating system's view (sysfs `status`).
/// Varying a path changes only the subchannels' LPM; the machine is not told.
package enum VaryState: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case online
    case offline

    package var description: String { rawValue }
}

/// The configure state of a channel path: the machine's view (sysfs `configure`, the SCLP
/// channel-path information). Raw values are what sysfs prints.
package enum ConfigureState: Int, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case standby = 0
    case configured = 1
    case reserved = 2
    case notRecognized = 3

    /// The QMP spelling: `configured`, `standby`, `reserved`, `not-recognized`.
    package var description: String {
        switch self {
        case .standby: "standby"
        case .configured: "configured"
        case .reserved: "reserved"
        case .notRecognized: "not-recognized"
        }
    }

    /// Parses the QMP spelling.
    package init?(name: String) {
        guard let state = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = state
    }
}

/// Whether the path hardware works, independent of configuration: faults are injected and
/// recovered through `Subsystem.injectPathFault(_:_:)`.
package enum PathCondition: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case operational
    /// The path is not operational for now but still available (CRW ERC 3).
    case temporaryError = "temporary-error"
    /// The path is gone until it recovers (CRW ERC 6); it leaves every PAM.
    case permanentError = "permanent-error"

    package var description: String { rawValue }
}

/// A fault to inject on a channel path (QMP `inject-path-fault`).
package enum PathFault: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case permanentError = "permanent-error"
    case recovered
    case temporaryError = "temporary-error"

    package var description: String { rawValue }
}

/// A channel path `cssid.chpid` as lschp shows it, plus its hardware condition.
///
/// The set of subchannels using the path lives in the `Subsystem`'s index (see
/// `Subsystem.subchannels(using:)`), so that this value stays small and copyable.
package struct ChannelPath: Hashable, Sendable {
    package let id: ChannelPathID
    /// The channel-path descriptor type (0x1a FICON, 0x11 OSD, 0x32 virtio, ...).
    package var type: UInt8
    /// Shared between partitions.
    package var shared: Bool
    /// Physical channel id, when the machine reports one.
    package var pchid: UInt16?
    package var vary: VaryState
    package var configure: ConfigureState
    package var condition: PathCondition
    /// How many subchannels have this path among their installed paths.
    package internal(set) var subchannelCount: Int

    package init(
        id: ChannelPathID, type: UInt8, shared: Bool = false, pchid: UInt16? = nil,
        vary: VaryState = .online, configure: ConfigureState = .configured,
        condition: PathCondition = .operational, subchannelCount: Int = 0
    ) {
        self.id = id
        self.type = type
        self.shared = shared
        self.pchid = pchid
        self.vary = vary
        self.configure = configure
        self.condition = condition
        self.subchannelCount = subchannelCount
    }

    /// The path is in the PAM of its subchannels: configured and not permanently failed.
    package var isAvailable: Bool { configure == .configured && condition != .permanentError }

    /// The path is in the POM of its subchannels: no fault is outstanding.
    package var isOperational: Bool { condition == .operational }
}
