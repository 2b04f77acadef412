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
    // MARK: Round trips

    static let variety = Topology(
        channelSubsystems: [.init(cssid: 0x12), .init(cssid: 0)],
        channelPaths: [
            .init(id: chp("12.ff"), type: 0xff, shared: true, pchid: 0xffff, vary: .offline, configure: .standby),
            .init(id: chp("12.00"), type: 0, pchid: 0),
            .init(id: chp("0.4a"), type: 0x1a, configure: .notRecognized),
            .init(id: chp("0.4b"), type: 0x1b, configure: .reserved),
        ],
        subchannels: [
            .init(
                id: sch("12.3.ffff"), devno: 0xffff, devType: 0xffff, devModel: 0xff, cuType: 0, cuModel: 0,
                chpids: [chp("12.ff"), chp("12.00")], enabled: true, isc: 7),
            .init(
                id: sch("0.0.0000"), devno: nil, devType: 0, devModel: 0, cuType: 0x3832, cuModel: 3,
                chpids: [chp("0.4b"), chp("0.4a")]),
            .init(
                id: sch("0.1.0000"), devno: 0, devType: 0x3390, devModel: 0xc, cuType: 0x3990, cuModel: 0xe9,
                chpids: [chp("0.4a")], isc: 1, online: false),
        ],
        multipleCSSEnabled: false)

    @Test(
        "decode(encode(t)) == t",
        arguments: [
            Sample("embedded default", .embeddedDefault),
            Sample("synthetic", try! Topology.synthetic(subchannels: 70_000, chpids: 7, paths: 3, cssid: 5)),
            Sample(
                "synthetic, virtual css", try! Topology.synthetic(subchannels: 10, chpids: 256, paths: 8, cssid: 0xfe)),
            Sample("variety", variety),
            Sample("guests", withGuests),
            Sample(
                "multiple-css on",
                Topology(
                    channelSubsystems: [.init(cssid: 0)], channelPaths: [], subchannels: [], multipleCSSEnabled: true)),
            Sample("empty", Topology(channelSubsystems: [], channelPaths: [], subchannels: [])),
        ])
    func roundTrip(_ sample: Sample) throws {
        let (name, topology) = (sample.name, sample.topology)
        try topology.validate()
        let bytes = TopologyFile.encode(topology)
        let decoded = try TopologyFile.decode(bytes, name: name)
        #expect(decoded == topology)
        #expect(TopologyFile.encode(decoded) == bytes)
        // Whatever the layout, it is JSON that jansson reads back too.
        #expect(QMPWireParses(bytes))
        // Both decoders read it, the fast one included.
        let text = String(decoding: bytes, as: UTF8.self)
        expectDecodersAgree(text, fastPath: true)
    }

    @Test func encodedLayout() throws {
        let topology = Topology(
            channelSubsystems: [.init(cssid: 0), .init(cssid: 0xfe)],
            channelPaths: [
                .init(id: chp("0.4a"), type: 0x1a, shared: true, pchid: 0x1c0),
                .init(id: chp("fe.00"), type: 0x32, configure: .standby),
            ],
            subchannels: [
                .init(
                    id: sch("0.0.0000"), devno: 0x4711, devType: 0x3390, devModel: 0xc, cuType: 0x3990, cuModel: 0xe9,
                    chpids: [chp("0.4a")], enabled: true, isc: 3),
                .init(
                    id: sch("fe.0.0000"), devno: nil, devType: 0, devModel: 0, cuType: 0x3832, cuModel: 1,
                    chpids: [chp("fe.00")]),
            ],
            multipleCSSEnabled: true)
        #expect(
            TopologyFile.encodeText(topology) == """
                {
                  "format": "cssd-topology",
                  "version": 1,
                  "multiple-css": true,
                  "channel-subsystems": [
                    {"cssid": "0"},
                    {"cssid": "fe"}
                  ],
                  "chpids": [
                    {"chpid": "0.4a", "type": "0x1a", "shared": true, "pchid": "0x01c0", "vary": "online", "configure": "configured"},
                    {"chpid": "fe.00", "type": "0x32", "shared": false, "vary": "online", "configure": "standby"}
                  ],
                  "subchannels": [
                    {"subchannel": "0.0.0000", "devno": "0.0.4711", "dev-type": "3390/0c", "cu-type": "3990/e9", "enabled": true, "isc": 3, "chpids": ["0.4a"]},
                    {"subchannel": "fe.0.0000", "devno": null, "dev-type": "0000/00", "cu-type": "3832/01", "chpids": ["fe.00"]}
                  ]
                }

                """)
        #expect(
            TopologyFile.encodeText(Topology(channelSubsystems: [], channelPaths: [], subchannels: [])) == """
                {
                  "format": "cssd-topology",
                  "version": 1,
                  "channel-subsystems": [],
                  "chpids": [],
                  "subchannels": []
                }

                """)
    }

    /// An invalid topology encodes so that decoding names the problem rather than the notation.
    @Test func invalidTopologyEncodesItsError() {
        var topology = Self.variety
        topology.subchannels[2].devno = 0x10000
        topology.channelPaths[1].type = 0x100
        let error = decodeError(TopologyFile.encodeText(topology))
        #expect(error?.description == "test.json: chpids[1].type: type 256 is out of range (0..0xff)")
    }

    @Test func validationFieldsMapToFilePaths() {
        let cases = [
            ("channelPaths[2].pchid", "chpids[2].pchid"),
            ("channelSubsystems[1]", "channel-subsystems[1]"),
            ("subchannels[3].devType", "subchannels[3].dev-type"),
            ("subchannels[3].devModel", "subchannels[3].dev-type"),
            ("subchannels[3].cuModel", "subchannels[3].cu-type"),
            ("subchannels[3].chpids[1]", "subchannels[3].chpids[1]"),
            ("guests[0].crwCapacity", "guests[0].crw-capacity"),
            ("guests[0].strategy", "guests[0].strategy"),
            ("guests[2]", "guests[2]"),
            ("guests[1].devices[2]", "guests[1].devices[2]"),
            ("guests[1].devices[2].virtio.cuModel", "guests[1].devices[2].virtio.cu-model"),
            ("guests[1].devices[2].virtio.devno", "guests[1].devices[2].virtio.devno"),
        ]
        for (model, file) in cases {
            let error = TopologyFileError(file: "f", validation: TopologyError(field: model, reason: "r"))
            #expect(error.field == file)
        }
    }

    /// The example in API/topology.md is a valid file.
    @Test func documentedExampleDecodes() throws {
        let docs = Repository.root + "/API/topology.md"
        let text = String(decoding: try readFile(docs), as: UTF8.self)
        // The first ```json block that is a whole file.
        let blocks = text.split(separator: "```json\n").dropFirst().compactMap { $0.split(separator: "```").first }
        let example = try #require(blocks.first { $0.contains("\"format\": \"cssd-topology\"") })
        let topology = try TopologyFile.decode(String(example), name: "API/topology.md")
        #expect(!topology.subchannels.isEmpty)
        // Its guests (VFIOCCWTests builds the same ones on the same host).
        #expect(
            topology.guests == [
                .init(
                    name: "guest1", strategy: "crw", crwCapacity: 64,
                    devices: [
                        .virtio(subchannel: sch("fe.0.0000"), devno: nil, cuModel: 1),
                        .virtio(subchannel: sch("fe.0.0001"), devno: 0x0101, cuModel: 2),
                        .passthrough(host: sch("0.0.0001"), guestSubchannel: nil, guestChpids: nil),
                    ]),
                .init(
                    name: "guest2", strategy: "per-device",
                    devices: [
                        .virtio(subchannel: nil, devno: nil, cuModel: 1),
                        .passthrough(
                            host: sch("0.0.0002"), guestSubchannel: sch("0.0.0000"), guestChpids: [chp("0.00")]),
                    ]),
            ])
        // The OSA device states its QDIO facility; the DASDs derive theirs (none) from the CU.
        #expect(topology.subchannels.map(\.qdio) == [true, nil, nil, nil])
        #expect(topology.subchannels.map(\.hasQDIO) == [true, false, false, false])
        expectDecodersAgree(String(example), fastPath: false)
    }

    // MARK: Scale

    /// The benchmark topology: 262,144 subchannels, 32 chpids, 8 paths each. The budget is
    /// for a release build (start-up under 2 s in all); a debug build gets a generous bound.
    @Test func decodesTheLargestSyntheticTopologyQuickly() throws {
        let topology = try Topology.synthetic(subchannels: 262_144, chpids: 32, paths: 8)
        let bytes = TopologyFile.encode(topology)
        let clock = ContinuousClock()
        var decoded: Topology?
        let elapsed = try clock.measure { decoded = try TopologyFile.decode(bytes, name: "big.json") }
        #if DEBUG
        let bound = Duration.seconds(60)
        #else
        let bound = Duration.seconds(1)
        #endif
        print("topology file: 262144 subchannels, \(bytes.count) bytes, decoded in \(elapsed)")
        #expect(elapsed < bound)
        #expect(decoded == topology)
    }
}
