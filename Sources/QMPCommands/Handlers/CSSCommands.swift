// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import PathEvents
import QMPWire

/// The channel-subsystem commands of API/css.json, over `ServerState.backend`: queries read
/// its current view, operations go through it.
///
/// Ids arrive as strings in Linux notation; a malformed one is a GenericError that names the
/// argument and the accepted form, an unknown one DeviceNotFound. Instructions (STSCH, MSCH,
/// RCHP) report a nonexistent subchannel or chpid the architected way, with cc 3.
enum CSSCommands {
    /// Most subchannels one query-subchannels reply may carry (about 280 bytes each: 4.5 MiB,
    /// well under the 10 MiB line qemu.qmp reads by default).
    static let maxPage = 16384

    static func register(into registry: inout CommandRegistry) {
        registry.register("query-chpids") { (arguments, context) throws(QMPError) in
            let cssid = arguments.int("cssid")
            let backend = context.server.backend
            let paths = backend.subsystem.channelPaths.filter { cssid == nil || Int($0.id.cssid) == cssid }
            return .array(paths.map { channelPathInfo($0, backend.details(of: $0.id)) })
        }
        registry.register("query-subchannels") { (arguments, context) throws(QMPError) in
            try querySubchannels(arguments, context.server.subsystem)
        }
        registry.register("store-subchannel") { (arguments, context) throws(QMPError) in
            let id = try subchannelID(arguments.string("subchannel")!)
            let result = context.server.subsystem.storeSubchannel(id)
            guard let schib = result.schib else { return .object([("cc", .integer(result.cc))]) }
            return .object([("cc", .integer(result.cc)), ("schib", schibInfo(schib)), ("raw", .string(schib.hexString))])
        }
        registry.register("modify-subchannel") { (arguments, context) throws(QMPError) in
            let id = try subchannelID(arguments.string("subchannel")!)
            // MSCH takes a whole SCHIB: start from the current one and apply what was given.
            var schib = context.server.subsystem.storeSubchannel(id).schib ?? SCHIB()
            if let intparm = arguments.int("intparm") { schib.pmcw.intparm = UInt32(intparm) }
            if let isc = arguments.int("isc") {
                guard isc <= 7 else { throw .generic("Parameter 'isc' expects 0..7") }
                schib.pmcw.flags = schib.pmcw.flags & ~PMCW.Flags.isc | UInt16(isc) << 11
            }
            if let enabled = arguments.bool("enabled") {
                schib.pmcw.flags = enabled ? schib.pmcw.flags | PMCW.Flags.enabled : schib.pmcw.flags & ~PMCW.Flags.enabled
            }
            if let lpm = arguments.int("lpm") { schib.pmcw.lpm = UInt8(lpm) }
            if let flags = arguments.int("flags") { schib.pmcw.flags = UInt16(flags) }
            let result = try backendCall { () throws(BackendError) in
                try context.server.backend.modifySubchannel(id, schib: schib)
            }
            return .object([("cc", .integer(result.cc))])
        }
        registry.register("store-crw") { (_, context) throws(QMPError) in
            let result = try backendCall { () throws(BackendError) in try context.server.backend.storeChannelReportWord() }
            return .object([("cc", .integer(result.cc)), ("crw", .integer(Int(result.crw.rawValue))), ("decoded", crwInfo(result.crw))])
        }
        registry.register("reset-channel-path") { (arguments, context) throws(QMPError) in
            let id = try channelPathID(arguments.string("chpid")!)
            let server = context.server
            let result = try backendCall { () throws(BackendError) in try server.backend.resetChannelPath(id) }
            if result.cc == 0, let path = server.subsystem.channelPath(id) {
                server.pathChanges.publish(
                    PathChange(resetOf: path, crws: result.crws), as: .reset,
                    cause: .command(connection: context.session.connectionID))
            }
            return .object([("cc", .integer(result.cc))])
        }
        registry.register("vary-path") { (arguments, context) throws(QMPError) in
            let id = try channelPathID(arguments.string("chpid")!)
            let state = VaryState(rawValue: arguments.string("state")!)!
            if let text = arguments.string("subchannel") {
                let subchannel = try subchannelID(text)
                return try pathChange(PathEventChange(state), context) { () throws(BackendError) in
                    try context.server.backend.varyPath(id, to: state, subchannel: subchannel)
                }
            }
            return try pathWrite(
                PathEventChange(state), context,
                plan: { (backend) throws(BackendError) in try backend.planVary(id, to: state) },
                direct: { () throws(BackendError) in try context.server.backend.varyPath(id, to: state) })
        }
        registry.register("configure-chpid") { (arguments, context) throws(QMPError) in
            let id = try channelPathID(arguments.string("chpid")!)
            let state = ConfigureState(name: arguments.string("state")!)!
            return try pathWrite(
                PathEventChange(state)!, context,
                plan: { (backend) throws(BackendError) in try backend.planConfigure(id, to: state) },
                direct: { () throws(BackendError) in try context.server.backend.configurePath(id, to: state) })
        }
        registry.register("inject-path-fault") { (arguments, context) throws(QMPError) in
            let id = try channelPathID(arguments.string("chpid")!)
            let fault = PathFault(rawValue: arguments.string("fault")!)!
            return try pathChange(PathEventChange(fault), context) { () throws(BackendError) in
                try context.server.backend.injectPathFault(id, fault)
            }
        }
        registry.register("query-css") { (_, context) throws(QMPError) in
            let subsystem = context.server.subsystem
            return .array(subsystem.cssids.map { cssid in
                let summary = subsystem.summary(cssid: cssid)
                return .object([
                    ("cssid", .integer(Int(cssid))),
                    ("subchannels", .integer(summary.subchannels)),
                    ("chpids", .integer(summary.channelPaths)),
                    ("crws-queued", .integer(summary.crwsQueued)),
                    ("crws-lost", .integer(summary.crwsLost)),
                ])
            })
        }
    }

