// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// The subchannels of re-read channel paths whose `pimpampom` is still to be read, as Linux
/// keeps the subchannels a channel report names in an `idset` (drivers/s390/cio/idset.c) for
/// its slow path to evaluate: each at most once, in the order queued; a subchannel queued again
/// keeps its place. Members are record indexes into the mirror's `Subsystem`, so a reading that
/// moves indexes (a full reading) empties the queue (`removeAll`).
///
/// Beside the members it keeps, per path whose own change was published before its members
/// were read, the path as it was before that change: their mask changes are published as part
/// of that change (a `standby`, not a `permanent-error`, for the PAM bits the kernel clears with
/// it), as they would have been had they been read at once.
///
/// Costs: `insert` and `take` are O(1) per member (a dictionary from index to position); the
/// read front is dropped once it is most of the storage (`compactAfter`), so that a path
/// reported again and again does not grow it.
struct MemberQueue {
    /// A queued member: its record index, and whether its `vpm` is read too.
    typealias Member = (index: Int, vpm: SysfsMirror.VPMReading)

    /// Members in the order queued; those before `head` have been taken.
    private var members: [Member] = []
    private var head = 0
    /// Record index -> position in `members`, for those not taken yet.
    private var positions: [Int: Int] = [:]
    /// Per path: the path before its published change, and the position up to which its
    /// members are queued.
    private var causes: [ChannelPathID: (before: ChannelPath, until: Int)] = [:]
    /// Taken members dropped from the front once at least this many (and half the storage).
    let compactAfter: Int

    init(compactAfter: Int) {
        self.compactAfter = compactAfter
    }

    /// Members not taken yet.
    var count: Int { members.count - head }

    /// Queues `index`; one already queued keeps its place and reads `vpm` if either asks.
    mutating func insert(_ index: Int, vpm: SysfsMirror.VPMReading) {
        if let position = positions[index] {
            if vpm == .always { members[position].vpm = .always }
            return
        }
        positions[index] = members.count
        members.append((index, vpm))
    }

    /// The members queued so far belong to `path`'s change, published with `before` as the
    /// path's state before it.
    mutating func attribute(to path: ChannelPathID, before: ChannelPath) {
        causes[path] = (before, members.count)
    }

    /// Takes the next `count` members, with the paths (and their state before their change)
    /// whose members are among them.
    mutating func take(_ count: Int) -> (members: [Member], causes: [ChannelPathID: ChannelPath]) {
        let start = head
        let end = min(head + count, members.count)
        let slice = Array(members[start..<end])
        head = end
        for member in slice { positions[member.index] = nil }
        let sliceCauses = causes.filter { $0.value.until > start }.mapValues(\.before)
        causes = causes.filter { $0.value.until > end }
        if head == members.count { removeAll() } else { compact() }
        return (slice, sliceCauses)
    }

    /// Empties the queue (a full reading read every member, and indexes may have moved).
    mutating func removeAll() {
        members = []
        head = 0
        positions = [:]
        causes = [:]
    }

    /// Drops the taken front once it is most of the storage.
    private mutating func compact() {
        guard head >= compactAfter, head * 2 >= members.count else { return }
        let shift = head
        members.removeFirst(shift)
        head = 0
        for (index, position) in positions { positions[index] = position - shift }
        for (id, cause) in causes { causes[id] = (cause.before, cause.until - shift) }
    }
}
