// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// Path-event counts summed over subscriptions of one granularity, for the server's metrics.
///
/// Counts are cumulative over the server's life: a subscription that ends (unsubscribed, or
/// its connection closed) leaves its counts behind, so that counters never go down.
/// `queued` and `subscriptions` are current values (live subscriptions only).
/// Per granularity, `published == delivered + coalesced + dropped + queued` at every moment,
/// as for each subscription (events still queued when a subscription ends count as dropped).
package struct PathEventTotals: Hashable, Sendable {
    package var published = 0
    package var delivered = 0
    package var coalesced = 0
    package var dropped = 0
    package var queued = 0
    package var subscriptions = 0

    package init() {}

    mutating func add(_ subscription: PathEventHub.Subscription, live: Bool) {
        published += subscription.published
        delivered += subscription.queue.delivered
        coalesced += subscription.queue.coalesced
        if live {
            dropped += subscription.queue.dropped
            queued += subscription.queue.count
            subscriptions += 1
        } else {
            dropped += subscription.queue.dropped + subscription.queue.count
        }
    }
}

extension PathEventHub {
    /// Counts per granularity: the live subscriptions' plus those of ended ones. O(live
    /// subscriptions); every granularity is present.
    package func totals() -> [PathEventGranularity: PathEventTotals] {
        var totals = retiredTotals
        for granularity in PathEventGranularity.allCases where totals[granularity] == nil {
            totals[granularity] = PathEventTotals()
        }
        forEachSubscription { subscription in
            totals[subscription.filter.granularity]!.add(subscription, live: true)
        }
        return totals
    }
}
