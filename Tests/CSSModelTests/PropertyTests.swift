// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Testing

@testable import CSSModel

/// Random sequences of vary, configure, fault and reset, checked after every step against
/// invariants and against an independent statement of what the machine reports.
@Suite struct PropertyTests {
    /// A random topology: css 0, `chpids` FICON paths (some standby, some offline), each
    /// subchannel with 1...8 distinct random paths.
    static func randomModel(seed: UInt64, mcss: Bool) -> Subsystem {
        var rng = SplitMix64(seed: seed)
        let chpids = 10
        var css: [Topology.ChannelSubsystem] = [.init(cssid: 0)]
        if mcss { css.append(.init(cssid: 0xfe)) }
        let paths: [Topology.ChannelPath] = (0..<chpids).map { (n: Int) -> Topology.ChannelPath in
            let vary: VaryState = n == 3 ? .offline : .online
            let configure: ConfigureState = n == 7 ? .standby : .configured
            return Topology.ChannelPath(
                id: ChannelPathID(cssid: 0, chpid: UInt8(0x40 + n)), type: 0x1a, shared: true, vary: vary,
                configure: configure)
        }
        let ids: [ChannelPathID] = paths.map { $0.id }
        let subchannels: [Topology.Subchannel] = (0..<60).map { (n: Int) -> Topology.Subchannel in
            let count = Int.random(in: 1...8, using: &rng)
            let chosen = ids.shuffled(using: &rng).prefix(count)
            return Topology.Subchannel(
                id: SubchannelID(cssid: 0, ssid: UInt8(n % 2), schno: UInt16(n)), devno: 0x1000 + n, devType: 0x3390,
                devModel: 0x0c, cuType: 0x3990, cuModel: 0xe9, chpids: Array(chosen))
        }
        let topology = Topology(
            channelSubsystems: css, channelPaths: paths, subchannels: subchannels, multipleCSSEnabled: mcss)
        return try! Subsystem(topology: topology)
    }

    /// What the machine queues, stated per operation rather than per state change (the way
    /// the model computes it), so that the two descriptions check each other.
    static func expectedWords(
        operation: String, before: ChannelPath, mcss: Bool
    ) -> [UInt32] {
        let configured = before.configure == .configured
        let failed = before.condition == .permanentError
        var erc: UInt32?
        var solicited = false
        switch operation {
        case "standby": if configured && !failed { erc = 6 }
        case "configured": if before.configure == .standby && !failed { erc = 2 }
        case "permanent-error": if configured && !failed { erc = 6 }
        case "temporary-error": if configured && before.condition == .operational { erc = 3 }
        case "recovered": if configured && before.condition != .operational { erc = 2 }
        case "reset":
            if configured {
                erc = 2
                solicited = true
            }
        default: break
        }
        guard let erc else { return [] }
        let s: UInt32 = solicited ? 0x4000_0000 : 0
        let chpid = UInt32(before.id.chpid)
        if !mcss { return [s | 0x0400_0000 | erc << 16 | chpid] }
        return [s | 0x1400_0000 | erc << 16 | chpid, s | 0x0400_0000 | erc << 16 | UInt32(before.id.cssid) << 8]
    }

    @Test(arguments: [(UInt64(1), false), (2, true), (3, false), (4, true)])
    func randomSequencesKeepMasksConsistent(seed: UInt64, mcss: Bool) throws {
        var model = Self.randomModel(seed: seed, mcss: mcss)
        var rng = SplitMix64(seed: seed &* 7919)
        // Per-subchannel vary overrides, cleared by a vary of the whole path.
        var lpmOverride: [UInt64: Bool] = [:]
        let operations = [
            "vary-on", "vary-off", "vary-one", "standby", "configured", "permanent-error", "temporary-error",
            "recovered", "reset",
        ]
        for step in 0..<3000 {
            let path = model.channelPaths.randomElement(using: &rng)!
            let operation = operations.randomElement(using: &rng)!
            let snapshot = model.subchannels
            var queued: [CRW] = []
            switch operation {
            case "vary-on", "vary-off":
                let change = try model.varyPath(path.id, to: operation == "vary-on" ? .online : .offline)
                lpmOverride = lpmOverride.filter { $0.key & 0xffff != UInt64(path.id.rawValue) }
                queued = change.crws
                try checkAffected(change, snapshot, model)
            case "vary-one":
                let users = model.subchannels(using: path.id)
                guard !users.isEmpty else { continue }
                let user = users[Int.random(in: 0..<users.count, using: &rng)]
                let online = Bool.random(using: &rng)
                let change = try model.varyPath(path.id, to: online ? .online : .offline, subchannel: user.id)
                lpmOverride[Self.overrideKey(user.id, path.id)] = online
                try checkAffected(change, snapshot, model)
            case "standby", "configured":
                let change = try model.configurePath(path.id, to: ConfigureState(name: operation)!)
                queued = change.crws
                try checkAffected(change, snapshot, model)
            case "reset":
                let result = model.resetChannelPath(path.id)
                #expect(result.cc == (path.configure == .configured ? 0 : 3))
                queued = result.crws
                #expect(model.subchannels == snapshot)
            default:
                let change = try model.injectPathFault(path.id, PathFault(rawValue: operation)!)
                queued = change.crws
                try checkAffected(change, snapshot, model)
            }
            let expected =
                operation.hasPrefix("vary") ? [] : Self.expectedWords(operation: operation, before: path, mcss: mcss)
            #expect(queued.map(\.rawValue) == expected, "step \(step): \(operation) \(path.id)")
            #expect(Fixtures.drain(&model) == expected, "step \(step): \(operation) \(path.id)")
            try checkInvariants(model, lpmOverride, step: step)
        }
    }

