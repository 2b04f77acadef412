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

@Suite("Topology files")
struct TopologyFileTests {
    @Test("refused files name the line or field", arguments: refusals)
    func refusal(_ case: Refusal) throws {
        let error = try #require(decodeError(`case`.text), "\(`case`.name) was accepted")
        #expect(error.file == "test.json")
        #expect(error.location == `case`.location, "\(error)")
        #expect(error.message.contains(`case`.message), "\(error)")
        // The one-line form names the file and the place.
        switch `case`.location {
        case .file: #expect(error.description.hasPrefix("test.json: "))
        case let .position(line, column): #expect(error.description.hasPrefix("test.json:\(line):\(column): "))
        case let .field(path): #expect(error.description.hasPrefix("test.json: \(path): "))
        }
        expectDecodersAgree(`case`.text)
    }

    @Test func bothDecodersAgree() throws {
        // The fast path takes canonical files and hand-written ones in any layout or key order.
        expectDecodersAgree(document(), fastPath: true)
        expectDecodersAgree(TopologyFile.encodeText(.embeddedDefault), fastPath: true)
        expectDecodersAgree(TopologyFile.encodeText(Self.variety), fastPath: true)
        expectDecodersAgree(Self.alternativeText, fastPath: true)
        expectDecodersAgree(Self.defaultsText, fastPath: true)
        expectDecodersAgree("{\"format\":\"cssd-topology\",\"version\":1}", fastPath: true)
        expectDecodersAgree(
            " \t\r\n{ \"version\" : 1 , \"format\" : \"cssd-topology\" , \"chpids\" : [ ] }\n", fastPath: true)
        // Valid, but left to jansson: escapes, non-ASCII, reals.
        expectDecodersAgree(
            document(chpids: baseChpids.replacingOccurrences("\"0.40\"", "\"0\\u002e40\"")), fastPath: false)
        expectDecodersAgree(
            document().replacingOccurrences("\"version\": 1", "\"version\": 1, \"x\u{e9}\": 0"), fastPath: false)
        // Almost valid: the fast reader gives up, jansson names the problem.
        for text in [
            "{\"format\": \"cssd-topology\", \"version\": 1} x", "{\"format\": \"cssd-topology\", \"version\": 1.0}",
            "{\"format\": \"cssd-topology\", \"version\": 01}",
            "{\"format\": \"cssd-topology\", \"version\": 1, \"multiple-css\": truex}",
            "{\"format\": \"cssd-topology\", \"version\": 1,}", "{\"format\": \"cssd-topology\" \"version\": 1}",
            "{\"format\": \"cssd-topology\", \"version\": 1",
            "{\"format\": \"cssd-topology\", \"version\": 1, \"version\": 1}",
        ] {
            expectDecodersAgree(text, fastPath: false)
            #expect(decodeError(text) != nil, "\(text)")
        }
        // Guests: the fast path takes them too, and leaves what it is unsure of to jansson.
        expectDecodersAgree(Self.guestsText, fastPath: true)
        expectDecodersAgree(TopologyFile.encodeText(Self.withGuests), fastPath: true)
        expectDecodersAgree(guestsDocument("{\"name\": \"g\\u0031\"}"), fastPath: false)
        for text in [
            guestWith("{\"virtio\": {\"cu-model\": 1}, \"virtio\": {\"cu-model\": 2}}"),
            guestWith("{\"virtio\": {\"cu-model\": 1}, \"passthrough\": {\"host-subchannel\": \"0.0.0000\"}}"),
            guestWith("{\"virtio\": {\"devno\": null, \"cu-model\": 1}}"),
            guestWith("{\"virtio\": {\"devno\": \"0.0.0001\", \"cu-model\": 1}}"),
            guestWith("{\"virtio\": {\"subchannel\": \"fe.1.0000\", \"devno\": \"fe.0.0001\", \"cu-model\": 1}}"),
            guestWith("{\"passthrough\": {\"guest-chpids\": []}}"),
            guestsDocument("{\"name\": \"g1\", \"name\": \"g2\"}"), guestsDocument("{\"strategy\": \"crw\"}"),
            document(extra: "\n  \"guests\": [], \"guests\": [],"),
        ] {
            expectDecodersAgree(text, fastPath: false)
            #expect(decodeError(text) != nil, "\(text)")
        }
    }

