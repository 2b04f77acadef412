// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import VFIOCCW

/// One published path change as the journal keeps it: enough to make its events again for
/// any filter and granularity.
package struct JournaledPathChange: Hashable, Sendable {
    /// Its sequence number (the events' `sequence`).
    package let sequence: UInt64
    package let change: PathChange
    package let kind: PathEventChange
    /// Its events' timestamp.
    package let time: EventTime
    /// What it did to each guest reached, in guest-name order.
    package let guests: [GuestPathChange]
    /// What it did to each guest holding mdevs on a Linux host, in guest-name order.
    package let hostGuests: [HostGuestPathChange]
    /// The scenario step that made it, if one did.
    package let cause: ScenarioCause?

    package init(
        sequence: UInt64, change: PathChange, kind: PathEventChange, time: EventTime, guests: [GuestPathChange],
        hostGuests: [HostGuestPathChange] = [], cause: ScenarioCause? = nil
    ) {
        self.cause = cause
        self.sequence = sequence
        self.change = change
        self.kind = kind
        self.time = time
        self.guests = guests
        self.hostGuests = hostGuests
    }
}

/// Where a resuming subscription starts: a gap report first (when it has one), then these
/// changes, oldest first, then live.
package struct PathEventResume: Sendable {
    package let gap: PathEventGap?
    package let changes: [JournaledPathChange]
    /// The position the subscription resumes after (the gap report's `sequence`).
    package let after: UInt64
}

/// The last `capacity` published path changes of one epoch, in sequence order.
///
/// Pure: the publisher appends each change as it publishes it (`--event-journal N`). A
/// subscriber that gives its position (`since: {epoch, sequence}`) is handed the changes
/// after it (`resume`), or a gap report when the position is older than the oldest held or
/// from another epoch: never a silent skip.
///
/// Bounds: at most `capacity` changes, and at most `subchannelBudget` affected-subchannel
/// records over all of them (a vary of a chpid shared by 65,536 subchannels holds 65,536): the
/// oldest changes go first. Cost: append O(1) amortised; resume O(changes handed back).
/// Memory: about 150 bytes per change plus about 24 bytes per affected subchannel (the list
/// is shared with the published value) and its guest changes; at most about
/// 150 x capacity + 24 x subchannelBudget bytes (the defaults: 10 MiB + 96 MiB).
package final class PathEventJournal {
    /// Most changes held; 0 keeps none (every resume behind the newest reports a gap).
    package let capacity: Int
    /// Most affected-subchannel records held over all changes (the newest change is kept
    /// whatever its size).
    package let subchannelBudget: Int
    /// This server's history: a resume position from another epoch cannot be served.
    package let epoch: String
    /// The sequence number of the newest change published (0: none yet).
    package private(set) var newest: UInt64

    /// Held changes are `entries[start...]`.
    private var entries: [JournaledPathChange] = []
    private var start = 0
    private var subchannelsHeld = 0

    package enum ResumeError: Error, Equatable, Sendable {
        /// The position names a change this epoch has not published.
        case ahead(position: UInt64, newest: UInt64)
    }

    /// The default subchannel budget: 4,194,304 records (about 96 MiB).
    package static let defaultSubchannelBudget = 1 << 22

    /// - Parameters:
    ///   - capacity: most changes held (>= 0).
    ///   - newest: the sequence number of the last change published before (a restored state).
    package init(capacity: Int, epoch: String, newest: UInt64 = 0, subchannelBudget: Int = defaultSubchannelBudget) {
        precondition(capacity >= 0 && subchannelBudget >= 0)
        self.capacity = capacity
        self.subchannelBudget = subchannelBudget
        self.epoch = epoch
        self.newest = newest
    }

    /// Changes held.
    package var count: Int { entries.count - start }

    /// The sequence number of the oldest change held, nil when none is.
    package var oldest: UInt64? { count == 0 ? nil : entries[start].sequence }

    /// Keeps a change (the next one: `change.sequence == newest + 1`), forgetting the oldest
    /// while a bound is exceeded.
    package func append(_ change: JournaledPathChange) {
        precondition(change.sequence == newest + 1, "journal entries are appended in sequence order")
        newest = change.sequence
        guard capacity > 0 else { return }
        entries.append(change)
        subchannelsHeld += change.change.affected.count
        while count > capacity || (subchannelsHeld > subchannelBudget && count > 1) {
            subchannelsHeld -= entries[start].change.affected.count
            start += 1
        }
        if start > 1024 && start > entries.count / 2 {
            entries.removeFirst(start)
            start = 0
        }
    }

    /// The changes held, oldest first.
    package var changes: ArraySlice<JournaledPathChange> { entries[start...] }

    /// What a subscriber positioned after change `sequence` of `epoch` gets.
    /// - Returns: every change after the position, oldest first; or, when the position is older
    ///   than the oldest held, a gap report (`journal`: the changes from the position's next up
    ///   to the one before the oldest held) and every change held; or, for another epoch, a gap
    ///   report (`epoch`: changes 1 to the newest) and nothing more.
    /// - Throws: `ResumeError.ahead` for a position after the newest change of this epoch.
    package func resume(epoch: String, after sequence: UInt64) throws(ResumeError) -> PathEventResume {
        guard epoch == self.epoch else {
            return PathEventResume(
                gap: PathEventGap(first: 1, last: newest, reason: .epoch), changes: [], after: newest)
        }
        guard sequence <= newest else { throw .ahead(position: sequence, newest: newest) }
        if sequence == newest { return PathEventResume(gap: nil, changes: [], after: sequence) }
        let oldest = self.oldest ?? newest + 1
        if sequence + 1 < oldest {
            return PathEventResume(
                gap: PathEventGap(first: sequence + 1, last: oldest - 1, reason: .journal), changes: Array(changes),
                after: sequence)
        }
        let skip = Int(sequence + 1 - oldest)
        return PathEventResume(gap: nil, changes: Array(entries[(start + skip)...]), after: sequence)
    }
}
