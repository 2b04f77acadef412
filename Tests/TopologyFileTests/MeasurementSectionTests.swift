// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import Testing

@testable import TopologyFile

/// The `channel-measurement` section (issue 21): decoded, encoded back, refused with the field.
@Suite struct MeasurementSectionTests {
    static func document(_ section: String) -> String {
        """
        {"format": "cssd-topology", "version": 1,
         "chpids": [{"chpid": "0.40", "type": "0x1a"}, {"chpid": "0.41", "type": "0x1a"}],
         "subchannels": [],
         "channel-measurement": \(section)}
        """
    }

    static let id40 = ChannelPathID(cssid: 0, chpid: 0x40)
    static let id41 = ChannelPathID(cssid: 0, chpid: 0x41)

    @Test func decodesAndEncodesBack() throws {
        let topology = try TopologyFile.decode(
            Self.document(
                #"{"authorized": false, "chpids": [{"chpid": "0.40", "cmg": 5, "load": {"util_part": 40, "read_total": 1.5e9}}, {"chpid": "0.41", "cmg": "none"}]}"#
            ))
        let measurement = try #require(topology.measurement)
        #expect(!measurement.authorized)
        #expect(
            measurement.chpids == [
                Topology.MeasuredPath(id: Self.id40, cmg: .group(5), load: ["util_part": 40, "read_total": 1.5e9]),
                Topology.MeasuredPath(id: Self.id41, cmg: .none),
            ])
        let text = TopologyFile.encodeText(topology)
        #expect(
            text.hasSuffix(
                """
                  "channel-measurement": {"authorized": false, "chpids": [
                    {"chpid": "0.40", "cmg": 5, "load": {"read_total": 1500000000.0, "util_part": 40.0}},
                    {"chpid": "0.41", "cmg": "none"}
                  ]}
                }

                """))
        #expect(try TopologyFile.decode(text) == topology)
        // Defaults: authorized, the group by type, no load; an empty section round-trips too.
        let defaults = try TopologyFile.decode(Self.document(#"{"chpids": [{"chpid": "0.41"}]}"#))
        #expect(defaults.measurement == Topology.Measurement(chpids: [Topology.MeasuredPath(id: Self.id41)]))
        let empty = try TopologyFile.decode(Self.document("{}"))
        #expect(try TopologyFile.decode(TopologyFile.encodeText(empty)) == empty)
        #expect(try TopologyFile.decode(TopologyFile.encodeText(defaults)) == defaults)
    }

    @Test(arguments: [
        (#"{"authorised": true}"#, "channel-measurement.authorised"),
        (#"{"authorized": 1}"#, "channel-measurement.authorized"),
        (#"{"chpids": [{"cmg": 2}]}"#, "channel-measurement.chpids[0]"),
        (#"{"chpids": [{"chpid": "0.4g"}]}"#, "channel-measurement.chpids[0].chpid"),
        (#"{"chpids": [{"chpid": "0.40", "cmg": "two"}]}"#, "channel-measurement.chpids[0].cmg"),
        (
            #"{"chpids": [{"chpid": "0.40", "load": {"util_part": "40"}}]}"#,
            "channel-measurement.chpids[0].load.util_part"
        ),
        (#"{"chpids": [{"chpid": "0.40", "load": [1]}]}"#, "channel-measurement.chpids[0].load"),
        (#"{"chpids": [{"chpid": "0.40", "speed": 1}]}"#, "channel-measurement.chpids[0].speed"),
    ])
    func refusalsNameTheField(_ section: String, _ field: String) {
        do {
            _ = try TopologyFile.decode(Self.document(section), name: "t.json")
            Issue.record("accepted \(section)")
        } catch {
            #expect(error.description.hasPrefix("t.json: \(field): "), "\(error)")
        }
    }
}