    @Test func theBaseDocumentIsValid() throws {
        let topology = try TopologyFile.decode(document(), name: "test.json")
        #expect(topology.channelPaths.count == 3)
        #expect(topology.subchannels.count == 3)
    }

    @Test func unreadableFile() {
        #expect {
            _ = try TopologyFile.decode(contentsOf: "/nonexistent/topology.json")
        } throws: { error in
            (error as? TopologyFileError)?.description
                == "/nonexistent/topology.json: cannot read the file: No such file or directory"
        }
        #expect {
            _ = try TopologyFile.decode(contentsOf: "/tmp")
        } throws: { error in
            (error as? TopologyFileError)?.message.contains("directory") == true
        }
    }

    static let defaultsText = """
        {"format": "cssd-topology", "version": 1,
         "chpids": [{"chpid": "fe.00", "type": 50}, {"chpid": "0.40", "type": "1a"}],
         "subchannels": [{"subchannel": "fe.0.0000", "devno": 0, "cu-type": "3832/1", "chpids": ["fe.00"]}]}
        """

    @Test func defaults() throws {
        let topology = try TopologyFile.decode(Self.defaultsText)
        #expect(topology.multipleCSSEnabled == nil)
        // Channel subsystems default to those used, ascending.
        #expect(topology.channelSubsystems.map(\.cssid) == [0, 0xfe])
        let path = topology.channelPaths[0]
        #expect(path == Topology.ChannelPath(id: chp("fe.00"), type: 0x32))
        #expect(!path.shared && path.pchid == nil && path.vary == .online && path.configure == .configured)
        #expect(topology.channelPaths[1].type == 0x1a)
        let first = topology.subchannels[0]
        #expect(
            first
                == Topology.Subchannel(
                    id: sch("fe.0.0000"), devno: 0, devType: 0, devModel: 0, cuType: 0x3832, cuModel: 1,
                    chpids: [chp("fe.00")]))
        #expect(!first.enabled && first.isc == 0)
    }

    /// Issue 15: CHSC, message and EADM subchannels, with no device and no paths; they round
    /// trip, become the PMCW's st, and a devno or chpids on one is refused.
    @Test func subchannelTypes() throws {
        func document(_ chsc: String) -> String {
            """
            {"format": "cssd-topology", "version": 1, "chpids": [{"chpid": "0.40", "type": "0x1a"}],
             "subchannels": [{"subchannel": "0.0.0000", "devno": "0.0.1000", "cu-type": "3990/e9", "chpids": ["0.40"]},
                             {"subchannel": "0.0.ff00", \(chsc)},
                             {"subchannel": "0.1.0001", "type": "message"},
                             {"subchannel": "0.1.0100", "type": "eadm", "isc": 3}]}
            """
        }
        let topology = try TopologyFile.decode(document("\"type\": \"chsc\""))
        #expect(topology.subchannels.map(\.type) == [.io, .chsc, .message, .eadm])
        #expect(try TopologyFile.decode(TopologyFile.encodeText(topology)) == topology)
        let model = try Subsystem(topology: topology)
        #expect(model.subchannels.map(\.type) == [.io, .chsc, .message, .eadm])
        #expect(model.subchannels[3].schib.pmcw.chars & PMCW.Characteristics.subchannelType == 3 << 21)
        #expect(model.subchannels[1].schib.pmcw.pim == 0 && model.subchannels[1].deviceID == nil)
        // Pathless by design: they never count as subchannels that lost their last path (the
        // metrics' no-operational-path count would otherwise flag every real machine).
        #expect(model.subchannelsWithoutOperationalPath(cssid: 0) == 0)
        #expect(throws: TopologyFileError.self) {
            try TopologyFile.decode(document("\"type\": \"chsc\", \"devno\": 5"))
        }
        #expect(throws: TopologyFileError.self) {
            try TopologyFile.decode(document("\"type\": \"tape\""))
        }
    }

    /// Issue 15: `qdio` states the QDIO facility (PMCW QF); absent, it follows the control unit
    /// (1731). It round trips as written (and is written only when stated), needs a boolean, and
    /// is refused on a subchannel that is not an I/O subchannel.
    @Test func qdioKey() throws {
        func document(_ members: String...) -> String {
            let entries = members.enumerated().map { index, member in
                "{\"subchannel\": \"0.0.000\(index)\", \"devno\": \(index), \(member), \"chpids\": [\"0.60\"]}"
            }
            return """
                {"format": "cssd-topology", "version": 1, "chpids": [{"chpid": "0.60", "type": "0x11"}],
                 "subchannels": [\(entries.joined(separator: ",\n"))]}
                """
        }
        let text = document(
            "\"dev-type\": \"1732/01\", \"cu-type\": \"1731/01\"",
            "\"dev-type\": \"1732/05\", \"cu-type\": \"1731/05\", \"qdio\": false",
            "\"dev-type\": \"3390/0c\", \"cu-type\": \"3990/e9\", \"qdio\": true",
            "\"dev-type\": \"3390/0c\", \"cu-type\": \"3990/e9\"")
        let topology = try TopologyFile.decode(text)
        #expect(topology.subchannels.map(\.qdio) == [nil, false, true, nil])
        #expect(topology.subchannels.map(\.hasQDIO) == [true, false, true, false])
        let written = TopologyFile.encodeText(topology)
        #expect(written.contains("\"cu-type\": \"1731/05\", \"qdio\": false, \"chpids\""))
        #expect(written.contains("\"cu-type\": \"3990/e9\", \"qdio\": true, \"chpids\""))
        #expect(written.ranges(of: "qdio").count == 2)
        #expect(try TopologyFile.decode(written) == topology)
        expectDecodersAgree(text, fastPath: false)
        expectDecodersAgree(written, fastPath: false)
        let model = try Subsystem(topology: topology)
        #expect(model.subchannels.map(\.schib.pmcw.hasQDIOFacility) == [true, false, true, false])

        #expect(
            decodeError(document("\"cu-type\": \"1731/01\", \"qdio\": \"yes\""))?.description
                == "test.json: subchannels[0].qdio: expected true or false, found the string \"yes\"")
        let chsc = """
            {"format": "cssd-topology", "version": 1, "subchannels": [{"subchannel": "0.0.ff00", "type": "chsc", "qdio": true}]}
            """
        #expect(decodeError(chsc)?.description.contains("subchannels[0]: subchannel 0.0.ff00 of type chsc") == true)
        #expect(
            try TopologyFile.decode(chsc.replacing("true", with: "false")).subchannels[0].hasQDIO == false)
    }

    @Test func emptyTopology() throws {
        let topology = try TopologyFile.decode("{\"format\": \"cssd-topology\", \"version\": 1}")
        #expect(topology == Topology(channelSubsystems: [], channelPaths: [], subchannels: []))
    }

    static let alternativeText = """
        {"version": 1, "format": "cssd-topology", "multiple-css": false,
         "channel-subsystems": [{"cssid": "0xFE"}, {"cssid": 0}],
         "chpids": [{"configure": "not-recognized", "vary": "offline", "pchid": null, "type": "0X1A", "chpid": "FE.4A"},
                    {"chpid": "0.4a", "type": 17, "pchid": 448, "configure": "reserved"}],
         "subchannels": [{"chpids": ["fe.4a"], "cu-type": "3990/E9", "dev-type": "3390/c", "devno": null,
                          "subchannel": "fe.1.42", "enabled": true, "isc": 7}]}
        """

    @Test func alternativeNotations() throws {
        let topology = try TopologyFile.decode(Self.alternativeText)
        #expect(topology.multipleCSSEnabled == false)
        #expect(topology.channelSubsystems.map(\.cssid) == [0xfe, 0])
        #expect(
            topology.channelPaths == [
                .init(id: chp("fe.4a"), type: 0x1a, vary: .offline, configure: .notRecognized),
                .init(id: chp("0.4a"), type: 0x11, pchid: 0x1c0, configure: .reserved),
            ])
        #expect(
            topology.subchannels == [
                .init(
                    id: sch("fe.1.0042"), devno: nil, devType: 0x3390, devModel: 0x0c, cuType: 0x3990, cuModel: 0xe9,
                    chpids: [chp("fe.4a")], enabled: true, isc: 7)
            ])
    }

}
