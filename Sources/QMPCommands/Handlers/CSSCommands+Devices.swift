// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import QMPWire

extension CSSCommands {
    /// `add-device` (model only): a device and its subchannel appear (`Subsystem.addDevice`);
    /// each installed chpid's change is published as `subchannel-added`, the subchannel report
    /// on the first. Hardware: never checked by the last-path interlock (it adds a path, it
    /// takes none).
    static func addDevice(_ arguments: AddDeviceArguments, _ context: CommandContext) throws(QMPError)
        -> CommandOutcome
    {
        let device = arguments.device
        let (devType, devModel) = try parseTypeModel(arguments.devType ?? "0000/00", argument: "dev-type")
        let (cuType, cuModel) = try parseTypeModel(arguments.cuType, argument: "cu-type")
        guard arguments.subchannel.cssid == device.cssid, arguments.subchannel.ssid == device.ssid else {
            throw .generic(
                "Parameter 'subchannel': \(arguments.subchannel) is not in device \(device)'s css and subchannel set")
        }
        let description = Topology.Subchannel(
            id: arguments.subchannel, devno: Int(device.devno), devType: devType, devModel: devModel, cuType: cuType,
            cuModel: cuModel, chpids: arguments.chpids)
        let change = try backendCall { () throws(BackendError) in try context.server.backend.addDevice(description) }
        return publish(change, context)
    }

    /// `remove-device` (model only): a device and its subchannel go (`Subsystem.removeDevice`),
    /// published as `subchannel-removed` per chpid. A device passed through to a guest is
    /// refused: the guest would keep a device whose host subchannel is gone.
    static func removeDevice(_ arguments: RemoveDeviceArguments, _ context: CommandContext) throws(QMPError)
        -> CommandOutcome
    {
        let server = context.server
        if let sch = server.backend.subsystem.subchannel(device: arguments.device),
            let bound = server.guests.binding(of: sch.id)
        {
            throw .generic(
                "device \(arguments.device) (subchannel \(sch.id)) is passed through to guest '\(bound.guest)' as \(bound.id): detach it first"
            )
        }
        let change = try backendCall { () throws(BackendError) in try server.backend.removeDevice(arguments.device) }
        return publish(change, context)
    }

    private static func publish(_ change: DeviceChange, _ context: CommandContext) -> CommandOutcome {
        let kind = PathEventChange(change.kind)
        for pathChange in change.pathChanges { _ = context.publish(pathChange, as: kind) }
        let sch = change.subchannel
        return .reply(
            DeviceChangeResultReply(
                subchannel: sch.id.description, devno: change.device.description,
                chpids: sch.channelPaths.compactMap { $0?.description }, crws: change.crws.count
            ).json)
    }

    /// `TTTT/MM` in hex, as lscss prints a device or control-unit type.
    /// - Throws: GenericError naming the argument and the form.
    private static func parseTypeModel(_ text: String, argument: String) throws(QMPError) -> (Int, Int) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 4, parts[1].count == 2, let type = Int(parts[0], radix: 16),
            let model = Int(parts[1], radix: 16)
        else { throw .generic("Parameter '\(argument)': '\(text)' is not TTTT/MM in hex, like 3990/e9") }
        return (type, model)
    }
}
