// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import JSONValues
import TestSupport
import Testing

@testable import TopologyFile

#if canImport(Glibc)
import Glibc
#endif

extension TopologyFileTests {
    // MARK: Guests

    static let guestsText = """
        {"format": "cssd-topology", "version": 1,
         "guests": [
           {"name": "g1", "strategy": "per-device", "crw-capacity": 8, "devices": [
             {"virtio": {"subchannel": "FE.0.10", "devno": "fe.0.0100", "cu-model": "0x02"}},
             {"virtio": {"cu-model": 1}},
             {"virtio": {"devno": 300, "cu-model": "3"}},
             {"virtio": {"devno": "fe.0.0200", "cu-model": 1}},
             {"passthrough": {"host-subchannel": "0.0.0003"}},
             {"passthrough": {"guest-chpids": ["0.40", "0.41"], "guest-subchannel": "0.1.7", "host-subchannel": "0.0.4"}}
           ]},
           {"devices": [], "name": "g2"},
           {"name": "g3"}
         ]}
        """

    @Test func guestsDecode() throws {
        let topology = try TopologyFile.decode(Self.guestsText)
        #expect(
            topology.guests == [
                .init(
                    name: "g1", strategy: "per-device", crwCapacity: 8,
                    devices: [
                        .virtio(subchannel: sch("fe.0.0010"), devno: 0x100, cuModel: 2),
                        .virtio(subchannel: nil, devno: nil, cuModel: 1),
                        .virtio(subchannel: nil, devno: 300, cuModel: 3),
                        .virtio(subchannel: nil, devno: 0x200, cuModel: 1),
                        .passthrough(host: sch("0.0.0003"), guestSubchannel: nil, guestChpids: nil),
                        .passthrough(
                            host: sch("0.0.0004"), guestSubchannel: sch("0.1.0007"),
                            guestChpids: [chp("0.40"), chp("0.41")]),
                    ]),
                .init(name: "g2"),
                .init(name: "g3", strategy: nil, crwCapacity: nil, devices: []),
            ])
        // Without "guests", none.
        #expect(try TopologyFile.decode(document()).guests.isEmpty)
        #expect(try TopologyFile.decode(document(extra: "\n  \"guests\": [],")).guests.isEmpty)
    }

    /// Guests, with values that only building them would refuse (kept as they are).
    static let withGuests: Topology = {
        var topology = variety
        topology.guests = [
            .init(
                name: "guest-1", strategy: "lazy", crwCapacity: 2,
                devices: [
                    .virtio(subchannel: sch("fe.3.ffff"), devno: 0xffff, cuModel: 0xff),
                    .virtio(subchannel: nil, devno: 0, cuModel: 0),
                    .passthrough(
                        host: sch("12.3.ffff"), guestSubchannel: sch("0.0.0000"),
                        guestChpids: [chp("0.00"), chp("0.01")]),
                    .passthrough(host: sch("0.1.0000"), guestSubchannel: nil, guestChpids: []),
                ]),
            .init(
                name: "no such strategy, any name", strategy: "fastest", crwCapacity: -1,
                devices: [
                    .virtio(subchannel: nil, devno: 0x10000, cuModel: 0x100),
                    .virtio(subchannel: sch("fe.0.0001"), devno: -1, cuModel: -5),
                ]),
            .init(name: ""),
        ]
        return topology
    }()

    @Test func guestsLayout() {
        let topology = Topology(
            channelSubsystems: [], channelPaths: [], subchannels: [],
            guests: [
                .init(
                    name: "g1", strategy: "crw", crwCapacity: 64,
                    devices: [
                        .virtio(subchannel: sch("fe.0.0000"), devno: nil, cuModel: 1),
                        .virtio(subchannel: nil, devno: 5, cuModel: 2),
                        .virtio(subchannel: sch("fe.1.0002"), devno: 0x0102, cuModel: 3),
                        .passthrough(host: sch("0.0.0003"), guestSubchannel: nil, guestChpids: nil),
                        .passthrough(
                            host: sch("0.0.0004"), guestSubchannel: sch("fe.1.0000"), guestChpids: [chp("fe.40")]),
                    ]),
                .init(name: "g2"),
            ])
        #expect(
            TopologyFile.encodeText(topology) == """
                {
                  "format": "cssd-topology",
                  "version": 1,
                  "channel-subsystems": [],
                  "chpids": [],
                  "subchannels": [],
                  "guests": [
                    {"name": "g1", "strategy": "crw", "crw-capacity": 64, "devices": [
                      {"virtio": {"subchannel": "fe.0.0000", "cu-model": "0x01"}},
                      {"virtio": {"devno": "fe.0.0005", "cu-model": "0x02"}},
                      {"virtio": {"subchannel": "fe.1.0002", "devno": "fe.1.0102", "cu-model": "0x03"}},
                      {"passthrough": {"host-subchannel": "0.0.0003"}},
                      {"passthrough": {"host-subchannel": "0.0.0004", "guest-subchannel": "fe.1.0000", "guest-chpids": ["fe.40"]}}
                    ]},
                    {"name": "g2", "devices": []}
                  ]
                }

                """)
    }

    /// Guest names and strategies are free strings in the file: written escaped, read back
    /// (by jansson) as they were.
    @Test func guestStringsAreEscaped() throws {
        let topology = Topology(
            channelSubsystems: [], channelPaths: [], subchannels: [],
            guests: [.init(name: "a\"b\\c\n\u{1}\u{e9}\u{20ac}", strategy: "\t")])
        let bytes = TopologyFile.encode(topology)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains(#"{"name": "a\"b\\c\u000a\u0001\#u{e9}\#u{20ac}", "strategy": "\u0009", "devices": []}"#))
        let decoded = try TopologyFile.decode(bytes, name: "escaped")
        #expect(decoded == topology)
        #expect(TopologyFile.encode(decoded) == bytes)
        expectDecodersAgree(text, fastPath: false)
    }

}
