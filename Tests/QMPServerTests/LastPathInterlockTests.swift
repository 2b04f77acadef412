// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import Foundation
import JSONValues
import LinuxSysfs
import NIOCore
import PathEvents
import QMPWire
import TestSupport
import Testing
import VFIOCCW

@testable import QMPCommands
@testable import QMPServer

/// The last-path interlock of vary-path, configure-chpid and modify-subchannel, and the impact
/// queries (API/impact.json), through a session, on the model (embedded and generated
/// topologies) and on linux-sysfs.
@Suite("Last-path interlock and impact queries")
struct LastPathInterlockTests {
    /// A negotiated session over `backend` (the embedded model with its guest when nil).
    final class Client {
        let session: QMPSession
        var output = ByteBuffer()

        init(_ backend: ChannelSubsystemBackend? = nil, topology: Topology = .embeddedDefault, deferral: Bool = false)
            throws
        {
            let host = try Subsystem(topology: topology)
            let guests = try Guests(topology: topology, host: host)
            let server = try ServerState.standard(backend: backend ?? ModelBackend(host), guests: guests)
            session = QMPSession(server: server)
            session.deferralEnabled = deferral
            var negotiate = ByteBuffer(string: #"{"execute":"qmp_capabilities"}"#)
            _ = session.receive(&negotiate, into: &output, budget: .max)
            output.clear()
        }

        /// Sends `request` and returns the reply, parsed.
        @discardableResult
        func call(_ request: String) -> JSON {
            output.clear()
            var input = ByteBuffer(string: request)
            _ = session.receive(&input, into: &output, budget: .max)
            let text = output.readString(length: output.readableBytes) ?? ""
            return JSON.parse(String(text.split(separator: "\r\n").first ?? ""))!
        }

        func error(_ request: String) -> String? {
            let reply = call(request)
            guard let error = reply["error"] else { return nil }
            return "\(error["class"]!.stringValue!): \(error["desc"]!.stringValue!)"
        }

        var subsystem: Subsystem { session.server.subsystem }
    }

    static let osaRefusal =
        "GenericError: vary-path 0.60 offline refused: it would take the last operational path of 3 devices in use: "
        + "0.0.0600, 0.0.0601, 0.0.0602 (query-path-impact lists them; pass 'force': true to do it anyway)"

