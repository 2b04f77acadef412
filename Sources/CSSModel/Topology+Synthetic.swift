// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

extension Topology {
    /// The largest synthetic topology: every subchannel number of all four subchannel sets.
    package static let maximumSyntheticSubchannels = 4 * 0x10000

    /// A generated topology for scale tests and benchmarks (`cssctl gen-topology`).
    ///
    /// One css `cssid` with FICON (0x1a) chpids `cssid.00` ... `cssid.(chpids-1)`, shared and
    /// configured, and `subchannels` DASDs (3390/0c on 3990/e9) numbered from `cssid.0.0000`
    /// upwards, filling subchannel set 0 before set 1, with devno = schno. Subchannel i uses
    /// chpids (i*paths + j) mod chpids for j in 0..<paths: consecutive, so distinct, and
    /// spread round-robin so that each chpid is shared by subchannels*paths/chpids of them
    /// (exactly, when that divides; otherwise counts differ by at most one).
    /// - Throws: `TopologyError` when a count is out of range or `paths > chpids`.
    package static func synthetic(subchannels: Int, chpids: Int, paths: Int, cssid: Int = 0) throws(TopologyError)
        -> Topology
    {
        guard (0...0xff).contains(cssid) else {
            throw TopologyError(field: "cssid", reason: "cssid \(cssid) is out of range (0..0xff)")
        }
        guard (1...256).contains(chpids) else {
            throw TopologyError(field: "chpids", reason: "chpids \(chpids) is out of range (1..256)")
        }
        guard (1...8).contains(paths) else {
            throw TopologyError(field: "paths", reason: "paths \(paths) is out of range (1..8)")
        }
        guard paths <= chpids else {
            throw TopologyError(
                field: "paths", reason: "paths \(paths) is more than chpids \(chpids): a subchannel's paths must differ"
            )
        }
        guard (0...maximumSyntheticSubchannels).contains(subchannels) else {
            throw TopologyError(
                field: "subchannels",
                reason: "subchannels \(subchannels) is out of range (0..\(maximumSyntheticSubchannels))")
        }
        let css = UInt8(cssid)
        let pathIDs = (0..<chpids).map { ChannelPathID(cssid: css, chpid: UInt8($0)) }
        let channelPaths = pathIDs.map { ChannelPath(id: $0, type: 0x1a, shared: true, pchid: 0x100 + Int($0.chpid)) }
        var list: [Subchannel] = []
        list.reserveCapacity(subchannels)
        for i in 0..<subchannels {
            let schno = i & 0xffff
            var slots: [ChannelPathID] = []
            slots.reserveCapacity(paths)
            for j in 0..<paths { slots.append(pathIDs[(i * paths + j) % chpids]) }
            list.append(
                Subchannel(
                    id: SubchannelID(cssid: css, ssid: UInt8(i >> 16), schno: UInt16(schno)), devno: schno,
                    devType: 0x3390, devModel: 0x0c, cuType: 0x3990, cuModel: 0xe9, chpids: slots))
        }
        return Topology(
            channelSubsystems: [ChannelSubsystem(cssid: cssid)], channelPaths: channelPaths, subchannels: list)
    }
}
