// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import JSONValues
import PathChangePipeline
import PathEvents
import QMPWire
import Synchronization

/// The channel-subsystem commands of API/css.json, over `ServerState.backend`: queries read
/// its current view, operations go through it.
///
/// One static method per command, as the generated `CSSCommandsSchema` requires; arguments
/// arrive typed (ids parsed, a malformed one already a GenericError naming the argument and the
/// accepted form). An unknown id is DeviceNotFound. Instructions (STSCH, MSCH, RCHP) report a
/// nonexistent subchannel or chpid the architected way, with cc 3.
enum CSSCommands {
    /// Most subchannels one query-subchannels reply may carry (about 280 bytes each: 4.5 MiB,
    /// well under the 10 MiB line qemu.qmp reads by default).
    static let maxPage = 16384

    static func queryChpids(_ arguments: QueryChpidsArguments, _ context: CommandContext) throws(QMPError)
        -> CommandOutcome
    {
        let backend = context.server.backend
        let paths = backend.subsystem.channelPaths.filter { arguments.cssid == nil || $0.id.cssid == arguments.cssid }
        let dasd = DASDCommands.channelPathSummaries(backend)
        return .reply(.array(paths.map { channelPathInfo($0, backend.details(of: $0.id), dasd: dasd[$0.id]) }))
    }

    static func storeSubchannel(_ arguments: StoreSubchannelArguments, _ context: CommandContext) throws(QMPError)
        -> CommandOutcome
    {
        .reply(storeResult(context.server.subsystem.storeSubchannel(arguments.subchannel)).json)
    }

    static func modifySubchannel(_ arguments: ModifySubchannelArguments, _ context: CommandContext) throws(QMPError)
        -> CommandOutcome
    {
        let id = arguments.subchannel
        // MSCH takes a whole SCHIB: start from the current one and apply what was given.
        var schib = context.server.subsystem.storeSubchannel(id).schib ?? SCHIB()
        if let intparm = arguments.intparm { schib.pmcw.intparm = intparm }
        if let isc = arguments.isc {
            guard isc <= 7 else { throw .generic("Parameter 'isc' expects 0..7") }
            schib.pmcw.flags = schib.pmcw.flags & ~PMCW.Flags.isc | UInt16(isc) << 11
        }
        if let enabled = arguments.enabled {
            schib.pmcw.flags = enabled ? schib.pmcw.flags | PMCW.Flags.enabled : schib.pmcw.flags & ~PMCW.Flags.enabled
        }
        if let lpm = arguments.lpm { schib.pmcw.lpm = lpm }
        if let flags = arguments.flags { schib.pmcw.flags = flags }
        // The interlock, for an lpm that clears bits MSCH will really apply (not with status
        // pending or busy, cc 1 and 2, which change nothing; an unknown id is MSCH's cc 3).
        if let lpm = arguments.lpm, let current = context.server.subsystem.storeSubchannel(id).schib,
            !current.scsw.isStatusPending, !current.scsw.isBusy, current.pmcw.lpm & ~lpm != 0
        {
            try context.checkLastPaths(
                "modify-subchannel \(id) lpm 0x\(Hex.string(lpm, width: 2))",
                PathRemoval(logicalPathMasks: [(id, lpm)]), force: arguments.force == true)
        }
        let result = try backendCall { () throws(BackendError) in
            try context.server.backend.modifySubchannel(id, schib: schib)
        }
        return .reply(ConditionCodeReply(cc: result.cc).json)
    }

    static func storeCRW(_ context: CommandContext) throws(QMPError) -> CommandOutcome {
        let result = try backendCall { () throws(BackendError) in try context.server.backend.storeChannelReportWord() }
        return .reply(storeResult(result).json)
    }

    static func resetChannelPath(_ arguments: ResetChannelPathArguments, _ context: CommandContext) throws(QMPError)
        -> CommandOutcome
    {
        let id = arguments.chpid
        let server = context.server
        let result = try backendCall { () throws(BackendError) in try server.backend.resetChannelPath(id) }
        if result.cc == 0, let path = server.subsystem.channelPath(id) {
            context.publish(PathChange(resetOf: path, crws: result.crws), as: .reset)
        }
        return .reply(ConditionCodeReply(cc: result.cc).json)
    }

