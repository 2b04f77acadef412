// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import TestSupport
import Testing

@testable import PathEvents

private let t0 = EventTime(seconds: 1, microseconds: 0)

private func threshold(_ value: Double, hysteresis: Double, _ metric: UtilizationMetric = .utilTotal)
    -> UtilizationThreshold
{
    try! UtilizationThreshold(metric: metric, threshold: value, hysteresis: hysteresis)
}

/// The utilization events queued for `owner`: "chpid level value".
private func drain(_ hub: inout PathEventHub, _ owner: ConnectionID) -> [String] {
    var out: [String] = []
    while let (_, delivery) = hub.next(for: owner) {
        guard case .event(let queued) = delivery, case .utilization(let e) = queued.event else {
            out.append("other \(delivery)")
            continue
        }
        out.append("\(e.chpid) \(e.level.rawValue) \(e.utilization)")
    }
    return out
}

@Suite struct UtilizationWatchTests {
    @Test func aPathAtTheThresholdMakesOneEventNotOnePerUpdate() {
        var watch = UtilizationWatch(threshold(80, hysteresis: 5))
        let path = chp("0.40")
        // Below, then up to the threshold, then wandering inside the band [75, 80).
        let values: [Double?] = [10, 79.9, 80, 81, 79, 75.5, 80, 90, 75, 74.9, 76, 79.99, 80]
        let levels = values.map { watch.observe(path, $0) }
        #expect(levels == [nil, nil, .above, nil, nil, nil, nil, nil, nil, .below, nil, nil, .above])
    }

    @Test func notAvailableChangesNothing() {
        var watch = UtilizationWatch(threshold(50, hysteresis: 10))
        let path = chp("0.40")
        #expect(watch.observe(path, 60) == .above)
        #expect(watch.observe(path, nil) == nil)
        #expect(watch.observe(path, .nan) == nil)
        #expect(watch.isAbove(path))
        #expect(watch.observe(path, 39) == .below)
    }

    @Test func zeroHysteresisFallsBelowJustUnderTheThreshold() {
        var watch = UtilizationWatch(threshold(50, hysteresis: 0))
        let path = chp("0.40")
        #expect(watch.observe(path, 50) == .above)
        #expect(watch.observe(path, 50) == nil)
        #expect(watch.observe(path, 49.99) == .below)
    }

    @Test func badThresholdsAreRefusedWithTheRange() {
        #expect(throws: UtilizationThresholdError.threshold(0)) {
            try UtilizationThreshold(metric: .utilPart, threshold: 0, hysteresis: 0)
        }
        #expect(throws: UtilizationThresholdError.hysteresis(90, threshold: 80)) {
            try UtilizationThreshold(metric: .utilPart, threshold: 80, hysteresis: 90)
        }
        #expect(throws: UtilizationThresholdError.self) {
            try UtilizationThreshold(metric: .utilPart, threshold: .nan, hysteresis: 0)
        }
        #expect(
            UtilizationThresholdError.hysteresis(90, threshold: 80).description
                == "hysteresis 90.0 is not in [0, 80.0] (percentage points below the threshold)")
    }

    @Test func theHubTellsOnlyWatchingSubscriptionsOfAdmittedChpids() throws {
        var hub = PathEventHub()
        let all = try hub.subscribe(
            owner: 1, filter: PathEventFilter(granularity: .chpid, utilization: threshold(80, hysteresis: 5)),
            queueLimit: 10)
        _ = try hub.subscribe(
            owner: 2,
            filter: PathEventFilter(
                granularity: .chpid, chpids: [chp("0.41")], utilization: threshold(50, hysteresis: 5, .utilPart)),
            queueLimit: 10)
        _ = try hub.subscribe(owner: 3, filter: PathEventFilter(granularity: .chpid), queueLimit: 10)
        #expect(all == 1 && hub.watchesUtilization)

        var reached = hub.publishUtilization(
            [chp("0.40"): ["util_total": 85, "util_part": 10], chp("0.41"): ["util_total": 20, "util_part": 60]],
            at: t0)
        #expect(reached.owners == [1, 2])
        #expect(drain(&hub, 1) == ["0.40 above 85.0"])
        #expect(drain(&hub, 2) == ["0.41 above 60.0"])
        #expect(drain(&hub, 3) == [])

        // Inside the band: nothing. Not available (nil): nothing.
        reached = hub.publishUtilization(
            [chp("0.40"): ["util_total": 76, "util_part": nil], chp("0.41"): ["util_part": nil]], at: t0)
        #expect(reached.owners.isEmpty)
        reached = hub.publishUtilization([chp("0.40"): ["util_total": 60], chp("0.41"): ["util_part": 44]], at: t0)
        #expect(drain(&hub, 1) == ["0.40 below 60.0"])
        #expect(drain(&hub, 2) == ["0.41 below 44.0"])
    }

    @Test func anUnreadCrossingIsReplacedByTheNewerOneOfTheSameChpid() throws {
        var hub = PathEventHub()
        let id = try hub.subscribe(
            owner: 1, filter: PathEventFilter(granularity: .both, utilization: threshold(80, hysteresis: 5)),
            queueLimit: 10)
        hub.publishUtilization([chp("0.40"): ["util_total": 90], chp("0.41"): ["util_total": 95]], at: t0)
        hub.publishUtilization([chp("0.40"): ["util_total": 10]], at: t0)
        // 0.41 is missing from the second round (measurement stopped): forgotten, no event.
        #expect(drain(&hub, 1) == ["0.41 above 95.0", "0.40 below 10.0"])
        let info = hub.subscriptions(of: 1).first { $0.id == id }!
        #expect(info.published == 3 && info.queue.coalesced == 1)
        // 0.41 starts below again: back above is told again.
        hub.publishUtilization([chp("0.41"): ["util_total": 95]], at: t0)
        #expect(drain(&hub, 1) == ["0.41 above 95.0"])
    }

    @Test func unsubscribingStopsTheWatch() throws {
        var hub = PathEventHub()
        let id = try hub.subscribe(
            owner: 1, filter: PathEventFilter(granularity: .chpid, utilization: threshold(80, hysteresis: 5)),
            queueLimit: 10)
        try hub.unsubscribe(owner: 1, id: id)
        #expect(!hub.watchesUtilization)
        #expect(hub.publishUtilization([chp("0.40"): ["util_total": 90]], at: t0).owners.isEmpty)
    }
}
