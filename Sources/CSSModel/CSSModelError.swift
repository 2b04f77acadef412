// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// The root of every error this module throws, so callers can catch "anything the model
/// refused" in one clause and still switch on the concrete type.
///
/// ```
/// CSSModelError
/// ├── IDParseError     a malformed or out-of-range id in Linux notation (GenericError)
/// ├── TopologyError    a topology description that cannot be built (refuse to start)
/// ├── ModelError       an operation naming something the model does not have (DeviceNotFound)
/// │                    or asking for a transition the machine does not offer (GenericError)
/// └── ProgramInterruption  an architected program exception of an instruction (MSCH)
/// ```
/// `description` is always a complete sentence fragment fit for a QMP error text.
package protocol CSSModelError: Error, CustomStringConvertible, Sendable {}

/// An operation named something that does not exist, or asked for a transition that the
/// machine does not offer. Instructions report missing objects with cc 3 instead; these errors
/// are for the management operations (vary, configure, fault injection).
package enum ModelError: CSSModelError, Equatable {
    /// No subchannel has this id.
    case unknownSubchannel(SubchannelID)
    /// No subchannel has this device number.
    case unknownDevice(DeviceID)
    /// No channel path has this id.
    case unknownChannelPath(ChannelPathID)
    /// The subchannel does not have the channel path among its eight slots.
    case pathNotInstalled(ChannelPathID, SubchannelID)
    /// Only `configured` and `standby` can be requested; the other states are the machine's.
    case invalidConfigureTarget(ConfigureState)
    /// The machine does not offer this path to the partition (reserved or not recognized).
    case notConfigurable(ChannelPathID, ConfigureState)
    /// The device is not a DASD (`Subchannel.modelDASDDriver`): no DASD driver state.
    case notDASD(DeviceID)
    /// A `path_reset` of every disabled path of a DASD whose driver disabled none.
    case noDisabledDASDPath(DeviceID)
    /// A device to add (`Subsystem.addDevice`) that cannot be built: the subchannel and why.
    case invalidDevice(SubchannelID, String)
    /// A device to add on a subchannel the model already has.
    case subchannelInUse(SubchannelID)
    /// A device to add whose device number the model already has in that subchannel set.
    case deviceExists(DeviceID)

    /// True for the "does not exist" cases, which QMP reports as DeviceNotFound.
    package var isNotFound: Bool {
        switch self {
        case .unknownSubchannel, .unknownDevice, .unknownChannelPath: true
        case .pathNotInstalled, .invalidConfigureTarget, .notConfigurable, .notDASD, .noDisabledDASDPath,
            .invalidDevice, .subchannelInUse, .deviceExists:
            false
        }
    }

    package var description: String {
        switch self {
        case .unknownSubchannel(let id): "subchannel \(id) does not exist"
        case .unknownDevice(let id): "no subchannel has device number \(id)"
        case .unknownChannelPath(let id): "channel path \(id) does not exist"
        case .pathNotInstalled(let chpid, let sch):
            "channel path \(chpid) is not installed on subchannel \(sch)"
        case .invalidConfigureTarget(let state):
            "cannot configure a channel path to '\(state)': expected configured or standby"
        case .notConfigurable(let chpid, let state):
            "channel path \(chpid) is \(state) and cannot be configured by this partition"
        case .notDASD(let id):
            "device \(id) is not a DASD (no dasd-eckd or dasd-fba device type or control unit)"
        case .noDisabledDASDPath(let id): "the driver has disabled no path of device \(id)"
        case .invalidDevice(let id, let reason): "cannot add a device on subchannel \(id): \(reason)"
        case .subchannelInUse(let id): "subchannel \(id) already exists"
        case .deviceExists(let id): "device \(id) already exists"
        }
    }
}

/// An architected program exception raised by an instruction instead of setting a
/// condition code (the PoP's "operand exception" for reserved bits of an MSCH operand).
package enum ProgramInterruption: CSSModelError, Equatable {
    /// Reserved bits were set in the operand.
    case operand(reason: String)

    package var description: String {
        switch self {
        case .operand(let reason): "operand exception: \(reason)"
        }
    }
}