    @Test("vary-path offline: refused for the last path of devices in use, nothing changed; force does it")
    func varyRefusedAndForced() throws {
        let client = try Client()
        let before = client.subsystem.subchannels
        #expect(
            client.error(#"{"execute":"vary-path","arguments":{"chpid":"0.60","state":"offline"}}"#) == Self.osaRefusal)
        #expect(client.subsystem.subchannels == before)
        #expect(client.subsystem.channelPath(ChannelPathID(cssid: 0, chpid: 0x60))?.vary == .online)
        // force false is the default, said out loud.
        #expect(
            client.error(#"{"execute":"vary-path","arguments":{"chpid":"0.60","state":"offline","force":false}}"#)
                == Self.osaRefusal)
        let forced = client.call(
            #"{"execute":"vary-path","arguments":{"chpid":"0.60","state":"offline","force":true}}"#)
        #expect(forced["return"]?["changed"]?.intValue == 3)
        // Online is never refused.
        #expect(client.call(#"{"execute":"vary-path","arguments":{"chpid":"0.60","state":"online"}}"#)["return"] != nil)
        // A path whose loss leaves every device another one is not refused.
        #expect(
            client.call(#"{"execute":"vary-path","arguments":{"chpid":"0.40","state":"offline"}}"#)["return"] != nil)
    }

    @Test("more than 16 devices: the count, the first 16 and how many more")
    func refusalNamesSixteen() throws {
        let client = try Client()
        for chpid in ["0.40", "0.41", "0.42"] {
            #expect(
                client.call(#"{"execute":"vary-path","arguments":{"chpid":"\#(chpid)","state":"offline"}}"#)["return"]
                    != nil)
        }
        let first16 = (0x1000...0x100f).map { "0.0." + String($0, radix: 16) }.joined(separator: ", ")
        #expect(
            client.error(#"{"execute":"configure-chpid","arguments":{"chpid":"0.43","state":"standby"}}"#)
                == "GenericError: configure-chpid 0.43 standby refused: it would take the last operational path of "
                + "42 devices in use: \(first16) and 26 more (query-path-impact lists them; pass 'force': true "
                + "to do it anyway)")
        #expect(client.subsystem.channelPath(ChannelPathID(cssid: 0, chpid: 0x43))?.configure == .configured)
        #expect(
            client.call(#"{"execute":"configure-chpid","arguments":{"chpid":"0.43","state":"standby","force":true}}"#)[
                "return"]?["changed"]?.intValue == 42)
        // Configured again is never refused.
        #expect(
            client.call(#"{"execute":"configure-chpid","arguments":{"chpid":"0.43","state":"configured"}}"#)["return"]
                != nil)
    }

    @Test("per-subchannel vary and modify-subchannel lpm")
    func perSubchannelAndLPM() throws {
        let client = try Client()
        // 0.0.3000 is subchannel 0.0.0035 (3 OSA + 42 + 8 DASDs before it): 0.4c and 0.4d in standby.
        let dasd = try #require(client.subsystem.subchannel(device: DeviceID(cssid: 0, ssid: 0, devno: 0x3000))).id
        #expect(
            client.error(
                #"{"execute":"vary-path","arguments":{"chpid":"0.4c","state":"offline","subchannel":"\#(dasd)"}}"#)
                == "GenericError: vary-path 0.4c offline for subchannel \(dasd) refused: it would take the last "
                + "operational path of 1 device in use: 0.0.3000 (query-path-impact lists them; pass 'force': true "
                + "to do it anyway)")
        // LPM: 0x40 keeps only the standby path; 0x80 keeps the operational one.
        let before = client.subsystem.subchannel(dasd)!.schib
        #expect(
            client.error(#"{"execute":"modify-subchannel","arguments":{"subchannel":"\#(dasd)","lpm":64}}"#)
                == "GenericError: modify-subchannel \(dasd) lpm 0x40 refused: it would take the last operational "
                + "path of 1 device in use: 0.0.3000 (query-path-impact lists them; pass 'force': true to do it anyway)"
        )
        #expect(client.subsystem.subchannel(dasd)!.schib == before)
        #expect(
            client.call(#"{"execute":"modify-subchannel","arguments":{"subchannel":"\#(dasd)","lpm":128}}"#)["return"]?[
                "cc"]?.intValue == 0)
        #expect(client.subsystem.subchannel(dasd)!.schib.pmcw.lpm == 0x80)
        #expect(
            client.call(#"{"execute":"modify-subchannel","arguments":{"subchannel":"\#(dasd)","lpm":0,"force":true}}"#)[
                "return"]?["cc"]?.intValue == 0)
        #expect(client.subsystem.subchannel(dasd)!.operationalPaths.mask == 0)
        // MSCH's own answers are kept: cc 3 for a subchannel that does not exist.
        #expect(
            client.call(#"{"execute":"modify-subchannel","arguments":{"subchannel":"0.0.ffff","lpm":0}}"#)["return"]?[
                "cc"]?.intValue == 3)
    }

