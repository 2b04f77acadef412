// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import JSONValues
import QMPCommands
import Testing
import VFIOCCW

@testable import QMPServer

/// Issue 15: a QDIO subchannel (the embedded OSA triple, control unit 1731) shows its facility
/// and cannot be passed through; the refusal is a GenericError, changes nothing, and the
/// session goes on. Over a session on the embedded topology with its guest, as cssd runs it.
@Suite("QDIO subchannels over QMP")
struct QDIOCommandTests {
    @Test func attachOfAQDIOSubchannelIsRefused() throws {
        let host = try Subsystem(topology: .embeddedDefault)
        let server = try ServerState.standard(
            backend: ModelBackend(host), guests: try Guests(topology: .embeddedDefault, host: host))
        let client = SessionConnection(server: server)
        _ = try client.handshake()
        func call(_ command: String, _ arguments: String = "{}") throws -> JSON {
            try client.execute(#"{"execute":"\#(command)","arguments":\#(arguments)}"#)
        }
        let page = try #require(call("query-subchannels", #"{"cssid": 0}"#)["return"]?["subchannels"]?.elements)
        let marked = page.filter { $0["qdio"]?.boolValue == true }.map { $0["subchannel"]!.stringValue! }
        #expect(marked == ["0.0.0000", "0.0.0001", "0.0.0002"])
        let flags = try call("store-subchannel", #"{"subchannel": "0.0.0000"}"#)["return"]?["schib"]?["flags"]
        #expect((flags?.intValue ?? 0) & 0x8000 != 0)

        let before = try call("query-guest-subchannels", #"{"guest": "guest1"}"#).description
        let reply = try call("attach-passthrough", #"{"guest": "guest1", "host-subchannel": "0.0.0002"}"#)
        #expect(reply["error"]?["class"]?.stringValue == "GenericError")
        #expect(
            reply["error"]?["desc"]?.stringValue
                == "host subchannel 0.0.0002 has the QDIO facility (an OSA, HiperSockets or FCP device): "
                + "vfio-ccw does not support QDIO, so it cannot be passed through "
                + "(Linux: \"vfio: ccw: does not support QDIO: 0.0.0002\")")
        #expect(try call("query-guest-subchannels", #"{"guest": "guest1"}"#).description == before)
        // The same session attaches a DASD.
        let dasd = try call("attach-passthrough", #"{"guest": "guest1", "host-subchannel": "0.0.0035"}"#)
        #expect(dasd["return"]?["host-subchannel"]?.stringValue == "0.0.0035")
    }
}
