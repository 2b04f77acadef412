// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Foundation
import JSONValues
import Logging
import QMPCommands
import Testing

@testable import QMPServer

/// A fresh server on the embedded topology over either transport, a negotiated client, and
/// the calls a test makes.
private final class CSSSession: @unchecked Sendable {
    let harness: QMPTestServer
    let client: QMPTestConnection

    init(_ transport: QMPTestServer.Transport) async throws {
        harness = try await QMPTestServer.start(transport)
        client = try harness.connect()
        _ = try client.handshake()
    }

    func stop() async {
        await harness.stop()
    }

    /// `{"execute": command, "arguments": arguments}` and the reply.
    func call(_ command: String, _ arguments: String = "{}") throws -> JSON {
        try client.execute(#"{"execute":"\#(command)","arguments":\#(arguments)}"#)
    }

    func result(_ command: String, _ arguments: String = "{}") throws -> JSON {
        let reply = try call(command, arguments)
        guard let value = reply["return"] else { throw TestClient.Failure(description: "error reply: \(reply)") }
        return value
    }
}

/// Runs `body` over `transport`, or over both transports in turn.
private func withCSS(_ transport: QMPTestServer.Transport? = nil, _ body: (CSSSession) throws -> Void) async throws {
    for transport in transport.map({ [$0] }) ?? QMPTestServer.Transport.allCases {
        let session = try await CSSSession(transport)
        do {
            try body(session)
        } catch {
            await session.stop()
            throw error
        }
        await session.stop()
    }
}

@Suite("Channel-subsystem commands, over a session and over a socket", .serialized)
struct CSSCommandTests {
    @Test(
        "every command's bad inputs get a clear error with the right class",
        arguments: [
            ("query-chpids", #"{"cssid": 256}"#, "GenericError", "Parameter 'cssid' expects uint8"),
            (
                "query-subchannels", #"{"chpid": "0.zz"}"#, "GenericError",
                "chpid '0.zz': expected cssid.chpid in hex, like 0.4a"
            ),
            ("query-subchannels", #"{"chpid": "0.99"}"#, "DeviceNotFound", "channel path 0.99 does not exist"),
            (
                "query-subchannels", #"{"devno": "0.0.9999"}"#, "DeviceNotFound",
                "no subchannel has device number 0.0.9999"
            ),
            ("query-subchannels", #"{"limit": 0}"#, "GenericError", "Parameter 'limit' expects 1..16384"),
            (
                "query-subchannels", #"{"start": "x"}"#, "GenericError",
                "start 'x': expected cssid.ssid.schno in hex, like 0.0.0042"
            ),
            ("store-subchannel", #"{}"#, "GenericError", "Parameter 'subchannel' is missing"),
            (
                "store-subchannel", #"{"subchannel": "0.4.0000"}"#, "GenericError",
                "subchannel '0.4.0000': ssid 4 is out of range (0..3)"
            ),
            (
                "modify-subchannel", #"{"subchannel": "0.0.0003", "flags": 49152}"#, "GenericError",
                "operand exception: reserved PMCW flag bits 0xc000 are set"
            ),
            (
                "modify-subchannel", #"{"subchannel": "0.0.0003", "isc": 9}"#, "GenericError",
                "Parameter 'isc' expects 0..7"
            ),
            (
                "reset-channel-path", #"{"chpid": 64}"#, "GenericError",
                "Invalid parameter type for 'chpid', expected: string"
            ),
            (
                "vary-path", #"{"chpid": "0.40", "state": "up"}"#, "GenericError",
                "Parameter 'state' does not accept value 'up'"
            ),
            (
                "vary-path", #"{"chpid": "0.99", "state": "offline"}"#, "DeviceNotFound",
                "channel path 0.99 does not exist"
            ),
            (
                "vary-path", #"{"chpid": "0.40", "state": "offline", "subchannel": "0.0.0000"}"#, "GenericError",
                "channel path 0.40 is not installed on subchannel 0.0.0000"
            ),
            (
                "vary-path", #"{"chpid": "0.40", "state": "offline", "subchannel": "0.0.7777"}"#, "DeviceNotFound",
                "subchannel 0.0.7777 does not exist"
            ),
            (
                "configure-chpid", #"{"chpid": "0.40", "state": "reserved"}"#, "GenericError",
                "Parameter 'state' does not accept value 'reserved'"
            ),
            (
                "configure-chpid", #"{"chpid": "0.4e", "state": "configured"}"#, "GenericError",
                "channel path 0.4e is reserved and cannot be configured by this partition"
            ),
            (
                "inject-path-fault", #"{"chpid": "0.40", "fault": "fire"}"#, "GenericError",
                "Parameter 'fault' does not accept value 'fire'"
            ),
            (
                "inject-path-fault", #"{"chpid": "1.40", "fault": "recovered"}"#, "DeviceNotFound",
                "channel path 1.40 does not exist"
            ),
        ])
    func errors(command: String, arguments: String, errorClass: String, desc: String) async throws {
        try await withCSS { css in
            let before = try css.result("query-subchannels", #"{"cssid": 0}"#).description
            let reply = try css.call(command, arguments)
            #expect(reply["error"]?["class"]?.stringValue == errorClass)
            #expect(reply["error"]?["desc"]?.stringValue == desc)
            // No state changed, and the connection is still usable.
            #expect(try css.result("query-subchannels", #"{"cssid": 0}"#).description == before)
        }
    }

    @Test("query-chpids and query-css describe the embedded topology", arguments: QMPTestServer.Transport.allCases)
    func queries(transport: QMPTestServer.Transport) async throws {
        try await withCSS(transport) { css in
            let chpids = try css.result("query-chpids").elements
            let c40 = try #require(chpids.first { $0["chpid"]?.stringValue == "0.40" })
            #expect(c40["type"]?.intValue == 0x1a && c40["vary"]?.stringValue == "online")
            #expect(c40["configure"]?.stringValue == "configured" && c40["subchannels"]?.intValue == 42)
            #expect(c40["shared"]?.boolValue == true && c40["pchid"]?.intValue == 0x100)
            #expect(chpids.first { $0["chpid"]?.stringValue == "0.4d" }?["configure"]?.stringValue == "standby")
            #expect(
                try css.result("query-chpids", #"{"cssid": 254}"#).elements.map { $0["chpid"]!.stringValue! } == [
                    "fe.00"
                ])
            let summary = try css.result("query-css").elements
            #expect(summary.map { $0["cssid"]!.intValue! } == [0, 0xfe])
            #expect(summary[0]["subchannels"]?.intValue == 55 && summary[1]["subchannels"]?.intValue == 4)
        }
    }

    @Test(
        "query-subchannels: filters, order, entries, and paging that visits each once",
        arguments: QMPTestServer.Transport.allCases)
    func subchannels(transport: QMPTestServer.Transport) async throws {
        try await withCSS(transport) { css in
            let dasd = try css.result("query-subchannels", #"{"devno": "0.0.1000"}"#)["subchannels"]!.elements
            #expect(dasd.count == 1)
            let entry = dasd[0]
            #expect(entry["subchannel"]?.stringValue == "0.0.0003" && entry["devno"]?.stringValue == "0.0.1000")
            #expect(entry["dev-type"]?.stringValue == "3390/0c" && entry["cu-type"]?.stringValue == "3990/e9")
            #expect(entry["pim"]?.intValue == 0xf0 && entry["pam"]?.intValue == 0xf0 && entry["lpm"]?.intValue == 0xf0)
            #expect(
                entry["chpids"]?.elements.map { $0.stringValue ?? "-" } == [
                    "0.40", "0.41", "0.42", "0.43", "-", "-", "-", "-",
                ])

            let onChpid = try css.result("query-subchannels", #"{"chpid": "0.40"}"#)
            #expect(onChpid["subchannels"]?.count == 42 && onChpid["next"] == nil)
            var seen: [String] = []
            var start: String?
            repeat {
                let arguments =
                    start.map { #"{"chpid": "0.40", "limit": 10, "start": "\#($0)"}"# }
                    ?? #"{"chpid": "0.40", "limit": 10}"#
                let page = try css.result("query-subchannels", arguments)
                seen += page["subchannels"]!.elements.map { $0["subchannel"]!.stringValue! }
                start = page["next"]?.stringValue
            } while start != nil
            #expect(seen == onChpid["subchannels"]!.elements.map { $0["subchannel"]!.stringValue! })
            #expect(seen == seen.sorted() && Set(seen).count == 42)
            #expect(try css.result("query-subchannels", #"{"cssid": 254, "ssid": 0}"#)["subchannels"]?.count == 4)
        }
    }

    @Test(
        "vary-path: lpm bits cleared and set, per chpid and per subchannel, no CRW",
        arguments: QMPTestServer.Transport.allCases)
    func vary(transport: QMPTestServer.Transport) async throws {
        try await withCSS(transport) { css in
            let off = try css.result("vary-path", #"{"chpid": "0.40", "state": "offline"}"#)
            #expect(off["changed"]?.intValue == 42 && off["crws"]?.intValue == 0)
            let entry = try css.result("query-subchannels", #"{"devno": "0.0.1000"}"#)["subchannels"]![0]!
            #expect(entry["lpm"]?.intValue == 0x70 && entry["pam"]?.intValue == 0xf0)
            #expect(
                try css.result("query-chpids", #"{"cssid": 0}"#).elements.first { $0["chpid"]?.stringValue == "0.40" }?[
                    "vary"]?.stringValue == "offline")
            #expect(try css.result("store-crw")["cc"]?.intValue == 1)
            let one = try css.result("vary-path", #"{"chpid": "0.40", "state": "online", "subchannel": "0.0.0003"}"#)
            #expect(one["changed"]?.intValue == 1)
            #expect(
                try css.result("query-subchannels", #"{"devno": "0.0.1000"}"#)["subchannels"]![0]!["lpm"]?.intValue
                    == 0xf0)
        }
    }

    @Test(
        "configure and faults: pam, pnom, PNO and the machine's CRWs; reset; store-crw drains",
        arguments: QMPTestServer.Transport.allCases)
    func configureAndFaults(transport: QMPTestServer.Transport) async throws {
        try await withCSS(transport) { css in
            let standby = try css.result("configure-chpid", #"{"chpid": "0.41", "state": "standby"}"#)
            #expect(standby["changed"]?.intValue == 42 && standby["crws"]?.intValue ?? 0 >= 1)
            let stored = try css.result("store-subchannel", #"{"subchannel": "0.0.0003"}"#)
            #expect(stored["cc"]?.intValue == 0)
            // Standby: out of pam; not "not operational" (pnom and PNO are for faults).
            #expect(stored["schib"]?["pam"]?.intValue == 0xb0 && stored["schib"]?["pnom"]?.intValue == 0)
            #expect(stored["schib"]?["pno"]?.boolValue == false)
            #expect(stored["raw"]?.stringValue?.count == 104)
            // The CRW for a path gone: RSC 4, ERC 6, rsid = chpid (chained with the cssid under MCSSE).
            let crw = try css.result("store-crw")
            #expect(crw["cc"]?.intValue == 0)
            #expect(crw["decoded"]?["rsc"]?.intValue == 4 && crw["decoded"]?["erc"]?.intValue == 6)
            #expect(crw["decoded"]?["rsid"]?.intValue == 0x41)
            while try css.result("store-crw")["cc"]?.intValue == 0 {}
            let back = try css.result("configure-chpid", #"{"chpid": "0.41", "state": "configured"}"#)
            #expect(back["changed"]?.intValue == 42)
            #expect(try css.result("store-crw")["decoded"]?["erc"]?.intValue == 2)
            while try css.result("store-crw")["cc"]?.intValue == 0 {}

            let fault = try css.result("inject-path-fault", #"{"chpid": "0.42", "fault": "permanent-error"}"#)
            #expect(fault["changed"]?.intValue == 42)
            let failed = try css.result("store-subchannel", #"{"subchannel": "0.0.0003"}"#)["schib"]!
            #expect(failed["pam"]?.intValue == 0xd0 && (failed["pom"]?.intValue ?? 0xff) & 0x20 == 0)
            #expect(failed["pnom"]?.intValue == 0x20 && failed["pno"]?.boolValue == true)
            #expect(try css.result("store-crw")["decoded"]?["erc"]?.intValue == 6)
            while try css.result("store-crw")["cc"]?.intValue == 0 {}

            #expect(try css.result("reset-channel-path", #"{"chpid": "0.40"}"#)["cc"]?.intValue == 0)
            let solicited = try css.result("store-crw")
            #expect(
                solicited["decoded"]?["solicited"]?.boolValue == true && solicited["decoded"]?["erc"]?.intValue == 2)
            #expect(try css.result("reset-channel-path", #"{"chpid": "0.99"}"#)["cc"]?.intValue == 3)
            #expect(try css.result("store-subchannel", #"{"subchannel": "0.0.7777"}"#)["cc"]?.intValue == 3)
        }
    }

    @Test("modify-subchannel: fields applied; cc for a missing subchannel", arguments: QMPTestServer.Transport.allCases)
    func modify(transport: QMPTestServer.Transport) async throws {
        try await withCSS(transport) { css in
            let cc = try css.result(
                "modify-subchannel", #"{"subchannel": "0.0.0003", "intparm": 305419896, "isc": 5, "enabled": false}"#)
            #expect(cc["cc"]?.intValue == 0)
            let schib = try css.result("store-subchannel", #"{"subchannel": "0.0.0003"}"#)["schib"]!
            #expect(schib["intparm"]?.intValue == 0x1234_5678 && schib["isc"]?.intValue == 5)
            #expect(schib["enabled"]?.boolValue == false)
            #expect(try css.result("modify-subchannel", #"{"subchannel": "0.0.7777"}"#)["cc"]?.intValue == 3)
        }
    }
}
