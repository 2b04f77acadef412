// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import JSONValues
import PathEvents
import QMPWire

/// The commands of API/path-events.json: subscriptions of the calling connection. One static
/// method per command, as the generated `PathEventCommandsSchema` requires.
enum PathEventCommands {
    /// Largest `queue-limit` a subscription may ask for.
    static let maxQueueLimit = 1 << 20

    static func subscribePathEvents(_ arguments: SubscribePathEventsArguments, _ context: CommandContext)
        throws(QMPError) -> CommandOutcome
    {
        let server = context.server
        let filter = try filter(arguments, server)
        // The default is the server's option, not the schema's: it is set when cssd starts.
        let limit = arguments.queueLimit ?? server.options.eventQueueLimit
        guard (1...maxQueueLimit).contains(limit) else {
            throw .generic("Parameter 'queue-limit' expects 1..\(maxQueueLimit)")
        }
        var resume: PathEventResume?
        if let since = arguments.since {
            let epoch = since.epoch
            let sequence = since.sequence
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
        // Subscriptions belong to a client's connection; the replay runs no subscription command.
        guard let owner = context.connection else { throw .generic("subscriptions belong to a client connection") }
        do throws(PathEventHub.HubError) {
            let id = try server.pathEvents.subscribe(
                owner: owner, filter: filter, queueLimit: limit, resume: resume,
                at: context.now())
            return .reply(PathEventSubscribedReply(subscription: id).json)
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

    static func unsubscribePathEvents(_ arguments: UnsubscribePathEventsArguments, _ context: CommandContext)
        throws(QMPError) -> CommandOutcome
    {
        let id = arguments.subscription
        do throws(PathEventHub.HubError) {
            guard let owner = context.connection else { throw .unknownSubscription(id) }
            try context.server.pathEvents.unsubscribe(owner: owner, id: id)
        } catch {
            throw .generic("subscription \(id) does not exist on this connection")
        }
        return .reply(.emptyObject())
    }

    static func queryPathEventJournal(_ context: CommandContext) throws(QMPError) -> CommandOutcome {
        let journal = context.server.journal
        // With --state-dir a change is not a position to resume from until it is durable (a
        // crash before would give its number to another change): the newest durable one, as
        // subscribers see them.
        let newest = min(journal.newest, context.server.deliverableThrough)
        return .reply(
            PathEventJournalInfoReply(
                epoch: journal.epoch, oldest: journal.oldest.map { Int($0) }, newest: Int(newest),
                capacity: journal.capacity, held: journal.count
            ).json)
    }

    static func queryPathEventSubscriptions(_ context: CommandContext) throws(QMPError) -> CommandOutcome {
        .reply(.array((context.connection.map(context.server.pathEvents.subscriptions(of:)) ?? []).map(info)))
    }

    /// The `--notify` publisher's state (API/notify.md); `{"enabled": false}` without it.
    static func queryNotify(_ context: CommandContext) throws(QMPError) -> CommandOutcome {
        .reply(context.server.notifyStatus?() ?? NotifyInfoReply(enabled: false).json)
    }

    /// The filter the arguments ask for; every id must exist.
    private static func filter(_ arguments: SubscribePathEventsArguments, _ server: ServerState) throws(QMPError)
        -> PathEventFilter
    {
        let subsystem = server.subsystem
        let cssid = arguments.cssid
        var chpids: Set<ChannelPathID>?
        if let ids = arguments.chpids {
            guard !ids.isEmpty else {
                throw .generic("Parameter 'chpids' must not be empty: omit it to match every chpid")
            }
            var set = Set<ChannelPathID>()
            for id in ids {
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
        if let ids = arguments.subchannels {
            guard !ids.isEmpty else {
                throw .generic("Parameter 'subchannels' must not be empty: omit it to match every subchannel")
            }
            var set = Set<SubchannelID>()
            for id in ids {
                guard let subchannel = subsystem.subchannel(id) else {
                    throw QMPError(.deviceNotFound, "subchannel \(id) does not exist")
                }
                set.insert(id)
                for case let path? in subchannel.channelPaths { paths.insert(path) }
            }
            subchannels = set
        }
        var guests: Set<String>?
        if let names = arguments.guests {
            guard !names.isEmpty else {
                throw .generic("Parameter 'guests' must not be empty: omit it to match every guest")
            }
            // The model's guests, or on linux-sysfs those holding mdevs as last read.
            let hostGuests = Set(server.backend.hostPassthrough?.guests.map(\.name) ?? [])
            for name in names where server.guests.guests[name] == nil && !hostGuests.contains(name) {
                throw QMPError(.deviceNotFound, "guest '\(name)' does not exist")
            }
            guests = Set(names)
        }
        var changes: Set<PathEventChange>?
        if let kinds = arguments.changes {
            guard !kinds.isEmpty else {
                throw .generic("Parameter 'changes' must not be empty: omit it to match every change")
            }
            changes = Set(kinds)
        }
        var utilization: UtilizationThreshold?
        if let asked = arguments.utilization {
            do throws(UtilizationThresholdError) {
                utilization = try UtilizationThreshold(
                    metric: asked.metric ?? .utilTotal, threshold: asked.threshold,
                    hysteresis: asked.hysteresis ?? min(5, max(asked.threshold, 0)))
            } catch {
                throw .generic("Parameter 'utilization': \(error)")
            }
        }
        return PathEventFilter(
            granularity: arguments.granularity, chpids: chpids, subchannels: subchannels, pathsOfSubchannels: paths,
            cssid: cssid, changes: changes, guests: guests, utilization: utilization)
    }

    private static func info(_ subscription: PathEventHub.Subscription) -> JSON {
        let filter = subscription.filter
        let queue = subscription.queue
        var members: [(String, JSON)] = [
            ("subscription", .integer(subscription.id)),
            ("granularity", .string(filter.granularity.rawValue)),
        ]
        if let chpids = filter.chpids {
            members.append(("chpids", .array(chpids.sorted().map { .string($0.description) })))
        }
        if let subchannels = filter.subchannels {
            members.append(("subchannels", .array(subchannels.sorted().map { .string($0.description) })))
        }
        if let cssid = filter.cssid { members.append(("cssid", .integer(Int(cssid)))) }
        if let guests = filter.guests { members.append(("guests", .array(guests.sorted().map { .string($0) }))) }
        if let changes = filter.changes {
            let ordered = PathEventChange.allCases.filter(changes.contains)
            members.append(("changes", .array(ordered.map { .string($0.rawValue) })))
        }
        if let threshold = filter.utilization {
            members.append(
                (
                    "utilization",
                    .object([
                        ("threshold", .real(threshold.threshold)), ("hysteresis", .real(threshold.hysteresis)),
                        ("metric", .string(threshold.metric.rawValue)),
                    ])
                ))
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
