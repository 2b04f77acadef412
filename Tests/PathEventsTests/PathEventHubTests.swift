// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import TestSupport
import Testing

@testable import PathEvents

private let t0 = EventTime(seconds: 1, microseconds: 2)

/// css 0: chpids 0.40 (used by 42 subchannels 0.0.0000-0.0.0029), 0.41 (by 0.0.0000-0.0.0001),
/// and css 1: chpid 1.40 (by 1.0.0000).
private func model() -> Subsystem {
    var subchannels: [Topology.Subchannel] = (0..<42).map { n in
        .init(
            id: SubchannelID(cssid: 0, ssid: 0, schno: UInt16(n)), devno: 0x1000 + n, devType: 0x3390, devModel: 0x0c,
            cuType: 0x3990, cuModel: 0xe9, chpids: n < 2 ? [chp("0.40"), chp("0.41")] : [chp("0.40")], enabled: true,
            isc: 3)
    }
    subchannels.append(
        .init(
            id: sch("1.0.0000"), devno: 0x2000, devType: 0x3390, devModel: 0x0c, cuType: 0x3990, cuModel: 0xe9,
            chpids: [chp("1.40")], enabled: true, isc: 3))
    let topology = Topology(
        channelSubsystems: [.init(cssid: 0), .init(cssid: 1)],
        channelPaths: [
            .init(id: chp("0.40"), type: 0x1a), .init(id: chp("0.41"), type: 0x1a), .init(id: chp("1.40"), type: 0x1a),
        ],
        subchannels: subchannels, multipleCSSEnabled: true)
    return try! Subsystem(topology: topology)
}

/// Everything queued for `owner`: (subscription, event name, chpid or subchannel text).
private func drain(_ hub: inout PathEventHub, _ owner: ConnectionID) -> [(Int, String)] {
    var out: [(Int, String)] = []
    while let (id, delivery) = hub.next(for: owner) {
        switch delivery {
        case .dropped(let n): out.append((id, "dropped \(n)"))
        case .event(let queued):
            switch queued.event {
            case .channelPath(let e): out.append((id, "chp \(e.chpid) \(e.change.rawValue) \(e.subchannels)"))
            case .subchannel(let e), .scenarioSubchannel(let e, _):
                out.append((id, "sch \(e.subchannel) \(e.chpid) lpm \(e.lpm)"))
            case .guest(let e, _): out.append((id, "guest \(e.guest) \(e.guestChpid) \(e.change.rawValue)"))
            case .hostGuest(let e, _):
                out.append((id, "host-guest \(e.guest) \(e.hostChpid) \(e.change.rawValue) \(e.devices.count)"))
            case .gap(let gap): out.append((id, "gap \(gap.reason.rawValue) \(gap.first)...\(gap.last)"))
            case .utilization(let e): out.append((id, "util \(e.chpid) \(e.level.rawValue) \(e.utilization)"))
            }
        }
    }
    return out
}

@Suite struct PathEventHubTests {
    /// linux-sysfs: one HOST_GUEST_PATH_CHANGED per guest per change, for granularity guest
    /// only, filtered by guest name, after the change's chpid event in sequence order.
    @Test func hostGuestChangesAreOneEventPerGuestForGranularityGuest() throws {
        var css = model()
        var hub = PathEventHub()
        let all = try hub.subscribe(owner: 1, filter: PathEventFilter(granularity: .guest), queueLimit: 100)
        let web = try hub.subscribe(
            owner: 2, filter: PathEventFilter(granularity: .guest, guests: ["web"]), queueLimit: 100)
        let chpid = try hub.subscribe(owner: 3, filter: PathEventFilter(granularity: .chpid), queueLimit: 100)
        let change = try css.varyPath(chp("0.40"), to: .offline)
        func device(_ n: UInt16) -> HostGuestDevice {
            HostGuestDevice(
                subchannel: SubchannelID(cssid: 0, ssid: 0, schno: n), mdev: "m\(n)", pim: 0x80, pam: 0x80,
                pom: 0xff, lpm: 0, pnom: 0)
        }
        let guests = [
            HostGuestPathChange(
                guest: "db", pid: 1, hostChpid: chp("0.40"), change: .offline, devices: (0..<42).map(device),
                withoutPath: 42),
            HostGuestPathChange(
                guest: "web", pid: nil, hostChpid: chp("0.40"), change: .offline, devices: [device(50)],
                withoutPath: 1),
        ]
        hub.publish(change, as: .offline, at: t0, hostGuests: guests, sequence: 1)
        #expect(drain(&hub, 1).map(\.1) == ["host-guest db 0.40 offline 42", "host-guest web 0.40 offline 1"])
        #expect(drain(&hub, 2).map(\.1) == ["host-guest web 0.40 offline 1"])
        #expect(drain(&hub, 3).map(\.1) == ["chp 0.40 offline \(change.affected.count)"])
        #expect([all, web, chpid].count == 3)
    }