    /// The change lists exactly the subchannels whose masks differ from the snapshot.
    func checkAffected(_ change: PathChange, _ snapshot: [Subchannel], _ model: Subsystem) throws {
        let now = model.subchannels
        let differing = zip(snapshot, now).filter { $0.0 != $0.1 }.map(\.1.id)
        #expect(change.affected.map(\.id) == differing)
    }

    /// Collects violations as text and expects none, one expectation per step: an
    /// expectation per mask bit would make the test slow in debug builds.
    static func overrideKey(_ sch: SubchannelID, _ chpid: ChannelPathID) -> UInt64 {
        UInt64(sch.rawValue) << 16 | UInt64(chpid.rawValue)
    }

    func checkInvariants(_ model: Subsystem, _ lpmOverride: [UInt64: Bool], step: Int) throws {
        let pathsByChpid = Dictionary(uniqueKeysWithValues: model.channelPaths.map { ($0.id.chpid, $0) })
        var violations: [String] = []
        for sch in model.subchannels {
            let pmcw = sch.schib.pmcw
            if pmcw.pam & ~pmcw.pim != 0 { violations.append("\(sch.id): pam outside pim") }
            if pmcw.lpm & ~pmcw.pim != 0 { violations.append("\(sch.id): lpm outside pim") }
            if pmcw.pnom & ~pmcw.pim != 0 { violations.append("\(sch.id): pnom outside pim") }
            if pmcw.pom | pmcw.pim != 0xff { violations.append("\(sch.id): pom lost a bit of an uninstalled path") }
            if sch.schib.scsw.pathNotOperational != (pmcw.pnom != 0) {
                violations.append("\(sch.id): PNO != (pnom != 0)")
            }
            for slot in 0..<8 where pmcw.pim & pathMaskBit(slot: slot) != 0 {
                let path = pathsByChpid[pmcw.chpids[slot]]!
                let chpid = path.id
                let bit = pathMaskBit(slot: slot)
                if path.configure == .standby && pmcw.pam & bit != 0 {
                    violations.append("standby \(chpid) in pam of \(sch.id)")
                }
                if (pmcw.pam & bit != 0) != path.isAvailable { violations.append("\(sch.id) \(chpid): pam") }
                if (pmcw.pom & bit != 0) != path.isOperational { violations.append("\(sch.id) \(chpid): pom") }
                if (pmcw.pnom & bit != 0) == path.isOperational { violations.append("\(sch.id) \(chpid): pnom") }
                let online = lpmOverride[Self.overrideKey(sch.id, chpid)] ?? (path.vary == .online)
                if (pmcw.lpm & bit != 0) != online { violations.append("\(sch.id) \(chpid): lpm") }
            }
        }
        // The member index agrees with the records.
        for path in model.channelPaths {
            let users = model.subchannels(using: path.id)
            if users.count != path.subchannelCount { violations.append("\(path.id): member count") }
            for position in users.indices
            where users[position].schib.pmcw.chpids[users.slot(at: position)] != path.id.chpid {
                violations.append("\(path.id): member \(users[position].id) has another chpid in its slot")
            }
        }
        #expect(violations.isEmpty, "step \(step): \(violations.prefix(5))")
    }
}
