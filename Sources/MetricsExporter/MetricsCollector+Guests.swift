// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Prometheus
import VFIOCCW

/// Per guest: notifications made and CRWs queued and lost, labelled with its current strategy.
extension MetricsCollector {
    struct GuestSeries {
        let strategy: PathEventStrategy
        let notifications: Counter
        let crwsQueued: Counter
        let crwsLost: Counter

        func unregister(from registry: PrometheusCollectorRegistry) {
            for counter in [notifications, crwsQueued, crwsLost] { registry.unregisterCounter(counter) }
        }
    }

    func collectGuests(_ all: Guests) {
        for (name, guest) in all.guests {
            var series = guests[name]
            if let existing = series, existing.strategy != guest.strategy {
                existing.unregister(from: registry)
                series = nil
            }
            let current = series ?? makeGuestSeries(name, strategy: guest.strategy)
            guests[name] = current
            current.notifications.setTotal(guest.stats.notifications)
            current.crwsQueued.setTotal(guest.stats.crwsQueued)
            current.crwsLost.setTotal(guest.stats.crwsLost)
        }
        for (name, series) in guests where all.guests[name] == nil {
            series.unregister(from: registry)
            guests[name] = nil
        }
    }

    private func makeGuestSeries(_ name: String, strategy: PathEventStrategy) -> GuestSeries {
        let labels = [("guest", name), ("strategy", strategy.rawValue)]
        func counter(_ metric: String, _ help: String) -> Counter {
            registry.makeCounter(
                descriptor: .init(
                    namespace: "cssd", subsystem: "guest", metricName: metric, unitName: "total", helpText: help),
                labels: labels)
        }
        return GuestSeries(
            strategy: strategy,
            notifications: counter("notifications", "Per-device path notifications made to the guest (vfio-ccw)."),
            crwsQueued: counter("crws_queued", "Channel report words queued for the guest."),
            crwsLost: counter("crws_lost", "Channel report words the guest lost to its queue's overflow."))
    }
}
