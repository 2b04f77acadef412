// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Testing

@testable import CSSModel

/// The scale target: 262,144 subchannels, 32 chpids, 8 paths each, so each chpid is
/// shared by 65,536 subchannels. Timing is measured by the benchmark; here we check that the
/// model is built, indexed and updated correctly at that size, and its storage per subchannel.
@Suite struct ScaleTests {
    @Test func fullSizeSyntheticTopology() throws {
        let topology = try Topology.synthetic(subchannels: 262_144, chpids: 32, paths: 8)
        var model = try Subsystem(topology: topology)
        #expect(model.subchannels.count == 262_144)
        #expect(model.channelPaths.allSatisfy { $0.subchannelCount == 65_536 })
        #expect(model.storageBytes / 262_144 <= 256)

        let chpid = ChannelPathID(cssid: 0, chpid: 0x11)
        let off = try model.varyPath(chpid, to: .offline)
        #expect(off.affected.count == 65_536)
        #expect(off.crws.isEmpty)
        let sample = try #require(model.subchannel(SubchannelID(cssid: 0, ssid: 3, schno: 0xfffe)))
        #expect(sample.id.description == "0.3.fffe")
        let members = model.subchannels(using: chpid)
        let page = members.index(atOrAfter: SubchannelID(cssid: 0, ssid: 2, schno: 0))
        #expect(page == 32_768)
        #expect(members[page].schib.pmcw.lpm.nonzeroBitCount == 7)

        let gone = try model.configurePath(chpid, to: .standby)
        #expect(gone.affected.count == 65_536)
        #expect(gone.crws.map(\.rawValue) == [0x0406_0011])
    }
}