    static func varyPath(_ arguments: VaryPathArguments, _ context: CommandContext) throws(QMPError) -> CommandOutcome {
        let (id, state) = (arguments.chpid, arguments.state)
        let force = arguments.force == true
        if let subchannel = arguments.subchannel {
            if state == .offline {
                try context.checkLastPaths(
                    "vary-path \(id) offline for subchannel \(subchannel)",
                    PathRemoval(perSubchannel: [([id], [subchannel])]), force: force)
            }
            return try pathChange(PathEventChange(state), context) { () throws(BackendError) in
                try context.server.backend.varyPath(id, to: state, subchannel: subchannel)
            }
        }
        if state == .offline {
            try context.checkLastPaths("vary-path \(id) offline", PathRemoval(chpids: [id]), force: force)
        }
        return try pathWrite(
            PathEventChange(state), context, intent: .set(id, vary: state, configure: nil),
            removing: state == .offline ? id : nil
        ) {
            (backend) throws(BackendError) in try backend.planVary(id, to: state)
        }
    }

    static func configureChpid(_ arguments: ConfigureChpidArguments, _ context: CommandContext) throws(QMPError)
        -> CommandOutcome
    {
        let (id, state) = (arguments.chpid, arguments.state)
        if state == .standby {
            try context.checkLastPaths(
                "configure-chpid \(id) standby", PathRemoval(chpids: [id]), force: arguments.force == true)
        }
        // The schema admits only configured and standby, each a path event.
        return try pathWrite(
            PathEventChange(state)!, context, intent: .set(id, vary: nil, configure: state),
            removing: state == .standby ? id : nil
        ) {
            (backend) throws(BackendError) in try backend.planConfigure(id, to: state)
        }
    }

    static func injectPathFault(_ arguments: InjectPathFaultArguments, _ context: CommandContext) throws(QMPError)
        -> CommandOutcome
    {
        try pathChange(PathEventChange(arguments.fault), context) { () throws(BackendError) in
            try context.server.backend.injectPathFault(arguments.chpid, arguments.fault)
        }
    }

    /// Devices without a subchannel (Linux `cssN/defunct/`), as the backend last read them.
    static func queryOrphanedDevices(_ context: CommandContext) throws(QMPError) -> CommandOutcome {
        .reply(
            .array(
                context.server.backend.orphanedDevices.map { device in
                    OrphanedDeviceInfoReply(
                        devno: device.id.description, devType: typeModel(device.devType, device.devModel),
                        cuType: typeModel(device.cuType, device.cuModel), online: device.online
                    ).json
                }))
    }

    static func queryCSS(_ context: CommandContext) throws(QMPError) -> CommandOutcome {
        let subsystem = context.server.subsystem
        return .reply(
            .array(
                subsystem.cssids.map { cssid in
                    let summary = subsystem.summary(cssid: cssid)
                    return CSSInfoReply(
                        cssid: Int(cssid), subchannels: summary.subchannels, chpids: summary.channelPaths,
                        crwsQueued: summary.crwsQueued, crwsLost: summary.crwsLost
                    ).json
                }))
    }

    // MARK: query-subchannels

    /// Most `devno-ranges` one query-subchannels takes: each is checked against every
    /// subchannel walked.
    static let maxDeviceRanges = 256