    // MARK: query-subchannels

    private static func querySubchannels(_ arguments: Arguments, _ subsystem: Subsystem) throws(QMPError) -> JSON {
        let cssid = arguments.int("cssid")
        let ssid = arguments.int("ssid")
        let limit = arguments.int("limit")
        if let limit, !(1...maxPage).contains(limit) {
            throw .generic("Parameter 'limit' expects 1..\(maxPage)")
        }
        let start = try arguments.string("start").map { (text) throws(QMPError) in try subchannelID(text, argument: "start") }
        func matches(_ subchannel: Subchannel) -> Bool {
            (cssid == nil || Int(subchannel.id.cssid) == cssid) && (ssid == nil || Int(subchannel.id.ssid) == ssid)
        }
        let capacity = (limit ?? maxPage) + 1  // one more tells whether there is a next page
        var page: [Subchannel] = []
        page.reserveCapacity(min(capacity, 4097))

        if let text = arguments.string("devno") {
            let device = try deviceID(text)
            guard let subchannel = subsystem.subchannel(device: device) else {
                throw QMPError(.deviceNotFound, "no subchannel has device number \(device)")
            }
            if matches(subchannel) && (start == nil || subchannel.id >= start!) { page.append(subchannel) }
        } else if let text = arguments.string("chpid") {
            let chpid = try channelPathID(text)
            guard subsystem.channelPath(chpid) != nil else {
                throw QMPError(.deviceNotFound, "channel path \(chpid) does not exist")
            }
            let members = subsystem.subchannels(using: chpid)
            var position = start.map { members.index(atOrAfter: $0) } ?? 0
            while position < members.endIndex && page.count < capacity {
                let subchannel = members[position]
                if matches(subchannel) { page.append(subchannel) }
                position += 1
            }
        } else {
            let all = subsystem.subchannels
            var position = start.map { subsystem.subchannelIndex(atOrAfter: $0) } ?? 0
            while position < all.count && page.count < capacity {
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
        var writer = SubchannelPageWriter(capacity: page.count)
        return JSON(preserialized: writer.page(page, next: next))
    }

    /// A page as a jansson tree: the definition `SubchannelPageWriter` must match (tested).
    static func subchannelPage(_ page: [Subchannel], next: SubchannelID?) -> JSON {
        var members: [(String, JSON)] = [("subchannels", .array(page.map(subchannelInfo)))]
        if let next { members.append(("next", .string(next.description))) }
        return .object(members)
    }

    // MARK: Values

    /// - Parameter details: what the backend knows beyond the model; nil: the model's own
    ///   (shared known, no cmg, a topology's pchid is a physical channel id).
    private static func channelPathInfo(_ path: ChannelPath, _ details: ChannelPathDetails?) -> JSON {
        var members: [(String, JSON)] = [
            ("chpid", .string(path.id.description)),
            ("type", .integer(Int(path.type))),
            ("vary", .string(path.vary.description)),
            ("configure", .string(path.configure.description)),
        ]
        if details?.configureKnown == false { members.append(("configure-known", .bool(false))) }
        if let shared = details == nil ? path.shared : details!.shared { members.append(("shared", .bool(shared))) }
        if let cmg = details?.cmg { members.append(("cmg", .integer(cmg))) }
        if let pchid = path.pchid {
            members += [("pchid", .integer(Int(pchid))), ("chid-external", .bool(details?.chidExternal ?? true))]
        }
        members.append(("subchannels", .integer(path.subchannelCount)))
        return .object(members)
    }

    static func subchannelInfo(_ subchannel: Subchannel) -> JSON {
        let pmcw = subchannel.schib.pmcw
        return .object([
            ("subchannel", .string(subchannel.id.description)),
            ("devno", .string(subchannel.deviceID?.description ?? "")),
            ("dev-type", .string(typeModel(subchannel.devType, subchannel.devModel))),
            ("cu-type", .string(typeModel(subchannel.cuType, subchannel.cuModel))),
            ("enabled", .bool(pmcw.isEnabled)),
            ("dnv", .bool(pmcw.deviceNumberValid)),
            ("pim", .integer(Int(pmcw.pim))),
            ("pam", .integer(Int(pmcw.pam))),
            ("pom", .integer(Int(pmcw.pom))),
            ("lpm", .integer(Int(pmcw.lpm))),
            ("pnom", .integer(Int(pmcw.pnom))),
            ("lpum", .integer(Int(pmcw.lpum))),
            ("chpids", .array(subchannel.channelPaths.map { $0.map { .string($0.description) } ?? .null })),
        ])
    }

    static func schibInfo(_ schib: SCHIB) -> JSON {
        let pmcw = schib.pmcw
        return .object([
            ("intparm", .integer(Int(pmcw.intparm))),
            ("isc", .integer(Int(pmcw.isc))),
            ("enabled", .bool(pmcw.isEnabled)),
            ("dnv", .bool(pmcw.deviceNumberValid)),
            ("flags", .integer(Int(pmcw.flags))),
            ("devno", .integer(Int(pmcw.devno))),
            ("lpm", .integer(Int(pmcw.lpm))),
            ("pnom", .integer(Int(pmcw.pnom))),
            ("lpum", .integer(Int(pmcw.lpum))),
            ("pim", .integer(Int(pmcw.pim))),
            ("pam", .integer(Int(pmcw.pam))),
            ("pom", .integer(Int(pmcw.pom))),
            ("chpids", .array((0..<8).map { .integer(Int(pmcw.chpids[$0])) })),
            ("pno", .bool(schib.scsw.pathNotOperational)),
            ("status-pending", .bool(schib.scsw.isStatusPending)),
            ("mba", .integer(Int(truncatingIfNeeded: schib.mba))),
        ])
    }

    static func crwInfo(_ crw: CRW) -> JSON {
        .object([
            ("solicited", .bool(crw.solicited)),
            ("overflow", .bool(crw.overflow)),
            ("chained", .bool(crw.chained)),
            ("rsc", .integer(Int(crw.source.rawValue))),
            ("ancillary", .bool(crw.ancillary)),
            ("erc", .integer(Int(crw.erc.rawValue))),
            ("rsid", .integer(Int(crw.rsid))),
        ])
    }

    /// `3390/0c`, as lscss prints device and control-unit types.
    private static func typeModel(_ type: UInt16, _ model: UInt8) -> String {
        Hex.string(type, width: 4) + "/" + Hex.string(model, width: 2)
    }

    // MARK: Ids and errors

    static func subchannelID(_ text: String, argument: String = "subchannel") throws(QMPError) -> SubchannelID {
        do throws(IDParseError) { return try SubchannelID(parsing: text, argument: argument) } catch {
            throw .generic(error.description)
        }
    }

    static func channelPathID(_ text: String, argument: String = "chpid") throws(QMPError) -> ChannelPathID {
        do throws(IDParseError) { return try ChannelPathID(parsing: text, argument: argument) } catch {
            throw .generic(error.description)
        }
    }

    private static func deviceID(_ text: String) throws(QMPError) -> DeviceID {
        do throws(IDParseError) { return try DeviceID(parsing: text, argument: "devno") } catch {
            throw .generic(error.description)
        }
    }

    /// Runs a path operation and publishes its events.
    private static func pathChange(
        _ kind: PathEventChange, _ context: CommandContext, _ operation: () throws(BackendError) -> PathChange
    ) throws(QMPError) -> JSON {
        let change = try backendCall(operation)
        context.server.pathChanges.publish(change, as: kind, cause: .command(connection: context.session.connectionID))
        return changeReply(change)
    }

    private static func changeReply(_ change: PathChange) -> JSON {
        .object([
            ("chpid", .string(change.chpid.description)),
            ("changed", .integer(change.affected.count)),
            ("crws", .integer(change.crws.count)),
        ])
    }

    /// A vary or configure. When the backend's write may block (sysfs `configure` waits for
    /// SCLP) and the connection can wait for it, it is planned now, written off the event loop,
    /// re-read and published when done, and the reply follows then; otherwise done at once.
    private static func pathWrite(
        _ kind: PathEventChange, _ context: CommandContext,
        plan: (BlockingWriteBackend) throws(BackendError) -> PendingWrite,
        direct: () throws(BackendError) -> PathChange
    ) throws(QMPError) -> JSON {
        guard let backend = context.server.backend as? BlockingWriteBackend, context.session.canDefer else {
            return try pathChange(kind, context, direct)
        }
        let write = try backendCall { () throws(BackendError) in try plan(backend) }
        let publisher = context.server.pathChanges
        let cause = PathChangeCause.command(connection: context.session.connectionID)
        context.session.deferReply(
            DeferredWork(blocking: write.perform) { (outcome) throws(QMPError) in
                let change = try backendCall { () throws(BackendError) in try backend.completeWrite(write, outcome) }
                publisher.publish(change, as: kind, cause: cause)
                return changeReply(change)
            })
        return .null  // not sent: the deferred work's reply is
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
