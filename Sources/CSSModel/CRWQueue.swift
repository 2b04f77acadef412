// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// What STCRW stores: cc 0 and the oldest pending CRW, or cc 1 and a zero word.
package struct StoreCRWResult: Hashable, Sendable {
    package let cc: Int
    package let crw: CRW
}

/// The machine's queue of pending channel-report words.
///
/// Bounded, because the machine's is: when a report does not fit it is lost, and the next CRW
/// the program stores carries the overflow (R) bit so that it knows to re-evaluate everything
/// (Linux schedules a full re-evaluation on R). A chained report is queued whole or lost whole,
/// so the program never sees half a chain.
package struct CRWQueue: Hashable, Sendable {
    struct Entry: Hashable, Sendable {
        var crw: CRW
        /// The css the report is about, for per-css counts.
        var cssid: UInt8
    }

    /// The largest number of CRWs the queue holds.
    package let capacity: Int
    var entries: [Entry] = []
    var head = 0
    /// A report was lost since the last STCRW: the next one stored gets R.
    package internal(set) var overflowPending = false
    /// CRWs lost over the queue's lifetime.
    package internal(set) var lostCount = 0

    /// - Parameter capacity: at least 2, so that a chained pair always fits an empty queue.
    package init(capacity: Int = 256) {
        precondition(capacity >= 2, "a CRW queue must hold a chained pair")
        self.capacity = capacity
    }

    /// Pending CRWs.
    package var count: Int { entries.count - head }
    package var isEmpty: Bool { count == 0 }

    /// The pending CRWs, oldest first, without removing them (the R bit is only set on store).
    package var pending: [CRW] { entries[head...].map(\.crw) }

    /// Pending CRWs that report on css `cssid`.
    package func pendingCount(cssid: UInt8) -> Int { entries[head...].count { $0.cssid == cssid } }

    /// Queues one report (one CRW, or a chain).
    /// - Returns: true if queued, false if it did not fit and was lost.
    @discardableResult
    package mutating func enqueue(_ report: [CRW], cssid: UInt8) -> Bool {
        guard count + report.count <= capacity else {
            lostCount += report.count
            overflowPending = true
            return false
        }
        if head > 0, head == entries.count {
            entries.removeAll(keepingCapacity: true)
            head = 0
        }
        for crw in report { entries.append(Entry(crw: crw, cssid: cssid)) }
        return true
    }

    /// STCRW: removes and returns the oldest CRW (cc 0), setting R on it if reports were lost
    /// since the last store; or returns cc 1 and a zero word when nothing is pending.
    package mutating func store() -> StoreCRWResult {
        guard head < entries.count else {
            return StoreCRWResult(cc: 1, crw: .zero)
        }
        var crw = entries[head].crw
        head += 1
        if overflowPending {
            crw.overflow = true
            overflowPending = false
        }
        if head == entries.count {
            entries.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64, head * 2 >= entries.count {
            entries.removeFirst(head)
            head = 0
        }
        return StoreCRWResult(cc: 0, crw: crw)
    }
}