    static func querySubchannels(_ arguments: QuerySubchannelsArguments, _ context: CommandContext) throws(QMPError)
        -> CommandOutcome
    {
        let subsystem = context.server.subsystem
        let (cssid, ssid, limit, start) = (arguments.cssid, arguments.ssid, arguments.limit, arguments.start)
        if let limit, !(1...maxPage).contains(limit) {
            throw .generic("Parameter 'limit' expects 1..\(maxPage)")
        }
        // `end` bounds the walk (ids ascend), so a range costs what it lists; `devno-range`
        // only filters what the walk meets.
        let end = arguments.end
        if let ranges = arguments.devnoRanges, ranges.count > maxDeviceRanges {
            throw .generic("Parameter 'devno-ranges' expects at most \(maxDeviceRanges) ranges")
        }
        // A range whose last is before its first matches nothing, as lscss's id_in_range.
        var devices: [ClosedRange<DeviceID>]?
        if let ranges = arguments.devnoRanges {
            devices = []
            for (index, range) in ranges.enumerated() {
                let first = try DeviceID(schemaText: range.first, argument: "devno-ranges[\(index)].first")
                let last = try DeviceID(schemaText: range.last, argument: "devno-ranges[\(index)].last")
                if first <= last { devices?.append(first...last) }
            }
        }
        func matches(_ subchannel: Subchannel) -> Bool {
            guard (cssid == nil || subchannel.id.cssid == cssid) && (ssid == nil || subchannel.id.ssid == ssid) else {
                return false
            }
            guard let devices else { return true }
            guard let device = subchannel.deviceID else { return false }
            return devices.contains { $0.contains(device) }
        }
        func beyondEnd(_ subchannel: Subchannel) -> Bool { end.map { subchannel.id > $0 } ?? false }
        let capacity = (limit ?? maxPage) + 1  // one more tells whether there is a next page
        var page: [Subchannel] = []
        page.reserveCapacity(min(capacity, 4097))

        if let device = arguments.devno {
            guard let subchannel = subsystem.subchannel(device: device) else {
                throw QMPError(.deviceNotFound, "no subchannel has device number \(device)")
            }
            if matches(subchannel) && (start == nil || subchannel.id >= start!) && !beyondEnd(subchannel) {
                page.append(subchannel)
            }
        } else if let chpid = arguments.chpid {
            guard subsystem.channelPath(chpid) != nil else {
                throw QMPError(.deviceNotFound, "channel path \(chpid) does not exist")
            }
            let members = subsystem.subchannels(using: chpid)
            var position = start.map { members.index(atOrAfter: $0) } ?? 0
            while position < members.endIndex && page.count < capacity {
                let subchannel = members[position]
                if beyondEnd(subchannel) { break }
                if matches(subchannel) { page.append(subchannel) }
                position += 1
            }
        } else {
            let all = subsystem.subchannels
            var position = start.map { subsystem.subchannelIndex(atOrAfter: $0) } ?? 0
            while position < all.count && page.count < capacity {
                if beyondEnd(all[position]) { break }
                if matches(all[position]) { page.append(all[position]) }
                position += 1
            }
        }

        var next: SubchannelID?
        if page.count == capacity {
            guard limit != nil else {
                throw .generic(
                    "query-subchannels: more than \(maxPage) subchannels match, more than one reply may carry; "
                        + "page with 'limit' (at most \(maxPage)) and 'start' (the reply's 'next')")
            }
            next = page.removeLast().id
        }
        let backend = context.server.backend
        var writer = SubchannelPageWriter(
            capacity: page.count, availability: arguments.availability ? { backend.deviceAvailability(of: $0) } : nil)
        return .reply(JSON(preserialized: writer.page(page, next: next)))
    }

    /// A page as the schema's `SubchannelPage`: the definition `SubchannelPageWriter` must match
    /// (tested).
    static func subchannelPage(
        _ page: [Subchannel], next: SubchannelID?, availability: ((Subchannel) -> DeviceAvailability?)? = nil
    ) -> JSON {
        SubchannelPageReply(
            subchannels: page.map { subchannelInfo($0, availability: availability?($0)) }, next: next?.description
        ).json
    }

    // MARK: Values

    /// - Parameter details: what the backend knows beyond the model; nil: the model's own
    ///   (shared known, no cmg, a topology's pchid is a physical channel id).
    private static func channelPathInfo(
        _ path: ChannelPath, _ details: ChannelPathDetails?, dasd: DASDChannelPathInfoReply? = nil
    ) -> JSON {
        ChannelPathInfoReply(
            chpid: path.id.description, type: Int(path.type), vary: path.vary, configure: path.configure,
            configureKnown: details?.configureKnown == false ? false : nil,
            shared: details == nil ? path.shared : details!.shared, cmg: details?.cmg,
            pchid: path.pchid.map { Int($0) }, chidExternal: path.pchid == nil ? nil : details?.chidExternal ?? true,
            subchannels: path.subchannelCount, dasd: dasd
        ).json
    }

