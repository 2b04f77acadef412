// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import VFIOCCW

/// Wall-clock time of an event, supplied by the caller: the event model has no clock.
public struct EventTime: Hashable, Sendable {
    public let seconds: Int
    public let microseconds: Int

    public init(seconds: Int, microseconds: Int) {
        self.seconds = seconds
        self.microseconds = microseconds
    }
}

/// `CHANNEL_PATH_CHANGED`: one per change of a chpid.
public struct ChannelPathEvent: Hashable, Sendable {
    public let chpid: ChannelPathID
    public let change: PathEventChange
    public let vary: VaryState
    public let configure: ConfigureState
    /// Subchannels whose masks the change altered (the number of SUBCHANNEL_PATHS_CHANGED).
    public let subchannels: Int
    /// The channel report word the machine queued, if any.
    public let crw: UInt32?
}

/// `SUBCHANNEL_PATHS_CHANGED`: one per subchannel whose masks a change altered.
public struct SubchannelPathEvent: Hashable, Sendable {
    public let subchannel: SubchannelID
    public let device: DeviceID?
    public let chpid: ChannelPathID
    public let change: PathEventChange
    public let pim, pam, pom, lpm, pnom: UInt8
}

public enum PathEvent: Hashable, Sendable {
    case channelPath(ChannelPathEvent)
    case subchannel(SubchannelPathEvent)
    /// `GUEST_PATH_CHANGED`: what one host path change did to one guest (vfio-ccw), under the
    /// guest's chpid: VFIOCCW's own value, queued as it is. `number` is the hub's small number
    /// for the guest, for coalescing.
    indirect case guest(GuestPathChange, number: UInt32)
    /// `PATH_EVENTS_GAP`: a subscription asked to resume from a position the journal cannot
    /// serve; always its first event.
    case gap(PathEventGap)

    /// What a newer event replaces when the subscriber has not read the older one yet: the
    /// same chpid's event, or the same subchannel's event for the same chpid (its masks are
    /// the latest state, and which path changed is kept), or the same guest's for the same
    /// guest chpid.
    var coalescingKey: UInt64 {
        switch self {
        case .channelPath(let event): return UInt64(event.chpid.rawValue)
        case .subchannel(let event):
            return 1 << 56 | UInt64(event.subchannel.rawValue) << 16 | UInt64(event.chpid.rawValue)
        case .guest(let event, let number):
            return 2 << 56 | UInt64(number) << 16 | UInt64(event.guestChpid.rawValue)
        case .gap: return 3 << 56  // one per subscription, never replaced
        }
    }
}

/// Why a resuming subscriber missed changes (`PATH_EVENTS_GAP`'s `reason`).
public enum PathEventGapReason: String, Hashable, Sendable {
    /// The position is older than the oldest change the journal holds.
    case journal
    /// The position is from another epoch (another server history, or state not kept).
    case epoch
}

/// The changes a resuming subscriber cannot be given: `first...last` (sequence numbers of
/// the current epoch; `last < first` when none were published at all).
public struct PathEventGap: Hashable, Sendable {
    public let first: UInt64
    public let last: UInt64
    public let reason: PathEventGapReason

    public init(first: UInt64, last: UInt64, reason: PathEventGapReason) {
        self.first = first
        self.last = last
        self.reason = reason
    }
}

/// An event as queued: its place in the global order and when it happened.
public struct QueuedPathEvent: Hashable, Sendable {
    /// Increases with every event published; orders events across one connection's subscriptions.
    public let sequence: UInt64
    public let time: EventTime
    public let event: PathEvent
    /// The sequence number of the path change it belongs to (the events' `sequence`): shared
    /// by the chpid, subchannel and guest events of one change. A gap report carries the
    /// position it resumes after.
    public let change: UInt64

    public init(sequence: UInt64, time: EventTime, event: PathEvent, change: UInt64 = 0) {
        self.sequence = sequence
        self.time = time
        self.event = event
        self.change = change
    }
}

/// What a subscriber is handed next.
public enum PathEventDelivery: Hashable, Sendable {
    case event(QueuedPathEvent)
    /// `PATH_EVENTS_DROPPED`: this many events were dropped since the last delivery.
    case dropped(Int)
}

extension PathEventChange {
    /// What an observed change (a real machine read twice) most likely was: the path's own
    /// state first, else which of the first affected subchannel's mask bits for the path
    /// moved between `before` (the previous reading) and the change. nil when nothing changed.
    public static func observed(_ change: PathChange, before: Subsystem) -> PathEventChange? {
        let old = change.before
        let new = change.after
        if old.vary != new.vary { return new.vary == .online ? .online : .offline }
        if old.configure != new.configure { return new.configure == .configured ? .configured : .standby }
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
