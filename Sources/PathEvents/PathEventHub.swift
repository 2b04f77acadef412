// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import VFIOCCW

/// The subscriptions of every connection and the fan-out of path changes to them.
///
/// Pure and deterministic: connections are opaque owners (`ConnectionID`), time is passed in. Each
/// change is turned into one chpid event and one event per affected subchannel (in
/// subchannel-id order), and each subscription whose filter admits them gets them in its own
/// bounded queue. Fan-out cost: O(1) per "chpid" subscription and O(affected subchannels) per
/// "subchannel" one; subscriptions with a chpid filter are indexed, so a change costs
/// nothing for subscriptions to other chpids.
package struct PathEventHub: Sendable {
    package struct Subscription: Sendable {
        package let id: Int
        package let owner: ConnectionID
        package let filter: PathEventFilter
        package internal(set) var queue: PathEventQueue
        /// Events handed to this subscription's queue.
        package internal(set) var published = 0
        /// Its chpids against its utilization threshold (`filter.utilization`).
        var watch: UtilizationWatch?
    }

    package enum HubError: Error, Equatable, Sendable {
        case tooManySubscriptions(limit: Int)
        /// The owner's queue limits would add up to more than `budget` events.
        case queueBudgetExceeded(budget: Int, used: Int)
        case unknownSubscription(Int)
    }

    /// Most subscriptions one connection may hold.
    package let maxSubscriptionsPerOwner: Int
    /// Most events one connection's queues may hold together: bounds a stalled client's memory.
    package let maxQueuedPerOwner: Int
    private var subscriptions: [Int: Subscription] = [:]
    private var byOwner: [ConnectionID: [Int]] = [:]
    /// Subscriptions whose filter names chpids, by chpid; the rest take every chpid.
    private var byChpid: [ChannelPathID: [Int]] = [:]
    private var anyChpid: [Int] = []
    /// Subscriptions with a utilization threshold, in id order.
    private var watching: [Int] = []
    private var nextID = 1
    private var nextSequence: UInt64 = 1
    /// A small number per guest name, for coalescing keys.
    private var guestNumbers: [String: UInt32] = [:]
    /// What ended subscriptions counted, per granularity (`totals()`).
    private(set) var retiredTotals: [PathEventGranularity: PathEventTotals] = [:]

    package init(maxSubscriptionsPerOwner: Int = 64, maxQueuedPerOwner: Int = 1 << 20) {
        self.maxSubscriptionsPerOwner = maxSubscriptionsPerOwner
        self.maxQueuedPerOwner = maxQueuedPerOwner
    }

    /// The sum of `owner`'s queue limits.
    package func queueBudgetUsed(by owner: ConnectionID) -> Int {
        (byOwner[owner] ?? []).reduce(0) { $0 + subscriptions[$1]!.queue.limit }
    }

    // MARK: Subscriptions

    /// Adds a subscription of `owner`.
    /// - Parameter resume: the past to queue first (`PathEventJournal.resume`), for a subscriber
    ///   that gave its position.
    /// - Returns: its id.
    package mutating func subscribe(
        owner: ConnectionID, filter: PathEventFilter, queueLimit: Int, resume: PathEventResume? = nil,
        at now: EventTime = EventTime(seconds: 0, microseconds: 0)
    ) throws(HubError) -> Int {
        guard byOwner[owner, default: []].count < maxSubscriptionsPerOwner else {
            throw .tooManySubscriptions(limit: maxSubscriptionsPerOwner)
        }
        let used = queueBudgetUsed(by: owner)
        guard used + queueLimit <= maxQueuedPerOwner else {
            throw .queueBudgetExceeded(budget: maxQueuedPerOwner, used: used)
        }
        let id = nextID
        nextID += 1
        subscriptions[id] = Subscription(
            id: id, owner: owner, filter: filter, queue: PathEventQueue(limit: queueLimit),
            watch: filter.utilization.map(UtilizationWatch.init))
        if filter.utilization != nil { watching.append(id) }
        byOwner[owner, default: []].append(id)
        if let scope = filter.scope {
            for chpid in scope { byChpid[chpid, default: []].append(id) }
        } else {
            anyChpid.append(id)
        }
        if let resume { replay(resume, into: id, at: now) }
        return id
    }

    /// Queues a resuming subscription's past, in the same call that creates it: nothing can be
    /// published in between, so the live events that follow start right after the last change
    /// replayed (no gap, no duplicate). The gap report comes first; each change is filtered and
    /// split by the subscription's own filter and granularity, with its own timestamp. Replayed
    /// events are not coalesced (the subscriber asked for each change); a replay larger than
    /// the queue drops its oldest events and says so (PATH_EVENTS_DROPPED). Cost: O(replayed
    /// changes x their events).
    private mutating func replay(_ resume: PathEventResume, into id: Int, at now: EventTime) {
        if let gap = resume.gap {
            subscriptions[id]!.queue.push(
                QueuedPathEvent(sequence: nextSequence, time: now, event: .gap(gap), change: resume.after),
                coalescing: false)
            nextSequence += 1
        }
        var reached = PathEventFanOut()
        for entry in resume.changes {
            let (event, guestEvents, first) = prepare(
                entry.change, as: entry.kind, guests: entry.guests, hostGuests: entry.hostGuests, cause: entry.cause)
            deliver(
                event, entry.change.affected, guestEvents, to: id, sequence: first, change: entry.sequence,
                time: entry.time, coalescing: false, announcesPath: Self.announcesPath(entry.change, as: entry.kind),
                &reached)
        }
    }

    /// Ends a subscription of `owner`; others' subscriptions are unknown to it.
    package mutating func unsubscribe(owner: ConnectionID, id: Int) throws(HubError) {
        guard let subscription = subscriptions[id], subscription.owner == owner else { throw .unknownSubscription(id) }
        remove(subscription)
    }

    /// Ends every subscription of `owner` (its connection closed).
    package mutating func removeOwner(_ owner: ConnectionID) {
        for id in byOwner[owner] ?? [] { remove(subscriptions[id]!) }
    }

    private mutating func remove(_ subscription: Subscription) {
        retiredTotals[subscription.filter.granularity, default: PathEventTotals()].add(subscription, live: false)
        subscriptions[subscription.id] = nil
        if subscription.watch != nil { watching.removeAll { $0 == subscription.id } }
        byOwner[subscription.owner]?.removeAll { $0 == subscription.id }
        if byOwner[subscription.owner]?.isEmpty == true { byOwner[subscription.owner] = nil }
        if let scope = subscription.filter.scope {
            for chpid in scope {
                byChpid[chpid]?.removeAll { $0 == subscription.id }
                if byChpid[chpid]?.isEmpty == true { byChpid[chpid] = nil }
            }
        } else {
            anyChpid.removeAll { $0 == subscription.id }
        }
    }

    /// `owner`'s subscriptions, oldest first.
    package func subscriptions(of owner: ConnectionID) -> [Subscription] {
        (byOwner[owner] ?? []).map { subscriptions[$0]! }
    }

    package var subscriptionCount: Int { subscriptions.count }

    /// Whether `owner` holds a subscription (O(1)).
    package func hasSubscriptions(_ owner: ConnectionID) -> Bool { byOwner[owner] != nil }

    func forEachSubscription(_ body: (Subscription) -> Void) {
        for subscription in subscriptions.values { body(subscription) }
    }

    // MARK: Publishing

    /// Publishes the events of one change: a vary, configure, fault, an observed change, or a
    /// reset (`PathChange(resetOf:crws:)` as `.reset`: a chpid event carrying the solicited
    /// CRW, published even when the CRW was lost), or a drift from the intended state (`.drift`,
    /// a chpid event alone). Any other change that altered nothing (no path state, no mask, no
    /// CRW) publishes nothing.
    /// - Parameters:
    ///   - kind: what happened, the events' `change`.
    ///   - time: the events' timestamp.
    ///   - guests: what the change did to guests (vfio-ccw), for granularity guest.
    ///   - hostGuests: what it did to guests holding mdevs on a Linux host, for granularity guest.
    /// - Returns: who got events. Cost: O(1) per admitting "chpid" subscription, O(affected
    ///   subchannels) per "subchannel" one, O(guests) per "guest" one.
    ///   - sequence: the change's sequence number (its events' `sequence`; 0 where none is kept).
    ///   - cause: the scenario step that made it, for its chpid and subchannel events.
    @discardableResult
    package mutating func publish(
        _ change: PathChange, as kind: PathEventChange, at time: EventTime, guests: [GuestPathChange] = [],
        hostGuests: [HostGuestPathChange] = [], sequence: UInt64 = 0, cause: ScenarioCause? = nil
    ) -> PathEventFanOut {
        guard kind.isReport || !change.altersNothing || !guests.isEmpty || !hostGuests.isEmpty else {
            return PathEventFanOut()
        }
        let (event, guestEvents, first) = prepare(
            change, as: kind, guests: guests, hostGuests: hostGuests, cause: cause)
        var reached = PathEventFanOut()
        let affected = change.affected
        let announces = Self.announcesPath(change, as: kind)
        for id in anyChpid {
            deliver(
                event, affected, guestEvents, to: id, sequence: first, change: sequence, time: time,
                announcesPath: announces, &reached)
        }
        for id in byChpid[event.chpid] ?? [] {
            deliver(
                event, affected, guestEvents, to: id, sequence: first, change: sequence, time: time,
                announcesPath: announces, &reached)
        }
        return reached
    }

    /// Whether a change gets its `CHANNEL_PATH_CHANGED`: every change does but one that moved
    /// some subchannels' mask bits for the path (`permanent-error`, `temporary-error`,
    /// `recovered`) and left the path's own state as it was, as an observed reading finds a
    /// device that lost or regained a path its other devices still use. The path's event goes
    /// out once, when its condition changes (`Subsystem.observedCondition(of:)`); the devices'
    /// `SUBCHANNEL_PATHS_CHANGED` go out with every change. The model's own faults always
    /// change the path's condition, so this only ever applies to observed changes. AMQP
    /// notifications follow the same rule (`OsloNotificationEncoder`).
    package static func announcesPath(_ change: PathChange, as kind: PathEventChange) -> Bool {
        switch kind {
        case .permanentError, .temporaryError, .recovered:
            return change.pathChanged || change.affected.isEmpty || !change.crws.isEmpty
        default:
            return true
        }
    }

    /// The chpid event of a change, its guest events, and the first of the event sequence
    /// numbers it takes.
    private mutating func prepare(
        _ change: PathChange, as kind: PathEventChange, guests: [GuestPathChange],
        hostGuests: [HostGuestPathChange] = [], cause: ScenarioCause? = nil
    ) -> (ChannelPathEvent, [PathEvent], UInt64) {
        let after = change.after
        let event = ChannelPathEvent(
            chpid: after.id, change: kind, vary: after.vary, configure: after.configure,
            subchannels: change.affected.count, crw: change.crws.first?.rawValue, cause: cause)
        let first = nextSequence
        nextSequence += 1 + UInt64(change.affected.count) + UInt64(guests.count) + UInt64(hostGuests.count)
        var guestEvents: [PathEvent] = []
        for guest in guests {
            let number = guestNumbers[guest.guest] ?? UInt32(guestNumbers.count)
            guestNumbers[guest.guest] = number
            guestEvents.append(.guest(guest, number: number))
        }
        for guest in hostGuests {
            let number = guestNumbers[guest.guest] ?? UInt32(guestNumbers.count)
            guestNumbers[guest.guest] = number
            guestEvents.append(.hostGuest(guest, number: number))
        }
        return (event, guestEvents, first)
    }

    private mutating func deliver(
        _ event: ChannelPathEvent, _ affected: [AffectedSubchannel], _ guests: [PathEvent], to id: Int,
        sequence: UInt64, change: UInt64, time: EventTime, coalescing: Bool = true, announcesPath: Bool = true,
        _ reached: inout PathEventFanOut
    ) {
        guard subscriptions[id]!.filter.admits(event.chpid, event.change) else { return }
        // Taken out and put back: mutating it in the dictionary would cost a lookup per event.
        var subscription = subscriptions.removeValue(forKey: id)!
        defer { subscriptions[id] = subscription }
        let filter = subscription.filter
        let before = subscription.published
        if filter.granularity.wantsChannelPath && announcesPath {
            subscription.queue.push(
                QueuedPathEvent(sequence: sequence, time: time, event: .channelPath(event), change: change),
                coalescing: coalescing)
            subscription.published += 1
        }
        if filter.granularity.wantsSubchannel {
            for (offset, subchannel) in affected.enumerated() where filter.admits(subchannel.id) {
                let item = SubchannelPathEvent(
                    subchannel: subchannel.id, device: subchannel.device, chpid: event.chpid, change: event.change,
                    pim: subchannel.pim, pam: subchannel.pam, pom: subchannel.pom, lpm: subchannel.lpm,
                    pnom: subchannel.pnom)
                let queued: PathEvent = event.cause.map { .scenarioSubchannel(item, $0) } ?? .subchannel(item)
                subscription.queue.push(
                    QueuedPathEvent(
                        sequence: sequence + 1 + UInt64(offset), time: time, event: queued, change: change),
                    coalescing: coalescing)
                subscription.published += 1
            }
        }
        if filter.granularity.wantsGuest {
            let base = sequence + 1 + UInt64(affected.count)
            for (offset, guest) in guests.enumerated() {
                switch guest {
                case .guest(let data, _) where filter.admits(guest: data.guest): break
                case .hostGuest(let data, _) where filter.admits(guest: data.guest): break
                default: continue
                }
                subscription.queue.push(
                    QueuedPathEvent(sequence: base + UInt64(offset), time: time, event: guest, change: change),
                    coalescing: coalescing)
                subscription.published += 1
            }
        }
        if subscription.published > before {
            reached.owners.insert(subscription.owner)
            reached.subscriptions += 1
            reached.events += subscription.published - before
        }
    }

    // MARK: Utilization

    /// Whether any subscription watches utilization (the server evaluates only then).
    package var watchesUtilization: Bool { !watching.isEmpty }

    /// Publishes the threshold crossings of the latest utilizations: for each subscription with
    /// a threshold, each chpid it admits whose value crossed (`UtilizationWatch`) gets a
    /// CHANNEL_PATH_UTILIZATION, coalesced per chpid with an unread older one.
    /// - Parameters:
    ///   - utilizations: per chpid, chpstat's metrics over the last interval (key -> percent;
    ///     a key absent or nil: not available, no crossing). A watched chpid missing from it
    ///     (gone, or measurement off) is forgotten: it starts below again.
    ///   - time: the events' timestamp.
    /// - Returns: who got events. Cost: O(watching subscriptions × chpids).
    @discardableResult
    package mutating func publishUtilization(_ utilizations: [ChannelPathID: [String: Double?]], at time: EventTime)
        -> PathEventFanOut
    {
        var reached = PathEventFanOut()
        let chpids = utilizations.keys.sorted()
        for id in watching {
            var subscription = subscriptions.removeValue(forKey: id)!
            defer { subscriptions[id] = subscription }
            guard var watch = subscription.watch else { continue }
            let before = subscription.published
            let metric = watch.threshold.metric.rawValue
            for chpid in chpids where subscription.filter.admitsUtilization(of: chpid) {
                let value = utilizations[chpid]?[metric] ?? nil
                guard let level = watch.observe(chpid, value), let value else { continue }
                let event = ChannelUtilizationEvent(
                    chpid: chpid, metric: watch.threshold.metric, utilization: value,
                    threshold: watch.threshold.threshold, level: level)
                subscription.queue.push(
                    QueuedPathEvent(sequence: nextSequence, time: time, event: .utilization(event)), coalescing: true)
                nextSequence += 1
                subscription.published += 1
            }
            for chpid in watch.chpidsAbove where utilizations[chpid] == nil { watch.forget(chpid) }
            subscription.watch = watch
            if subscription.published > before {
                reached.owners.insert(subscription.owner)
                reached.subscriptions += 1
                reached.events += subscription.published - before
            }
        }
        return reached
    }

    // MARK: Delivery

    /// Hands `owner`'s deliveries to `body` in publication order across its subscriptions (a
    /// drop report first: it stands for events older than any still queued) until `body`
    /// returns false or nothing is left.
    /// - Parameter through: events of changes after this sequence number stay queued (a change
    ///   not yet durable is not told: after a crash its number would name another change).
    package mutating func drain(
        for owner: ConnectionID, through limit: UInt64 = .max, _ body: (_ subscription: Int, PathEventDelivery) -> Bool
    ) {
        guard let ids = byOwner[owner] else { return }
        // Taken out and put back, as in `deliver`.
        var taken = ids.map { subscriptions.removeValue(forKey: $0)! }
        defer { for subscription in taken { subscriptions[subscription.id] = subscription } }
        if taken.count == 1 {
            while taken[0].queue.nextChange().map({ $0 <= limit }) ?? false, let delivery = taken[0].queue.pop() {
                guard body(taken[0].id, delivery) else { return }
            }
            return
        }
        while true {
            var best = -1
            var bestSequence = UInt64.max
            for index in taken.indices {
                if let sequence = taken[index].queue.nextSequence(), sequence < bestSequence {
                    best = index
                    bestSequence = sequence
                }
            }
            guard best >= 0, taken[best].queue.nextChange()! <= limit else { return }
            guard body(taken[best].id, taken[best].queue.pop()!) else { return }
        }
    }

    /// The next delivery for `owner` (see `drain`).
    package mutating func next(for owner: ConnectionID) -> (subscription: Int, delivery: PathEventDelivery)? {
        var next: (Int, PathEventDelivery)?
        drain(for: owner) { id, delivery in
            next = (id, delivery)
            return false
        }
        return next
    }
}

/// Who got the events of one published change.
package struct PathEventFanOut: Hashable, Sendable {
    /// The owners (connections) with at least one new event.
    package internal(set) var owners: Set<ConnectionID> = []
    /// Subscriptions that got at least one event.
    package internal(set) var subscriptions = 0
    /// Events queued, over all subscriptions (before coalescing or dropping in the queues).
    package internal(set) var events = 0

    package init() {}
}
