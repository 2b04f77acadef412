// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

extension Topology {
    /// The built-in machine, used when no topology file is given: small, but shaped like a
    /// real LPAR with a QEMU virtual css beside it, so that every command has something
    /// meaningful to show.
    ///
    /// css 0:
    /// - FICON (0x1a) chpids 0.40-0.43, shared: 42 DASDs 0.0.1000-0.0.1029 (3390/0c on
    ///   3990/e9) with four paths each, so one chpid event touches 42 subchannels (the seed);
    /// - FICON chpids 0.44-0.4b, shared: 8 DASDs 0.0.2000-0.0.2007 with all eight paths;
    /// - FICON chpid 0.4c configured and 0.4d in standby: 2 DASDs 0.0.3000-0.0.3001 with both,
    ///   so their PAM (c0 -> 80) shows the standby path;
    /// - FICON chpid 0.4e reserved (another partition's), used by no device;
    /// - OSA (0x11, OSD) chpid 0.60: the read/write/data triple 0.0.0600-0.0.0602 (1732/01 on 1731/01),
    ///   QDIO devices (PMCW QF, from their control unit): they cannot be passed through.
    /// css 0xfe (virtual, MCSSE on):
    /// - virtio chpid fe.00 (0x32): virtio-ccw net, two blk, console (CU 3832/model = virtio id,
    ///   device type 0000/00, as lscss shows them) at fe.0.0000-fe.0.0003.
    /// Subchannel numbers follow device numbers in ascending order, as the machine assigns them.
    ///
    /// One guest, `guest1` (strategy crw), in QEMU's virtual css fe: virtio-net at fe.0.0000
    /// and virtio-blk at fe.0.0001 on fe.00, and the 42 DASDs of chpids 0.40-0.43 (host
    /// 0.0.0003-0.0.002c) passed through at fe.0.0002-fe.0.002b with their own device numbers
    /// and identity chpids fe.40-fe.43, clear of the virtual fe.00.
    package static let embeddedDefault: Topology = {
        func ficon(_ chpid: UInt8, pchid: Int, configure: ConfigureState = .configured) -> ChannelPath {
            ChannelPath(
                id: ChannelPathID(cssid: 0, chpid: chpid), type: 0x1a, shared: true, pchid: pchid, configure: configure)
        }
        var paths: [ChannelPath] = (0x40...0x4c).map { ficon(UInt8($0), pchid: 0x100 + $0 - 0x40) }
        paths.append(ficon(0x4d, pchid: 0x10d, configure: .standby))
        paths.append(ficon(0x4e, pchid: 0x10e, configure: .reserved))
        paths.append(ChannelPath(id: ChannelPathID(cssid: 0, chpid: 0x60), type: 0x11, shared: true, pchid: 0x1c0))
        paths.append(ChannelPath(id: ChannelPathID(cssid: 0xfe, chpid: 0x00), type: 0x32))

        var subchannels: [Subchannel] = []
        func add(css: UInt8, devno: Int, dev: (Int, Int), cu: (Int, Int), chpids: [UInt8], isc: Int = 3) {
            subchannels.append(
                Subchannel(
                    id: SubchannelID(cssid: css, ssid: 0, schno: UInt16(subchannels.count { $0.id.cssid == css })),
                    devno: devno, devType: dev.0, devModel: dev.1, cuType: cu.0, cuModel: cu.1,
                    chpids: chpids.map { ChannelPathID(cssid: css, chpid: $0) }, enabled: true, isc: isc))
        }
        for devno in 0x0600...0x0602 {
            add(css: 0, devno: devno, dev: (0x1732, 0x01), cu: (0x1731, 0x01), chpids: [0x60])
        }
        for devno in 0x1000...0x1029 {
            add(css: 0, devno: devno, dev: (0x3390, 0x0c), cu: (0x3990, 0xe9), chpids: [0x40, 0x41, 0x42, 0x43])
        }
        for devno in 0x2000...0x2007 {
            add(css: 0, devno: devno, dev: (0x3390, 0x0c), cu: (0x3990, 0xe9), chpids: Array(0x44...0x4b))
        }
        for devno in 0x3000...0x3001 {
            add(css: 0, devno: devno, dev: (0x3390, 0x0c), cu: (0x3990, 0xe9), chpids: [0x4c, 0x4d])
        }
        for (devno, virtioID) in [(0x0000, 1), (0x0001, 2), (0x0002, 2), (0x0003, 3)] {
            add(css: 0xfe, devno: devno, dev: (0, 0), cu: (0x3832, virtioID), chpids: [0x00])
        }
        var guestDevices: [GuestDevice] = [
            .virtio(subchannel: SubchannelID(cssid: 0xfe, ssid: 0, schno: 0), devno: nil, cuModel: 1),
            .virtio(subchannel: SubchannelID(cssid: 0xfe, ssid: 0, schno: 1), devno: nil, cuModel: 2),
        ]
        let onChpid40 = subchannels.filter {
            $0.id.cssid == 0 && $0.chpids.contains(ChannelPathID(cssid: 0, chpid: 0x40))
        }
        guestDevices += onChpid40.map { .passthrough(host: $0.id, guestSubchannel: nil, guestChpids: nil) }
        return Topology(
            channelSubsystems: [ChannelSubsystem(cssid: 0), ChannelSubsystem(cssid: 0xfe)],
            channelPaths: paths, subchannels: subchannels,
            guests: [Guest(name: "guest1", strategy: "crw", devices: guestDevices)])
    }()
}