    /// Whether query-subchannels says `"online": false`: a device that is there and offline.
    /// Never together with `"device": false`, so the longest entry stays as long as it was.
    static func reportsOffline(_ subchannel: Subchannel) -> Bool {
        subchannel.deviceID != nil && subchannel.hasDevice && !subchannel.isOnline
    }

    static func subchannelInfo(_ subchannel: Subchannel, availability: DeviceAvailability? = nil)
        -> SubchannelInfoReply
    {
        let pmcw = subchannel.schib.pmcw
        return SubchannelInfoReply(
            subchannel: subchannel.id.description, devno: subchannel.deviceID?.description ?? "",
            devType: typeModel(subchannel.devType, subchannel.devModel),
            cuType: typeModel(subchannel.cuType, subchannel.cuModel), enabled: pmcw.isEnabled,
            dnv: pmcw.deviceNumberValid, pim: Int(pmcw.pim), pam: Int(pmcw.pam), pom: Int(pmcw.pom),
            lpm: Int(pmcw.lpm), pnom: Int(pmcw.pnom), lpum: Int(pmcw.lpum),
            chpids: subchannel.channelPaths.map { $0.map { .string($0.description) } ?? .null },
            type: subchannel.type.description, qdio: pmcw.hasQDIOFacility ? true : nil,
            // Only a backend that observes path verification (Linux `vpm`) has it.
            vpm: subchannel.verifiedPathMask.map { Int($0) }, device: subchannel.hasDevice ? nil : false,
            online: Self.reportsOffline(subchannel) ? false : nil, availability: availability?.rawValue)
    }

    /// STSCH's result: cc 3 (no such subchannel) carries the cc alone.
    static func storeResult(_ result: StoreSubchannelResult) -> StoreSubchannelResultReply {
        StoreSubchannelResultReply(cc: result.cc, schib: result.schib.map(schibInfo), raw: result.schib?.hexString)
    }

    /// STCRW's result: the word and its fields (cc 1 and a zero word when none was queued).
    static func storeResult(_ result: StoreCRWResult) -> StoreCRWResultReply {
        StoreCRWResultReply(cc: result.cc, crw: Int(result.crw.rawValue), decoded: crwInfo(result.crw))
    }

    static func schibInfo(_ schib: SCHIB) -> SCHIBInfoReply {
        let pmcw = schib.pmcw
        return SCHIBInfoReply(
            intparm: Int(pmcw.intparm), isc: Int(pmcw.isc), enabled: pmcw.isEnabled, dnv: pmcw.deviceNumberValid,
            flags: Int(pmcw.flags), devno: Int(pmcw.devno), lpm: Int(pmcw.lpm), pnom: Int(pmcw.pnom),
            lpum: Int(pmcw.lpum), pim: Int(pmcw.pim), pam: Int(pmcw.pam), pom: Int(pmcw.pom),
            chpids: (0..<8).map { Int(pmcw.chpids[$0]) }, pno: schib.scsw.pathNotOperational,
            statusPending: schib.scsw.isStatusPending, mba: Int(truncatingIfNeeded: schib.mba))
    }

    static func crwInfo(_ crw: CRW) -> CRWDecodedReply {
        CRWDecodedReply(
            solicited: crw.solicited, overflow: crw.overflow, chained: crw.chained, rsc: Int(crw.source.rawValue),
            ancillary: crw.ancillary, erc: Int(crw.erc.rawValue), rsid: Int(crw.rsid))
    }

    /// `3390/0c`, as lscss prints device and control-unit types.
    private static func typeModel(_ type: UInt16, _ model: UInt8) -> String {
        Hex.string(type, width: 4) + "/" + Hex.string(model, width: 2)
    }

    // MARK: Path changes

