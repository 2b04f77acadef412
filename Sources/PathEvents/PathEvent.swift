// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import VFIOCCW

/// Wall-clock time of an event, supplied by the caller: the event model has no clock.
package struct EventTime: Hashable, Sendable {
    package let seconds: Int
    package let microseconds: Int

    package init(seconds: Int, microseconds: Int) {
        self.seconds = seconds
        self.microseconds = microseconds
    }
}

/// The scenario step that made a change (issue 26): its events carry it as `scenario` and
/// `step`, and the journal keeps it, so a resumed subscriber sees what a live one saw.
///
/// A class (immutable, compared by value): a queued event holds one word for it, so that the
/// queues of 65,536 subchannel events stay as compact as without it (PathEventMemoryTests).
package final class ScenarioCause: Hashable, Sendable {
    package let scenario: String
    package let step: String

    package init(scenario: String, step: String) {
        self.scenario = scenario
        self.step = step
    }

    package static func == (lhs: ScenarioCause, rhs: ScenarioCause) -> Bool {
        lhs.scenario == rhs.scenario && lhs.step == rhs.step
    }

    package func hash(into hasher: inout Hasher) {
        hasher.combine(scenario)
        hasher.combine(step)
    }
}

/// `CHANNEL_PATH_CHANGED`: one per change of a chpid.
package struct ChannelPathEvent: Hashable, Sendable {
    // Stored in this order, 22 bytes with `cause` (the enum's tag fits after them): a queued
    // event's size bounds a stalled subscriber's memory (PathEventMemoryTests).
    package let chpid: ChannelPathID
    package let change: PathEventChange
    package let vary: VaryState
    /// 32 bits: a chpid has at most 262,144 subchannels.
    private let subchannelCount: UInt32
    /// The scenario step that made it; nil for any other cause.
    package let cause: ScenarioCause?
    private let crwValue: UInt32
    package let configure: ConfigureState
    private let hasCRW: Bool

    /// Subchannels whose masks the change altered (the number of SUBCHANNEL_PATHS_CHANGED).
    package var subchannels: Int { Int(subchannelCount) }
    /// The channel report word the machine queued, if any.
    package var crw: UInt32? { hasCRW ? crwValue : nil }

    package init(
        chpid: ChannelPathID, change: PathEventChange, vary: VaryState, configure: ConfigureState, subchannels: Int,
        crw: UInt32?, cause: ScenarioCause? = nil
    ) {
        self.chpid = chpid
        self.change = change
        self.vary = vary
        self.configure = configure
        subchannelCount = UInt32(clamping: subchannels)
        hasCRW = crw != nil
        crwValue = crw ?? 0
        self.cause = cause
    }
}

/// `SUBCHANNEL_PATHS_CHANGED`: one per subchannel whose masks a change altered.
package struct SubchannelPathEvent: Hashable, Sendable {
    package let subchannel: SubchannelID
    package let device: DeviceID?
    package let chpid: ChannelPathID
    package let change: PathEventChange
    package let pim, pam, pom, lpm, pnom: UInt8
}

package enum PathEvent: Hashable, Sendable {
    case channelPath(ChannelPathEvent)
    case subchannel(SubchannelPathEvent)
    /// A subchannel event of a change a scenario's step made, with the step: boxed, so that the
    /// common case stays as compact as without it (PathEventMemoryTests).
    indirect case scenarioSubchannel(SubchannelPathEvent, ScenarioCause)
    /// `GUEST_PATH_CHANGED`: what one host path change did to one guest (vfio-ccw), under the
    /// guest's chpid: VFIOCCW's own value, queued as it is. `number` is the hub's small number
    /// for the guest, for coalescing.
    indirect case guest(GuestPathChange, number: UInt32)
    /// `HOST_GUEST_PATH_CHANGED`: what one host path change did to one guest holding vfio-ccw
    /// mdevs on a Linux host, all its devices on the path in one event. `number` as for `guest`.
    indirect case hostGuest(HostGuestPathChange, number: UInt32)
    /// `PATH_EVENTS_GAP`: a subscription asked to resume from a position the journal cannot
    /// serve; always its first event.
    case gap(PathEventGap)
    /// `CHANNEL_PATH_UTILIZATION`: a chpid's utilization crossed a subscription's threshold
    /// (`UtilizationWatch`). Not a path change: no journal entry, no replay on resume.
    /// Indirect, like `guest`: rare, and kept out of line so that a queued event stays small.
    indirect case utilization(ChannelUtilizationEvent)

    /// What a newer event replaces when the subscriber has not read the older one yet: the
    /// same chpid's event, or the same subchannel's event for the same chpid (its masks are
    /// the latest state, and which path changed is kept), or the same guest's for the same
    /// guest chpid. A chpid's drift report (`.drift`) replaces only its older drift report.
    ///
    /// A redundancy loss (`redundancy-lost`, `last-path-lost`) replaces only an unread one of
    /// the same kind, chpid (and subchannel): it follows the path change that caused it, which
    /// must not be replaced by it (bits 48-55 hold the kind; the subchannel id ends at bit 47).
    var coalescingKey: UInt64 {
        switch self {
        // A drift report replaces only an older drift report of its chpid: were it to replace
        // the change that made the drift (published just before it), that change's kind would
        // be lost.
        case .channelPath(let event) where event.change == .drift: return 5 << 56 | UInt64(event.chpid.rawValue)
        case .channelPath(let event): return Self.lossBits(event.change) | UInt64(event.chpid.rawValue)
        case .subchannel(let event), .scenarioSubchannel(let event, _):
            return 1 << 56 | Self.lossBits(event.change) | UInt64(event.subchannel.rawValue) << 16
                | UInt64(event.chpid.rawValue)
        case .guest(let event, let number):
            return 2 << 56 | UInt64(number) << 16 | UInt64(event.guestChpid.rawValue)
        // A guest's newer change of the same host chpid replaces its unread older one: the
        // devices' masks in it are the latest.
        case .hostGuest(let event, let number):
            return 6 << 56 | UInt64(number) << 16 | UInt64(event.hostChpid.rawValue)
        case .gap: return 3 << 56  // one per subscription, never replaced
        // The latest crossing of a chpid replaces an unread older one: its level is the news.
        case .utilization(let event): return 4 << 56 | UInt64(event.chpid.rawValue)
        }
    }
}

