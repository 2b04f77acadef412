// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import PathEvents
import QMPWire

/// The commands of API/path-events.json: subscriptions of the calling connection.
enum PathEventCommands {
    /// Largest `queue-limit` a subscription may ask for.
    static let maxQueueLimit = 1 << 20

    static func register(into registry: inout CommandRegistry) {
        registry.register("subscribe-path-events") { (arguments, context) throws(QMPError) in
            let server = context.server
            let filter = try filter(arguments, server)
            let limit = arguments.int("queue-limit") ?? server.options.eventQueueLimit
            guard (1...maxQueueLimit).contains(limit) else {
                throw .generic("Parameter 'queue-limit' expects 1..\(maxQueueLimit)")
            }
            var resume: PathEventResume?
            if let since = arguments.json("since") {
                let epoch = since["epoch"]!.stringValue!
                let sequence = since["sequence"]!.intValue!
                guard sequence >= 0 else { throw .generic("Parameter 'since.sequence' expects a sequence number >= 0") }
                do throws(PathEventJournal.ResumeError) {
                    resume = try server.journal.resume(epoch: epoch, after: UInt64(sequence))
                } catch {
                    guard case .ahead(let position, let newest) = error else { fatalError("one case") }
                    throw .generic(
                        "'since' names change \(position) of epoch \(epoch), but the newest change of that epoch is "
                            + "\(newest)")
                }
            }
            do throws(PathEventHub.HubError) {
                let id = try server.pathEvents.subscribe(
                    owner: context.session.connectionID, filter: filter, queueLimit: limit, resume: resume,
                    at: server.clock())
                return .object([("subscription", .integer(id))])
            } catch {
                switch error {
                case .tooManySubscriptions(let most):
                    throw .generic("this connection already has \(most) subscriptions, the most it may hold")
                case .queueBudgetExceeded(let budget, let used):
                    throw .generic(
                        "'queue-limit' \(limit) would make this connection's queues hold more than \(budget) events "
                            + "(its other subscriptions take \(used)): pass a smaller 'queue-limit'")
                case .unknownSubscription: fatalError("subscribe never reports an unknown subscription")
                }
            }
        }
        registry.register("unsubscribe-path-events") { (arguments, context) throws(QMPError) in
            let id = arguments.int("subscription")!
            do throws(PathEventHub.HubError) {
                try context.server.pathEvents.unsubscribe(owner: context.session.connectionID, id: id)
            } catch {
                throw .generic("subscription \(id) does not exist on this connection")
            }
            return .emptyObject()
        }
        registry.register("query-path-event-journal") { (_, context) throws(QMPError) in
            let journal = context.server.journal
            var members: [(String, JSON)] = [
                ("epoch", .string(journal.epoch)),
                ("newest", .integer(Int(journal.newest))),
                ("capacity", .integer(journal.capacity)),
                ("held", .integer(journal.count)),
            ]
            if let oldest = journal.oldest { members.insert(("oldest", .integer(Int(oldest))), at: 1) }
            return .object(members)
        }
        registry.register("query-path-event-subscriptions") { (_, context) throws(QMPError) in
            .array(context.server.pathEvents.subscriptions(of: context.session.connectionID).map(info))
        }
    }

    /// The filter the arguments ask for; every id must be well-formed and exist.
    private static func filter(_ arguments: Arguments, _ server: ServerState) throws(QMPError) -> PathEventFilter {
        let subsystem = server.subsystem
        let granularity = PathEventGranularity(rawValue: arguments.string("granularity") ?? "chpid")!
        let cssid = arguments.int("cssid").map { UInt8($0) }
        var chpids: Set<ChannelPathID>?
        if let texts = arguments.strings("chpids") {
            guard !texts.isEmpty else { throw .generic("Parameter 'chpids' must not be empty: omit it to match every chpid") }
            var set = Set<ChannelPathID>()
            for text in texts {
                let id = try CSSCommands.channelPathID(text, argument: "chpids")
                guard subsystem.channelPath(id) != nil else {
                    throw QMPError(.deviceNotFound, "channel path \(id) does not exist")
                }
                if let cssid, id.cssid != cssid {
                    throw .generic("chpid \(id) is not in css \(Hex.string(cssid)): the filter could never match")
                }
                set.insert(id)
            }
            chpids = set
        }
        var subchannels: Set<SubchannelID>?
        var paths = Set<ChannelPathID>()
        if let texts = arguments.strings("subchannels") {
            guard !texts.isEmpty else {
                throw .generic("Parameter 'subchannels' must not be empty: omit it to match every subchannel")
            }
            var set = Set<SubchannelID>()
            for text in texts {
                let id = try CSSCommands.subchannelID(text, argument: "subchannels")
                guard let subchannel = subsystem.subchannel(id) else {
                    throw QMPError(.deviceNotFound, "subchannel \(id) does not exist")
                }
                set.insert(id)
                for case let path? in subchannel.channelPaths { paths.insert(path) }
            }
            subchannels = set
        }
        var guests: Set<String>?
        if let names = arguments.strings("guests") {
            guard !names.isEmpty else { throw .generic("Parameter 'guests' must not be empty: omit it to match every guest") }
            for name in names where server.guests.guests[name] == nil {
                throw QMPError(.deviceNotFound, "guest '\(name)' does not exist")
            }
            guests = Set(names)
        }
        var changes: Set<PathEventChange>?
        if let texts = arguments.strings("changes") {
            guard !texts.isEmpty else { throw .generic("Parameter 'changes' must not be empty: omit it to match every change") }
            changes = Set(texts.map { PathEventChange(rawValue: $0)! })
        }
        return PathEventFilter(
            granularity: granularity, chpids: chpids, subchannels: subchannels, pathsOfSubchannels: paths,
            cssid: cssid, changes: changes, guests: guests)
    }

    private static func info(_ subscription: PathEventHub.Subscription) -> JSON {
        let filter = subscription.filter
        let queue = subscription.queue
        var members: [(String, JSON)] = [
            ("subscription", .integer(subscription.id)),
            ("granularity", .string(filter.granularity.rawValue)),
        ]
        if let chpids = filter.chpids { members.append(("chpids", .array(chpids.sorted().map { .string($0.description) }))) }
        if let subchannels = filter.subchannels {
            members.append(("subchannels", .array(subchannels.sorted().map { .string($0.description) })))
        }
        if let cssid = filter.cssid { members.append(("cssid", .integer(Int(cssid)))) }
        if let guests = filter.guests { members.append(("guests", .array(guests.sorted().map { .string($0) }))) }
        if let changes = filter.changes {
            let ordered = PathEventChange.allCases.filter(changes.contains)
            members.append(("changes", .array(ordered.map { .string($0.rawValue) })))
        }
        members += [
            ("queue-limit", .integer(queue.limit)),
            ("published", .integer(subscription.published)),
            ("delivered", .integer(queue.delivered)),
            ("coalesced", .integer(queue.coalesced)),
            ("dropped", .integer(queue.dropped)),
            ("queued", .integer(queue.count)),
        ]
        return .object(members)
    }
}
