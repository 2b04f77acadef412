// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import PathEvents
import VFIOCCW

/// Who ran a command.
package enum CommandOrigin: Hashable, Sendable {
    /// A client on this connection.
    case connection(ConnectionID)
    /// cssd itself at start: the state dir's log replayed (`StateStore.restore`), and the
    /// notifications rebuilt from its journal. No connected client ran these commands.
    case replay
    /// A step of a failure scenario the server plays (API/scenario.json): `name` is the
    /// scenario's, `step` the step's (`flap#3/down` in a loop). Its changes go where a
    /// command's go; metrics count them under a fixed label, never these names.
    case scenario(name: String, step: String)
}

/// Where a published path change came from.
package enum PathChangeCause: Hashable, Sendable {
    /// A command (vary-path, configure-chpid, inject-path-fault, reset-channel-path). A
    /// connection that ran it writes its own events after the command's reply.
    case command(by: CommandOrigin)
    /// A reading of an observed backend (linux-sysfs, named `backend`) found the machine
    /// changed by someone else (another `chchp`, the kernel losing a path).
    case observed(backend: String)
}

/// One path change as the pipeline published it: everything a sink needs, computed once.
///
/// Sinks (the server waking connections, metrics counters, an event journal, a broker) read
/// it and keep what they need; it is a value, so a sink may hand it to another thread.
package struct PublishedPathChange: Hashable, Sendable {
    /// The change as journals keep it (the event journal, the state dir's), built once here
    /// rather than by each journaling sink.
    package let journaled: JournaledPathChange
    package let cause: PathChangeCause
    /// The subscriptions and connections that got events from it.
    package let reached: PathEventFanOut

    /// Publication order: one more than the change before (the first of an epoch is 1); the
    /// events' `sequence`, and the journal's key.
    package var sequence: UInt64 { journaled.sequence }
    /// The change as the backend reported it: the path before and after, the affected
    /// subchannels with their new masks, the machine's CRWs.
    package var change: PathChange { journaled.change }
    /// What happened (the events' `change`).
    package var kind: PathEventChange { journaled.kind }
    /// When it was published: the timestamp of its events.
    package var time: EventTime { journaled.time }
    /// What it did to each guest reached (vfio-ccw), in guest-name order; empty for a reset.
    package var guests: [GuestPathChange] { journaled.guests }
    /// What it did to each guest holding mdevs on a Linux host (linux-sysfs), in guest-name order.
    package var hostGuests: [HostGuestPathChange] { journaled.hostGuests }
}

extension PathEventJournal: PathChangeSink {
    /// Keeps the change (the journal is one of the publisher's sinks).
    package func pathChangePublished(_ published: PublishedPathChange) {
        append(published.journaled)
    }
}

/// Something told of every published path change, on the server's event loop, after the
/// change reached the guests and the subscriptions' queues. It must return quickly and must not
/// publish (the change is complete; a sink that reacts with a change of its own would reorder
/// the sinks' views).
package protocol PathChangeSink: AnyObject {
    func pathChangePublished(_ published: PublishedPathChange)
}

/// The sinks of the pipeline, by role, in the order they are told of a change (the order of
/// the cases; API/path-change-pipeline.md states it). One sink per role. Registering in any
/// order gives this order, so where a sink is created does not decide when it hears.
package enum PathChangeSinkRole: Int, CaseIterable, Comparable, Sendable, CustomStringConvertible {
    /// The event journal (`PathEventJournal`): first, so that every later sink (and a
    /// subscription resuming from a sequence number) finds the change in it.
    case journal
    /// The network layer (`ServerCore`): wakes the connections whose subscriptions got events.
    case connections
    /// The state dir (`StateStore`, `--state-dir`): records the change; its events are held
    /// until that record is durable.
    case stateStore
    /// The broker publisher (`PathNotifier`, `--notify`): after the state dir, whose
    /// committed sequence decides what it may publish.
    case notifier
    /// The Prometheus counters (`MetricsCollector`, `--metrics`): counts only, last.
    case metrics

    package static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    package var description: String {
        switch self {
        case .journal: return "journal"
        case .connections: return "connections"
        case .stateStore: return "state-store"
        case .notifier: return "notifier"
        case .metrics: return "metrics"
        }
    }
}