extension PathEvent {
    /// The bits 48-55 of a coalescing key that keep a redundancy loss apart from path changes.
    @inline(__always)
    static func lossBits(_ change: PathEventChange) -> UInt64 {
        switch change {
        case .redundancyLost: return 1 << 48
        case .lastPathLost: return 2 << 48
        default: return 0
        }
    }
}

/// Why a resuming subscriber missed changes (`PATH_EVENTS_GAP`'s `reason`).
package enum PathEventGapReason: String, Hashable, Sendable {
    /// The position is older than the oldest change the journal holds.
    case journal
    /// The position is from another epoch (another server history, or state not kept).
    case epoch
}

/// The changes a resuming subscriber cannot be given: `first...last` (sequence numbers of
/// the current epoch; `last < first` when none were published at all).
package struct PathEventGap: Hashable, Sendable {
    package let first: UInt64
    package let last: UInt64
    package let reason: PathEventGapReason

    package init(first: UInt64, last: UInt64, reason: PathEventGapReason) {
        self.first = first
        self.last = last
        self.reason = reason
    }
}

/// An event as queued: its place in the global order and when it happened.
package struct QueuedPathEvent: Hashable, Sendable {
    /// Increases with every event published; orders events across one connection's subscriptions.
    package let sequence: UInt64
    package let time: EventTime
    package let event: PathEvent
    /// The sequence number of the path change it belongs to (the events' `sequence`): shared
    /// by the chpid, subchannel and guest events of one change. A gap report carries the
    /// position it resumes after.
    package let change: UInt64

    package init(sequence: UInt64, time: EventTime, event: PathEvent, change: UInt64 = 0) {
        self.sequence = sequence
        self.time = time
        self.event = event
        self.change = change
    }
}

/// What a subscriber is handed next.
package enum PathEventDelivery: Hashable, Sendable {
    case event(QueuedPathEvent)
    /// `PATH_EVENTS_DROPPED`: this many events were dropped since the last delivery.
    case dropped(Int)
}

extension PathEventChange {
    /// What an observed change (a real machine read twice) most likely was: the path's own
    /// state first (vary, configure, then the condition its members' masks show:
    /// `Subsystem.observedCondition(of:)`), else which of the first affected subchannel's mask
    /// bits for the path moved between `before` (the previous reading) and the change. nil when
    /// nothing changed.
    package static func observed(_ change: PathChange, before: Subsystem) -> PathEventChange? {
        let old = change.before
        let new = change.after
        if old.vary != new.vary { return new.vary == .online ? .online : .offline }
        if old.configure != new.configure { return new.configure == .configured ? .configured : .standby }
        if old.condition != new.condition {
            switch new.condition {
            case .permanentError: return .permanentError
            case .temporaryError: return .temporaryError
            case .operational: return .recovered
            }
        }
        guard let first = change.affected.first else { return nil }
        let bit = UInt8(0x80) >> UInt8(first.slot)
        let was = before.subchannel(first.id)?.schib.pmcw
        let lost = { (now: UInt8, then: UInt8?) in now & bit == 0 && (then ?? 0xff) & bit != 0 }
        let gained = { (now: UInt8, then: UInt8?) in now & bit != 0 && (then ?? 0) & bit == 0 }
        if lost(first.pam, was?.pam) { return .permanentError }
        if lost(first.pom, was?.pom) { return .temporaryError }
        if gained(first.pam, was?.pam) || gained(first.pom, was?.pom) { return .recovered }
        if lost(first.lpm, was?.lpm) { return .offline }
        if gained(first.lpm, was?.lpm) { return .online }
        return .recovered
    }
}
