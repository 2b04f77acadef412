// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import JSONValues
import QMPWire

/// The impact queries of API/impact.json (issue 22): what-ifs over the backend's current view,
/// computed by the model (`Subsystem+Impact.swift`), with the vfio-ccw guests of
/// `ServerState.guests` and the drivers the backend knows added. One static method per command,
/// as the generated `ImpactCommandsSchema` requires.
enum ImpactCommands {
    /// Most chpids or subchannels one query names, and most devices one list carries.
    static let maxIDs = 256
    static let maxListed = 16384

    static func queryPathImpact(_ arguments: QueryPathImpactArguments, _ context: CommandContext) throws(QMPError)
        -> CommandOutcome
    {
        let limit = try checkedLimit(arguments.limit)
        guard (1...maxIDs).contains(arguments.chpids.count) else {
            throw .generic("Parameter 'chpids' expects 1..\(maxIDs) chpids")
        }
        if let subchannels = arguments.subchannels, !(1...maxIDs).contains(subchannels.count) {
            throw .generic("Parameter 'subchannels' expects 1..\(maxIDs) subchannels")
        }
        let subsystem = context.server.backend.subsystem
        let guests = context.server.guests
        // Only the devices the reply lists are built; passed-through ones are collected by id
        // for the per-guest part (a loop of what-ifs over the whole machine stays cheap).
        let listing = ImpactListing(limit: limit) { guests.binding(of: $0) != nil }
        let impact = try modelCall { () throws(ModelError) in
            if let subchannels = arguments.subchannels {
                return try subsystem.impactOfRemoving(chpids: arguments.chpids, from: subchannels, listing: listing)
            }
            return try subsystem.impactOfRemoving(chpids: arguments.chpids, listing: listing)
        }
        let describe = DeviceDescriber(context)
        let chpids = Set(arguments.chpids).sorted()
        let subchannels = arguments.subchannels.map { Set($0).sorted() }
        let reply = PathImpactReply(
            action: arguments.action, chpids: chpids.map(\.description),
            subchannels: subchannels?.map(\.description), severity: impact.severity,
            devicesLosingAPath: impact.devicesLosingAPath, inUseDevicesLosingAPath: impact.inUseDevicesLosingAPath,
            lostLastPathCount: impact.lostLastPathCount,
            inUseLostLastPathCount: impact.inUseLostLastPathCount,
            lostLastPath: impact.lostLastPath.map(describe.reply),
            droppedToOnePathCount: impact.droppedToOnePathCount,
            droppedToOnePath: impact.droppedToOnePath.map(describe.reply),
            guests: describe.guests(lost: impact.markedLostLastPath, dropped: impact.markedDroppedToOnePath),
            truncated: impact.truncated)
        return .reply(reply.json)
    }

    static func queryPathRedundancy(_ arguments: QueryPathRedundancyArguments, _ context: CommandContext)
        throws(QMPError) -> CommandOutcome
    {
        let limit = try checkedLimit(arguments.limit)
        let report = context.server.backend.subsystem.currentRedundancy()
        let describe = DeviceDescriber(context)
        let truncated = report.singlePath.count > limit || report.withoutPath.count > limit
        // Up to 256 chpids: 16 devices each at most, so the reply stays small however many there are.
        let critical = report.criticalPaths.map { path in
            let inUse = path.devices.count(where: \.inUse)
            return CriticalChpidReply(
                chpid: path.chpid.description, severity: inUse > 0 ? .high : .low, devicesCount: path.devices.count,
                inUseCount: inUse, devices: path.devices.prefix(min(limit, LastPathInterlock.named)).map(describe.reply)
            )
        }
        let reply = PathRedundancyReply(
            singlePathCount: report.singlePath.count, inUseSinglePathCount: report.singlePath.count(where: \.inUse),
            singlePath: report.singlePath.prefix(limit).map(describe.reply),
            withoutPathCount: report.withoutPath.count,
            withoutPath: report.withoutPath.prefix(limit).map(describe.reply),
            criticalChpids: critical, truncated: truncated)
        return .reply(reply.json)
    }

    private static func checkedLimit(_ limit: Int) throws(QMPError) -> Int {
        guard (0...maxListed).contains(limit) else { throw .generic("Parameter 'limit' expects 0..\(maxListed)") }
        return limit
    }

    /// Runs a model query; an unknown id is DeviceNotFound with the model's text, as elsewhere.
    static func modelCall<T>(_ body: () throws(ModelError) -> T) throws(QMPError) -> T {
        do throws(ModelError) {
            return try body()
        } catch {
            throw QMPError(error.isNotFound ? .deviceNotFound : .genericError, error.description)
        }
    }
}

/// Turns the model's `ImpactedDevice` into its reply, with what the server adds: the guest a
/// subchannel is passed through to and the driver the backend knows.
struct DeviceDescriber {
    let context: CommandContext

    init(_ context: CommandContext) { self.context = context }

    func reply(_ device: ImpactedDevice) -> ImpactedDeviceReply {
        let subchannel = context.server.backend.subsystem.subchannel(device.subchannel)
        let chpids = subchannel.map { record in
            record.channelPaths.enumerated().compactMap { slot, chpid in
                device.after & pathMaskBit(slot: slot) != 0 ? chpid?.description : nil
            }
        }
        return ImpactedDeviceReply(
            subchannel: device.subchannel.description, devno: device.device.description,
            devType: Hex.string(device.devType, width: 4) + "/" + Hex.string(device.devModel, width: 2),
            cuType: Hex.string(device.cuType, width: 4) + "/" + Hex.string(device.cuModel, width: 2),
            inUse: device.inUse, operational: Int(device.before), operationalAfter: Int(device.after),
            chpids: chpids ?? [], driver: context.server.backend.deviceDriver(of: device.subchannel),
            guest: context.server.guests.binding(of: device.subchannel)?.guest)
    }

    /// The guests with passed-through devices among `lost` or `dropped`, by name.
    func guests(lost: [SubchannelID], dropped: [SubchannelID]) -> [ImpactedGuestReply] {
        let guests = context.server.guests
        var byName: [String: (lost: [String], dropped: [String])] = [:]
        for subchannel in lost {
            if let name = guests.binding(of: subchannel)?.guest {
                byName[name, default: ([], [])].lost.append(subchannel.description)
            }
        }
        for subchannel in dropped {
            if let name = guests.binding(of: subchannel)?.guest {
                byName[name, default: ([], [])].dropped.append(subchannel.description)
            }
        }
        return byName.keys.sorted().map { name in
            ImpactedGuestReply(name: name, lostLastPath: byName[name]!.lost, droppedToOnePath: byName[name]!.dropped)
        }
    }
}
