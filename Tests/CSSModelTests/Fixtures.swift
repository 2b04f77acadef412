// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

@testable import CSSModel

/// Small topologies the tests share, written out so that every expected mask can be read off.
enum Fixtures {
    static func chp(_ text: String) -> ChannelPathID { try! ChannelPathID(parsing: text) }
    static func sch(_ text: String) -> SubchannelID { try! SubchannelID(parsing: text) }

    /// css 0 (and optionally css 1 for MCSSE): FICON chpids 0.40, 0.41, 0.42, OSA 0.60 in
    /// standby, FICON 0.43 varied offline; subchannels
    /// 0.0.0000 [40 41], 0.0.0001 [41 42 40], 0.0.0002 [42], 0.0.0003 [40 60 43], 0.1.0000 [41].
    static func small(multipleCSS: Bool = false, crwCapacity: Int = 256) -> Subsystem {
        var css: [Topology.ChannelSubsystem] = [.init(cssid: 0)]
        if multipleCSS { css.append(.init(cssid: 1)) }
        let paths: [Topology.ChannelPath] = [
            .init(id: chp("0.40"), type: 0x1a, shared: true, pchid: 0x100),
            .init(id: chp("0.41"), type: 0x1a, shared: true, pchid: 0x101),
            .init(id: chp("0.42"), type: 0x1a, shared: true),
            .init(id: chp("0.43"), type: 0x1a, vary: .offline),
            .init(id: chp("0.60"), type: 0x11, configure: .standby),
        ]
        func dasd(_ id: String, _ devno: Int, _ chpids: [String]) -> Topology.Subchannel {
            .init(
                id: sch(id), devno: devno, devType: 0x3390, devModel: 0x0c, cuType: 0x3990, cuModel: 0xe9,
                chpids: chpids.map(chp), enabled: true, isc: 3)
        }
        let subchannels = [
            dasd("0.0.0000", 0x1000, ["0.40", "0.41"]),
            dasd("0.0.0001", 0x1001, ["0.41", "0.42", "0.40"]),
            dasd("0.0.0002", 0x1002, ["0.42"]),
            dasd("0.0.0003", 0x1003, ["0.40", "0.60", "0.43"]),
            dasd("0.1.0000", 0x1000, ["0.41"]),
        ]
        let topology = Topology(
            channelSubsystems: css, channelPaths: paths, subchannels: subchannels, multipleCSSEnabled: multipleCSS)
        return try! Subsystem(topology: topology, crwCapacity: crwCapacity)
    }

    /// Pops every pending CRW.
    static func drain(_ model: inout Subsystem) -> [UInt32] {
        var words: [UInt32] = []
        while true {
            let result = model.storeChannelReportWord()
            if result.cc == 1 { return words }
            words.append(result.crw.rawValue)
        }
    }
}

/// A small deterministic generator (SplitMix64), so property tests replay exactly.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
