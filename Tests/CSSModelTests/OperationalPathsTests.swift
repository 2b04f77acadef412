// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Testing

@testable import CSSModel

/// `Subchannel.operationalPaths`: the mask Linux's cio calls operational (PIM & PAM & POM &
/// LPM) and the in-use flag (online and there), which the impact query, the interlock and the
/// redundancy metrics share.
@Suite struct OperationalPathsTests {
    @Test func maskIsTheFourMasksAndFollowsEveryOperation() throws {
        var model = Fixtures.small()
        let id = Fixtures.sch("0.0.0000")  // 0.40 and 0.41
        #expect(try model.operationalPaths(of: id).mask == 0xc0)
        #expect(try model.operationalPaths(of: id).count == 2)
        try model.varyPath(Fixtures.chp("0.40"), to: .offline)  // LPM
        #expect(try model.operationalPaths(of: id).mask == 0x40)
        #expect(try model.operationalPaths(of: id).isSinglePath)
        try model.varyPath(Fixtures.chp("0.40"), to: .online)
        try model.configurePath(Fixtures.chp("0.41"), to: .standby)  // PAM
        #expect(try model.operationalPaths(of: id).mask == 0x80)
        try model.injectPathFault(Fixtures.chp("0.40"), .temporaryError)  // POM
        #expect(try model.operationalPaths(of: id).mask == 0)
        #expect(try model.operationalPaths(of: id).isWithoutPath)
        #expect(throws: ModelError.unknownSubchannel(Fixtures.sch("0.0.0fff"))) {
            try model.operationalPaths(of: Fixtures.sch("0.0.0fff"))
        }
    }

    @Test func inUseComesFromTheTopologyAndDefaultsToOnline() throws {
        let paths = [Topology.ChannelPath(id: Fixtures.chp("0.40"), type: 0x1a)]
        func dasd(_ schno: UInt16, devno: Int?, online: Bool = true, type: SubchannelType = .io) -> Topology.Subchannel
        {
            Topology.Subchannel(
                id: SubchannelID(cssid: 0, ssid: 0, schno: schno), devno: type == .io ? devno : nil,
                devType: 0x3390, devModel: 0xc, cuType: 0x3990, cuModel: 0xe9,
                chpids: type == .io ? [Fixtures.chp("0.40")] : [], type: type, online: online)
        }
        let model = try Subsystem(
            topology: Topology(
                channelSubsystems: [.init(cssid: 0)], channelPaths: paths,
                subchannels: [
                    dasd(0, devno: 0x100), dasd(1, devno: 0x101, online: false), dasd(2, devno: nil),
                    dasd(3, devno: nil, type: .chsc),
                ]))
        let values = try (0..<4).map { try model.operationalPaths(of: SubchannelID(cssid: 0, ssid: 0, schno: $0)) }
        #expect(values.map(\.inUse) == [true, false, false, false])
        #expect(values.map(\.isDevice) == [true, true, false, false])
        // A CHSC subchannel has no paths: mask 0, but it is not a device without a path.
        #expect(values[3].mask == 0 && !values[3].isWithoutPath)
        #expect(values[0].isSinglePath && values[1].isSinglePath && !values[2].isSinglePath)
    }

    /// The same definition as the maintained count of subchannels without an operational path.
    @Test(arguments: 0..<20)
    func agreesWithTheCountWithoutOperationalPath(seed: Int) throws {
        var rng = SplitMix64(seed: UInt64(seed) &* 0x5851_f42d &+ 3)
        var model = PropertyTests.randomModel(seed: UInt64(seed), mcss: seed % 2 == 0)
        let chpids = model.channelPaths.map(\.id)
        for _ in 0..<100 {
            let chpid = chpids.randomElement(using: &rng)!
            switch Int.random(in: 0..<3, using: &rng) {
            case 0: try model.varyPath(chpid, to: Bool.random(using: &rng) ? .online : .offline)
            case 1: try model.configurePath(chpid, to: Bool.random(using: &rng) ? .configured : .standby)
            default: try model.injectPathFault(chpid, PathFault.allCases.randomElement(using: &rng)!)
            }
            for cssid in model.cssids {
                let byMask = model.subchannels.count {
                    $0.id.cssid == cssid && $0.type == .io && $0.operationalPaths.mask == 0
                }
                #expect(byMask == model.subchannelsWithoutOperationalPath(cssid: cssid))
            }
        }
    }
}