    /// Runs a path operation and publishes its events.
    private static func pathChange(
        _ kind: PathEventChange, _ context: CommandContext, _ operation: () throws(BackendError) -> PathChange
    ) throws(QMPError) -> CommandOutcome {
        let change = try backendCall(operation)
        context.publish(change, as: kind)
        return .reply(changeReply(change))
    }

    private static func changeReply(_ change: PathChange) -> JSON {
        PathChangeResultReply(chpid: change.chpid.description, changed: change.affected.count, crws: change.crws.count)
            .json
    }

    /// A vary or configure, in the backend's one write shape: planned now, its blocking part
    /// (the sysfs write and the re-read of its chpid; none for the model) run where the session
    /// decides, then completed, published and replied to on the event loop. A re-read comes
    /// back with the outcome and is applied first: what it found on other paths is published
    /// as observed, before this command's own change and reply.
    ///
    /// With intent kept (`ServerState.intents`: linux-sysfs with `--state-dir`), a write that
    /// succeeded records `intent` (the field it wrote) in the blocking part, after the write
    /// and before the reply, so an acknowledged vary or configure is intended across a
    /// restart; a record that failed makes the reply a GenericError saying the write was made.
    ///
    /// `removing`: the chpid a vary offline or a standby takes away, counted as gone by the
    /// last-path interlock until the write completes (`ServerState.pathsGoing`).
    private static func pathWrite(
        _ kind: PathEventChange, _ context: CommandContext, intent: IntentUpdate? = nil,
        removing: ChannelPathID? = nil,
        plan: (ChannelSubsystemBackend) throws(BackendError) -> PendingWrite
    ) throws(QMPError) -> CommandOutcome {
        let backend = context.server.backend
        let write = try backendCall { () throws(BackendError) in try plan(backend) }
        let server = context.server
        // Only a write that blocks (sysfs) records intent; the model keeps none.
        let intents = write.perform == nil ? nil : intent.flatMap { _ in server.intents }
        let recordFailure = IntentRecordFailure()
        let blocking: (@Sendable () -> DeferredWork.Outcome)?
        if let log = intents?.log, let intent, let perform = write.perform {
            blocking = {
                let outcome = perform()
                guard case .success = outcome else { return outcome }
                do {
                    try log.recordIntent(intent)
                } catch {
                    recordFailure.message.withLock { $0 = "\(error)" }
                }
                return outcome
            }
        } else {
            blocking = write.perform
        }
        let going = removing.map(PathGoing.init)
        if let going { server.pathsGoing.append(WeakPathGoing(value: going)) }
        return .deferred(
            DeferredWork(blocking: blocking) { (outcome) throws(QMPError) in
                if let going { server.pathsGoing.removeAll { $0.value === going || $0.value == nil } }
                let failure = recordFailure.message.withLock { $0 }
                // Memory follows the record, before the reading: the drift check it makes
                // compares the new state with the new intent.
                if let intents, let intent, case .success = outcome, failure == nil { intents.update(intent) }
                if case .success(let reading?) = outcome { server.applyObserved(reading) }
                let change = try backendCall { () throws(BackendError) in try backend.completeWrite(write, outcome) }
                context.publish(change, as: kind)
                intents?.publishDrift(server)
                if let failure {
                    throw .generic(
                        "the write was made, but its intent could not be recorded in the state dir: \(failure)")
                }
                return changeReply(change)
            })
    }

    /// Runs a backend operation; an unknown id is DeviceNotFound, every other refusal
    /// (including the source's, e.g. a sysfs write the kernel rejected) GenericError.
    static func backendCall<T>(_ body: () throws(BackendError) -> T) throws(QMPError) -> T {
        do throws(BackendError) {
            return try body()
        } catch {
            if case .model(let model) = error, model.isNotFound { throw QMPError(.deviceNotFound, model.description) }
            throw .generic(error.description)
        }
    }
}

/// A failure to record a write's intent, carried from the blocking part to the reply.
private final class IntentRecordFailure: Sendable {
    let message = Mutex<String?>(nil)
}