    @Test func chpidGranularityGetsOneEventSubchannelGranularityOnePerSubchannel() throws {
        var css = model()
        var hub = PathEventHub()
        let a = try hub.subscribe(owner: 1, filter: PathEventFilter(granularity: .chpid), queueLimit: 100)
        let b = try hub.subscribe(owner: 2, filter: PathEventFilter(granularity: .subchannel), queueLimit: 100)
        let c = try hub.subscribe(owner: 3, filter: PathEventFilter(granularity: .both), queueLimit: 100)
        let reached = hub.publish(try css.varyPath(chp("0.40"), to: .offline), as: .offline, at: t0)
        #expect(reached.owners == [1, 2, 3])
        let one = drain(&hub, 1)
        #expect(one.map(\.1) == ["chp 0.40 offline 42"] && one[0].0 == a)
        let many = drain(&hub, 2)
        #expect(many.count == 42 && many.allSatisfy { $0.0 == b })
        #expect(many.first!.1 == "sch 0.0.0000 0.40 lpm 64" && many.last!.1 == "sch 0.0.0029 0.40 lpm 0")
        let both = drain(&hub, 3)
        #expect(both.count == 43 && both[0].1 == "chp 0.40 offline 42" && both.allSatisfy { $0.0 == c })
    }

    @Test func filtersByChpidSubchannelCssAndChange() throws {
        var css = model()
        var hub = PathEventHub()
        _ = try hub.subscribe(
            owner: 1, filter: PathEventFilter(granularity: .chpid, chpids: [chp("0.41")]), queueLimit: 100)
        _ = try hub.subscribe(
            owner: 2,
            filter: PathEventFilter(
                granularity: .both, subchannels: [sch("0.0.0005")], pathsOfSubchannels: [chp("0.40")]),
            queueLimit: 100)
        _ = try hub.subscribe(owner: 3, filter: PathEventFilter(granularity: .chpid, cssid: 1), queueLimit: 100)
        _ = try hub.subscribe(
            owner: 4, filter: PathEventFilter(granularity: .chpid, changes: [.online]), queueLimit: 100)

        var got: [Int: [String]] = [:]
        func drainAll() { for owner in 1...4 { got[owner, default: []] += drain(&hub, ConnectionID(owner)).map(\.1) } }
        hub.publish(try css.varyPath(chp("0.40"), to: .offline), as: .offline, at: t0)
        drainAll()
        hub.publish(try css.varyPath(chp("0.41"), to: .offline), as: .offline, at: t0)
        drainAll()
        hub.publish(try css.varyPath(chp("1.40"), to: .offline), as: .offline, at: t0)
        drainAll()
        hub.publish(try css.varyPath(chp("0.40"), to: .online), as: .online, at: t0)
        drainAll()

        #expect(got[1] == ["chp 0.41 offline 2"])
        #expect(
            got[2] == [
                "chp 0.40 offline 42", "sch 0.0.0005 0.40 lpm 0", "chp 0.40 online 42", "sch 0.0.0005 0.40 lpm 128",
            ])
        #expect(got[3] == ["chp 1.40 offline 1"])
        #expect(got[4] == ["chp 0.40 online 42"])
    }

    @Test func changeThatAltersNothingPublishesNothing() throws {
        var css = model()
        var hub = PathEventHub()
        _ = try hub.subscribe(owner: 1, filter: PathEventFilter(granularity: .both), queueLimit: 100)
        let reached = hub.publish(try css.varyPath(chp("0.40"), to: .online), as: .online, at: t0)  // already online
        #expect(reached.owners.isEmpty && drain(&hub, 1).isEmpty)
    }

    @Test func resetCarriesTheSolicitedCRW() throws {
        var css = model()
        var hub = PathEventHub()
        _ = try hub.subscribe(owner: 1, filter: PathEventFilter(granularity: .both), queueLimit: 100)
        let result = css.resetChannelPath(chp("0.41"))
        hub.publish(PathChange(resetOf: css.channelPath(chp("0.41"))!, crws: result.crws), as: .reset, at: t0)
        guard case .event(let queued)? = hub.next(for: 1)?.delivery, case .channelPath(let event) = queued.event else {
            Issue.record("expected a chpid event")
            return
        }
        #expect(event.change == .reset && event.subchannels == 0 && event.crw == result.crws.first?.rawValue)
        #expect(hub.next(for: 1) == nil)
    }

    @Test func oneConnectionsSubscriptionsInterleaveInPublicationOrder() throws {
        var css = model()
        var hub = PathEventHub()
        let a = try hub.subscribe(
            owner: 1, filter: PathEventFilter(granularity: .chpid, chpids: [chp("0.40")]), queueLimit: 100)
        let b = try hub.subscribe(
            owner: 1, filter: PathEventFilter(granularity: .chpid, chpids: [chp("0.41")]), queueLimit: 100)
        hub.publish(try css.varyPath(chp("0.41"), to: .offline), as: .offline, at: t0)
        hub.publish(try css.varyPath(chp("0.40"), to: .offline), as: .offline, at: t0)
        hub.publish(try css.varyPath(chp("0.41"), to: .online), as: .online, at: t0)
        let got = drain(&hub, 1)
        // 0.41's two events were coalesced into the later one, which comes after 0.40's.
        #expect(got.map(\.0) == [a, b])
        #expect(got.map(\.1) == ["chp 0.40 offline 42", "chp 0.41 online 2"])
    }

    @Test func subscriptionsBelongToTheirOwner() throws {
        var css = model()
        var hub = PathEventHub(maxSubscriptionsPerOwner: 2)
        let a = try hub.subscribe(owner: 1, filter: PathEventFilter(granularity: .chpid), queueLimit: 10)
        _ = try hub.subscribe(
            owner: 1, filter: PathEventFilter(granularity: .chpid, chpids: [chp("0.40")]), queueLimit: 10)
        #expect(throws: PathEventHub.HubError.tooManySubscriptions(limit: 2)) {
            try hub.subscribe(owner: 1, filter: PathEventFilter(granularity: .chpid), queueLimit: 10)
        }
        #expect(throws: PathEventHub.HubError.unknownSubscription(a)) { try hub.unsubscribe(owner: 2, id: a) }
        try hub.unsubscribe(owner: 1, id: a)
        #expect(throws: PathEventHub.HubError.unknownSubscription(a)) { try hub.unsubscribe(owner: 1, id: a) }
        hub.removeOwner(1)
        #expect(hub.subscriptionCount == 0)
        let reached = hub.publish(try css.varyPath(chp("0.40"), to: .offline), as: .offline, at: t0)
        #expect(reached.owners.isEmpty)
    }

    @Test func scale65536SubchannelEventsFitTheDefaultQueue() throws {
        var css = try Subsystem(topology: .synthetic(subchannels: 262_144, chpids: 32, paths: 8))
        var hub = PathEventHub()
        _ = try hub.subscribe(owner: 1, filter: PathEventFilter(granularity: .subchannel), queueLimit: 131_072)
        hub.publish(try css.varyPath(chp("0.00"), to: .offline), as: .offline, at: t0)
        var count = 0
        while hub.next(for: 1) != nil { count += 1 }
        #expect(count == 65_536)
    }
}

@Suite struct PathEventBudgetTests {
    @Test func queueLimitsOfOneOwnerAreBounded() throws {
        var hub = PathEventHub(maxQueuedPerOwner: 100)
        _ = try hub.subscribe(owner: 1, filter: PathEventFilter(granularity: .chpid), queueLimit: 60)
        #expect(throws: PathEventHub.HubError.queueBudgetExceeded(budget: 100, used: 60)) {
            try hub.subscribe(owner: 1, filter: PathEventFilter(granularity: .chpid), queueLimit: 41)
        }
        _ = try hub.subscribe(owner: 1, filter: PathEventFilter(granularity: .chpid), queueLimit: 40)
        _ = try hub.subscribe(owner: 2, filter: PathEventFilter(granularity: .chpid), queueLimit: 100)  // per owner
        #expect(hub.queueBudgetUsed(by: 1) == 100)
    }
}