/// The one way a path change becomes known: every source (commands, reset-channel-path, the
/// observed backend's refresh) calls `publish`, which
/// 1. carries the change to the guests (`Guests.hostPathChanged`, each by its strategy; the new
///    masks travel with the change, so no guest re-reads a SCHIB), and attributes it to the
///    guests holding mdevs on a Linux host (`HostPassthroughView.guestChanges`, over the view
///    `hostPassthrough` returns: the backend's last reading, no I/O),
/// 2. queues the events for every subscription that wants them (`PathEventHub.publish`), with
///    the guest changes, under one timestamp,
/// 3. hands the result to each sink once, in the order of their roles (`PathChangeSinkRole`).
///
/// It owns the two pure models it feeds (the subscriptions and the guests) and the clock; it
/// lives on the server's event loop, like `ServerState`, which holds it. Cost: the models'
/// (O(affected subchannels) per subscription that wants them, O(affected) for the guests),
/// plus O(sinks).
package final class PathChangePublisher {
    /// Path-event subscriptions of every connection, and their queues.
    package var hub: PathEventHub
    /// Guests and their vfio-ccw passthrough devices.
    package var guests: Guests
    /// Event timestamps where the publisher is given none (tests may fix it).
    package var clock: () -> EventTime
    /// The host's vfio-ccw passthrough as last read (linux-sysfs); nil where there is none.
    private let hostPassthrough: () -> HostPassthroughView?
    /// Sorted by role.
    private var sinks: [WeakSink] = []
    /// The sequence number of the last change published (0: none yet in this epoch).
    package private(set) var lastSequence: UInt64

    private struct WeakSink {
        let role: PathChangeSinkRole
        weak var sink: PathChangeSink?
    }

    /// - Parameters:
    ///   - lastSequence: the sequence number of the last change published before (a journal
    ///     that survives a restart passes its last one); the next change gets one more.
    ///   - hostPassthrough: the backend's passthrough view as last read
    ///     (`ChannelSubsystemBackend.hostPassthrough`); must not block.
    package init(
        hub: PathEventHub = PathEventHub(), guests: Guests = Guests(),
        clock: @escaping () -> EventTime = EventClock.now,
        lastSequence: UInt64 = 0,
        hostPassthrough: @escaping () -> HostPassthroughView? = { nil }
    ) {
        self.hostPassthrough = hostPassthrough
        self.hub = hub
        self.guests = guests
        self.clock = clock
        self.lastSequence = lastSequence
    }

    /// Registers the sink of `role`; it hears every change published from now on, in its
    /// role's place (`PathChangeSinkRole`), whenever it was registered. Sinks are held weakly
    /// (the server owns its connections' sink, and a sink that goes away simply stops
    /// hearing): the caller keeps it alive.
    /// - Precondition: no live sink holds `role` (one sink per role).
    package func register(_ sink: PathChangeSink, as role: PathChangeSinkRole) {
        sinks.removeAll { $0.sink == nil }
        precondition(!sinks.contains { $0.role == role }, "a path-change sink is already registered as \(role)")
        let index = sinks.firstIndex { $0.role > role } ?? sinks.endIndex
        sinks.insert(WeakSink(role: role, sink: sink), at: index)
    }

    /// The roles of the live sinks, in the order they are told of a change.
    package var sinkRoles: [PathChangeSinkRole] { sinks.compactMap { $0.sink == nil ? nil : $0.role } }

    /// Publishes one change (see the type). A change that altered nothing (no path state, no
    /// mask, no CRW, and not a reset or a drift, whose report is the point) is not published: no guest, subscription or sink hears
    /// of it, and it takes no sequence number.
    ///
    /// When the change cost devices in use their redundancy or their last path
    /// (`change.losses`), each of those is published right after it as a change of its own,
    /// under the same chpid, cause and time, with the next sequence numbers: `redundancy-lost`
    /// (its affected subchannels are the devices left on one operational path), then
    /// `last-path-lost` (those left on none). They carry no state change, reach no guest (the
    /// masks went with the change they follow), and are journaled like any change; the change
    /// itself is journaled without `losses`, as a journal decodes it.
    /// - Parameters:
    ///   - change: what the backend reported; a reset is `PathChange(resetOf:crws:)`.
    ///   - kind: what happened; `.reset` for RCHP.
    ///   - cause: where it came from.
    ///   - time: its events' timestamp: the command's (`CommandContext.time`, fixed while a
    ///     recorded command or a replay runs); nil: `clock()` now.
    /// - Returns: what was published for `change` itself (not the losses after it), or nil
    ///   when nothing was.
    @discardableResult
    package func publish(
        _ change: PathChange, as kind: PathEventChange, cause: PathChangeCause, at time: EventTime? = nil
    ) -> PublishedPathChange? {
        guard kind.isReport || !change.altersNothing else { return nil }
        let time = time ?? clock()
        var stripped = change
        stripped.losses = PathChange.RedundancyLosses()
        let published = publishOne(stripped, as: kind, cause: cause, at: time)
        let losses = change.losses
        for (lossKind, positions) in [
            (PathEventChange.redundancyLost, losses.redundancyLost), (.lastPathLost, losses.lastPathLost),
        ]
        where !positions.isEmpty {
            let loss = PathChange(
                before: change.after, after: change.after, affected: change.affected(at: positions), crws: [],
                crwsLost: 0)
            publishOne(loss, as: lossKind, cause: cause, at: time)
        }
        return published
    }

    @discardableResult
    private func publishOne(_ change: PathChange, as kind: PathEventChange, cause: PathChangeCause, at time: EventTime)
        -> PublishedPathChange
    {
        let reachedGuests = kind.isRedundancyLoss ? [] : guests.hostPathChanged(change, as: kind)
        let hostGuests = hostPassthrough()?.guestChanges(change, as: kind) ?? []
        let sequence = lastSequence + 1
        var step: ScenarioCause?
        if case .command(by: .scenario(let name, let stepName)) = cause {
            step = ScenarioCause(scenario: name, step: stepName)
        }
        let reached = hub.publish(
            change, as: kind, at: time, guests: reachedGuests, hostGuests: hostGuests, sequence: sequence,
            cause: step)
        lastSequence = sequence
        let published = PublishedPathChange(
            journaled: JournaledPathChange(
                sequence: sequence, change: change, kind: kind, time: time, guests: reachedGuests,
                hostGuests: hostGuests, cause: step),
            cause: cause, reached: reached)
        for entry in sinks { entry.sink?.pathChangePublished(published) }
        return published
    }
}