    @Test("faults are hardware: never refused")
    func faultsNeverRefused() throws {
        let client = try Client()
        let reply = client.call(
            #"{"execute":"inject-path-fault","arguments":{"chpid":"0.60","fault":"permanent-error"}}"#)
        #expect(reply["return"]?["changed"]?.intValue == 3)
    }

    @Test("bad input: force of the wrong type, unknown ids, as elsewhere")
    func badInput() throws {
        let client = try Client()
        #expect(
            client.error(#"{"execute":"vary-path","arguments":{"chpid":"0.60","state":"offline","force":"yes"}}"#)
                == "GenericError: Invalid parameter type for 'force', expected: boolean")
        #expect(
            client.error(#"{"execute":"configure-chpid","arguments":{"chpid":"0.60","state":"standby","force":1}}"#)
                == "GenericError: Invalid parameter type for 'force', expected: boolean")
        #expect(
            client.error(#"{"execute":"vary-path","arguments":{"chpid":"0.99","state":"offline"}}"#)
                == "DeviceNotFound: channel path 0.99 does not exist")
        #expect(
            client.error(#"{"execute":"query-path-impact","arguments":{"chpids":["0.40","0.99"]}}"#)
                == "DeviceNotFound: channel path 0.99 does not exist")
        #expect(
            client.error(#"{"execute":"query-path-impact","arguments":{"chpids":["0.40"],"subchannels":["0.0.ffff"]}}"#)
                == "DeviceNotFound: subchannel 0.0.ffff does not exist")
        #expect(
            client.error(#"{"execute":"query-path-impact","arguments":{"chpids":[]}}"#)
                == "GenericError: Parameter 'chpids' expects 1..256 chpids")
        #expect(
            client.error(#"{"execute":"query-path-impact","arguments":{"chpids":["0.40"],"limit":-1}}"#)
                == "GenericError: Parameter 'limit' expects 0..16384")
        #expect(
            client.error(#"{"execute":"query-path-impact","arguments":{"chpids":["0.40"],"action":"unplug"}}"#)?
                .hasPrefix("GenericError: Parameter 'action' does not accept value 'unplug'") == true)
        #expect(
            client.error(#"{"execute":"query-path-impact","arguments":{"chpids":["0.4g"]}}"#)
                == "GenericError: chpids '0.4g': expected cssid.chpid in hex, like 0.4a")
        // The session is still there.
        #expect(client.call(#"{"execute":"query-version"}"#)["return"] != nil)
    }

    @Test("query-path-impact on the embedded topology: devices, guests, severity")
    func impactQuery() throws {
        let client = try Client()
        let osa = client.call(#"{"execute":"query-path-impact","arguments":{"chpids":["0.60"]}}"#)["return"]!
        #expect(osa["severity"]?.stringValue == "high" && osa["action"]?.stringValue == "vary-offline")
        #expect(osa["lost-last-path-count"]?.intValue == 3 && osa["in-use-lost-last-path-count"]?.intValue == 3)
        let first = osa["lost-last-path"]![0]!
        #expect(
            first.serialized()
                == #"{"subchannel": "0.0.0000", "devno": "0.0.0600", "dev-type": "1732/01", "cu-type": "1731/01", "in-use": true, "operational": 128, "operational-after": 0, "chpids": []}"#
        )
        // Three of four DASD paths: 42 drop to one; all passed through to guest1.
        let three = client.call(
            #"{"execute":"query-path-impact","arguments":{"chpids":["0.42","0.40","0.41","0.40"],"action":"configure-standby","limit":2}}"#
        )["return"]!
        #expect(three["chpids"]?.elements.map(\.stringValue) == ["0.40", "0.41", "0.42"])
        #expect(three["dropped-to-one-path-count"]?.intValue == 42)
        #expect(three["dropped-to-one-path"]?.elements.count == 2 && three["truncated"]?.boolValue == true)
        #expect(three["dropped-to-one-path"]![0]!["chpids"]?.elements.map(\.stringValue) == ["0.43"])
        #expect(three["dropped-to-one-path"]![0]!["guest"]?.stringValue == "guest1")
        #expect(three["guests"]![0]!["name"]?.stringValue == "guest1")
        #expect(three["guests"]![0]!["dropped-to-one-path"]?.elements.count == 42)
        // The standby path takes nothing more: unaffected.
        let standby = client.call(#"{"execute":"query-path-impact","arguments":{"chpids":["0.4d"]}}"#)["return"]!
        #expect(standby["severity"]?.stringValue == "unaffected" && standby["devices-losing-a-path"]?.intValue == 0)
        // Per subchannel.
        let one = client.call(
            #"{"execute":"query-path-impact","arguments":{"chpids":["0.60"],"subchannels":["0.0.0001"]}}"#)["return"]!
        #expect(one["lost-last-path"]?.elements.map { $0["devno"]!.stringValue! } == ["0.0.0601"])
        #expect(one["subchannels"]?.elements.map(\.stringValue) == ["0.0.0001"])
    }

    @Test("query-path-redundancy: single-path devices and the chpids that would take one down")
    func redundancyQuery() throws {
        let client = try Client()
        let report = client.call(#"{"execute":"query-path-redundancy"}"#)["return"]!
        #expect(report["single-path-count"]?.intValue == 9 && report["without-path-count"]?.intValue == 0)
        #expect(report["critical-chpids"]?.elements.map { $0["chpid"]!.stringValue! } == ["0.4c", "0.60", "fe.00"])
        #expect(report["critical-chpids"]?.elements.map { $0["severity"]!.stringValue! } == ["high", "high", "high"])
        client.call(#"{"execute":"vary-path","arguments":{"chpid":"0.4c","state":"offline","force":true}}"#)
        let after = client.call(#"{"execute":"query-path-redundancy","arguments":{"limit":0}}"#)["return"]!
        #expect(after["without-path-count"]?.intValue == 2 && after["without-path"]?.elements.isEmpty == true)
        #expect(after["truncated"]?.boolValue == true)
    }

    /// Generated machines with one, two and eight paths per device.
    @Test("generated topologies: 1, 2 and 8 paths per device", arguments: [1, 2, 8])
    func generated(paths: Int) throws {
        let topology = try Topology.synthetic(subchannels: 512, chpids: 8, paths: paths)
        let client = try Client(topology: topology)
        let report = client.call(#"{"execute":"query-path-redundancy"}"#)["return"]!
        #expect(report["single-path-count"]?.intValue == (paths == 1 ? 512 : 0))
        if paths == 1 {
            // 64 devices on each of the 8 chpids alone: each lists 16 of them, counts all.
            let critical = report["critical-chpids"]!.elements
            #expect(critical.count == 8)
            #expect(critical.allSatisfy { $0["devices-count"]?.intValue == 64 && $0["devices"]?.elements.count == 16 })
            #expect(critical.allSatisfy { $0["in-use-count"]?.intValue == 64 })
            #expect(report["single-path"]?.elements.count == 256 && report["truncated"]?.boolValue == true)
        }
        let reply = client.call(#"{"execute":"vary-path","arguments":{"chpid":"0.00","state":"offline"}}"#)
        // Synthetic devices are in use (online by default): one path each is refused.
        #expect((reply["error"] != nil) == (paths == 1))
        // The other chpids, one after another, until the first refusal.
        var refusedAt: Int?
        for chpid in 1..<8 where refusedAt == nil {
            let text = #"{"execute":"vary-path","arguments":{"chpid":"0.0\#(chpid)","state":"offline"}}"#
            if client.call(text)["error"] != nil { refusedAt = chpid }
        }
        // paths 1: 0.01 alone carries devices; 2: devices on 0.00-0.01 lose both at 0.01; 8:
        // only the eighth, 0.07, takes the last one.
        #expect(refusedAt == [1: 1, 2: 1, 8: 7][paths])
    }

    @Test("linux-sysfs: the same interlock over the host's view; online 0 devices are not protected")
    func sysfs() throws {
        let tree = SysfsTree()
        tree.chp("40")
        tree.chp("41")
        tree.sch("0.0.0000", chpids: "40 00 00 00 00 00 00 00", pimpampom: "80 80 ff", device: "0.0.1000")
        tree.sch("0.0.0001", chpids: "41 00 00 00 00 00 00 00", pimpampom: "80 80 ff", device: "0.0.1001", online: "0")
        // The DASD driver bound to the first device, as the kernel links it.
        #expect(
            symlink(
                "../../../../bus/ccw/drivers/dasd-eckd", tree.root + "/devices/css0/0.0.0000/0.0.1000/driver") == 0)
        let client = try Client(try SysfsBackend(root: tree.root))
        let known = client.call(#"{"execute":"query-path-impact","arguments":{"chpids":["0.40","0.41"]}}"#)["return"]!
        #expect(known["lost-last-path"]?.elements.map { $0["driver"]?.stringValue } == ["dasd-eckd", nil])
        #expect(
            client.error(#"{"execute":"vary-path","arguments":{"chpid":"0.40","state":"offline"}}"#)
                == "GenericError: vary-path 0.40 offline refused: it would take the last operational path of 1 "
                + "device in use: 0.0.1000 (query-path-impact lists them; pass 'force': true to do it anyway)")
        #expect(tree.read("devices/css0/chp0.40/status") == "online\n")  // nothing written
        // The offline device on 0.41 is not in use: its path may go.
        #expect(
            client.call(#"{"execute":"configure-chpid","arguments":{"chpid":"0.41","state":"standby"}}"#)["return"]
                != nil)
        #expect(tree.read("devices/css0/chp0.41/configure") == "0")
        // The tree is files only (no kernel updates pimpampom): 0.41 still reads operational, and
        // only a device not in use is behind it.
        let impact = client.call(#"{"execute":"query-path-impact","arguments":{"chpids":["0.41"]}}"#)["return"]!
        #expect(impact["severity"]?.stringValue == "low" && impact["in-use-lost-last-path-count"]?.intValue == 0)
        // query-subchannels says offline; lscss shows Use blank from it.
        let page = client.call(#"{"execute":"query-subchannels"}"#)["return"]!["subchannels"]!
        #expect(page[0]!["online"] == nil && page[1]!["online"]?.boolValue == false)
        #expect(
            client.call(#"{"execute":"vary-path","arguments":{"chpid":"0.40","state":"offline","force":true}}"#)[
                "return"]
                != nil)
        #expect(tree.read("devices/css0/chp0.40/status") == "offline")
    }

    @Test("linux-sysfs: two removals in flight together cannot take a last path that neither takes alone")
    func inFlight() throws {
        let tree = SysfsTree()
        tree.chp("40")
        tree.chp("41")
        tree.sch("0.0.0000", chpids: "40 41 00 00 00 00 00 00", pimpampom: "c0 c0 ff", device: "0.0.1000")
        let backend = try SysfsBackend(root: tree.root)
        let first = try Client(backend, deferral: true)
        var input = ByteBuffer(
            string: #"{"execute":"configure-chpid","arguments":{"chpid":"0.40","state":"standby"},"id":1}"#)
        #expect(first.session.receive(&input, into: &first.output, budget: .max) == .waiting)
        // A second connection of the same server, while the first write is in flight.
        let second = QMPSession(server: first.session.server)
        var output = ByteBuffer()
        var negotiate = ByteBuffer(
            string:
                #"{"execute":"qmp_capabilities"}{"execute":"vary-path","arguments":{"chpid":"0.41","state":"offline"}}"#
        )
        _ = second.receive(&negotiate, into: &output, budget: .max)
        let text = output.readString(length: output.readableBytes) ?? ""
        #expect(text.contains("vary-path 0.41 offline refused: it would take the last operational path of 1 device"))
        // Once the first write is done (the tree is files only: the masks stay), it no longer counts.
        let work = try first.session.takeDeferredWork()
        try first.session.completeDeferred(work(), into: &first.output)
        #expect(first.session.server.chpidsGoing().isEmpty)
    }

    @Test("a write whose session dropped it stops counting as in flight")
    func droppedWriteForgotten() throws {
        let server = try ServerState.standard(backend: nil)
        do {
            let going = PathGoing(ChannelPathID(cssid: 0, chpid: 0x40))
            server.pathsGoing.append(WeakPathGoing(value: going))
            #expect(server.chpidsGoing() == [ChannelPathID(cssid: 0, chpid: 0x40)])
        }
        #expect(server.chpidsGoing().isEmpty)
    }

    @Test("a replayed command is not checked: it succeeded when it was made")
    func replayNotChecked() throws {
        let host = try Subsystem(topology: .embeddedDefault)
        let server = try ServerState.standard(backend: ModelBackend(host))
        let outcome = server.replay(
            request: #"{"execute":"vary-path","arguments":{"chpid":"0.60","state":"offline"}}"#,
            at: EventTime(seconds: 1, microseconds: 0))
        #expect(outcome == .succeeded)
        #expect(server.subsystem.channelPath(ChannelPathID(cssid: 0, chpid: 0x60))?.vary == .offline)
    }
}
