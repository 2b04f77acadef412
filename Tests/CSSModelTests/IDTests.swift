// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Testing

@testable import CSSModel

@Suite struct IDTests {
    @Test(arguments: [
        ("0.0.0042", 0, 0, 0x42, "0.0.0042"),
        ("0.0.42", 0, 0, 0x42, "0.0.0042"),
        ("fe.0.0001", 0xfe, 0, 1, "fe.0.0001"),
        ("FE.3.FFFF", 0xfe, 3, 0xffff, "fe.3.ffff"),
        ("00.1.a", 0, 1, 0xa, "0.1.000a"),
    ])
    func subchannelParsesAndFormats(text: String, cssid: Int, ssid: Int, schno: Int, formatted: String) throws {
        let id = try SubchannelID(parsing: text)
        #expect(id.cssid == UInt8(cssid))
        #expect(id.ssid == UInt8(ssid))
        #expect(id.schno == UInt16(schno))
        #expect(id.description == formatted)
        #expect(try SubchannelID(parsing: formatted) == id)
    }

    @Test(arguments: [
        ("0.0.zz", "subchannel '0.0.zz': expected cssid.ssid.schno in hex, like 0.0.0042"),
        ("", "subchannel '': expected cssid.ssid.schno in hex, like 0.0.0042"),
        ("0.0", "subchannel '0.0': expected cssid.ssid.schno in hex, like 0.0.0042"),
        ("0.0.0.0", "subchannel '0.0.0.0': expected cssid.ssid.schno in hex, like 0.0.0042"),
        ("0.0.10000", "subchannel '0.0.10000': expected cssid.ssid.schno in hex, like 0.0.0042"),
        ("100.0.0000", "subchannel '100.0.0000': expected cssid.ssid.schno in hex, like 0.0.0042"),
        ("0..0042", "subchannel '0..0042': expected cssid.ssid.schno in hex, like 0.0.0042"),
        (" 0.0.0042", "subchannel ' 0.0.0042': expected cssid.ssid.schno in hex, like 0.0.0042"),
        ("0.4.0042", "subchannel '0.4.0042': ssid 4 is out of range (0..3)"),
    ])
    func subchannelErrorsNameTheForm(text: String, message: String) {
        #expect(throws: IDParseError.self) { try SubchannelID(parsing: text) }
        do {
            _ = try SubchannelID(parsing: text)
        } catch {
            #expect(error.description == message)
        }
    }

    @Test func deviceErrorsNameDevno() {
        do {
            _ = try DeviceID(parsing: "0.0.zz")
            Issue.record("parsed")
        } catch {
            #expect(error.description == "devno '0.0.zz': expected cssid.ssid.devno in hex, like 0.0.0042")
        }
        do {
            _ = try DeviceID(parsing: "0.0.zz", argument: "subchannel")
            Issue.record("parsed")
        } catch {
            #expect(error.description == "subchannel '0.0.zz': expected cssid.ssid.devno in hex, like 0.0.0042")
        }
        #expect((try? DeviceID(parsing: "fe.0.1000"))?.description == "fe.0.1000")
    }

    @Test(arguments: [("0.4a", 0, 0x4a, "0.4a"), ("fe.0", 0xfe, 0, "fe.00"), ("0.FF", 0, 0xff, "0.ff")])
    func chpidParsesAndFormats(text: String, cssid: Int, chpid: Int, formatted: String) throws {
        let id = try ChannelPathID(parsing: text)
        #expect(id.cssid == UInt8(cssid))
        #expect(id.chpid == UInt8(chpid))
        #expect(id.description == formatted)
    }

    @Test(arguments: ["0.4g", "4a", "0.100", "0.4a.0", "", ".4a", "0.", "-0.4a"])
    func chpidErrorsNameTheForm(text: String) {
        do {
            _ = try ChannelPathID(parsing: text, argument: "chpid")
            Issue.record("parsed \(text)")
        } catch {
            #expect(error.description == "chpid '\(text)': expected cssid.chpid in hex, like 0.4a")
        }
    }

    @Test func checkedIntegerInitializersNameThePart() {
        #expect(throws: IDParseError(argument: "subchannel", text: "0.4.66", reason: "ssid 4 is out of range (0..0x3)"))
        {
            try SubchannelID(checkingCSSID: 0, ssid: 4, schno: 0x42)
        }
        #expect(throws: IDParseError(argument: "chpid", text: "0.256", reason: "chpid 256 is out of range (0..0xff)")) {
            try ChannelPathID(checkingCSSID: 0, chpid: 256)
        }
        #expect((try? SubchannelID(checkingCSSID: 0xfe, ssid: 0, schno: 5))?.description == "fe.0.0005")
    }

    @Test func ordersByNumber() {
        let ids = ["0.1.0000", "0.0.ffff", "fe.0.0000", "0.0.0001"].map { try! SubchannelID(parsing: $0) }
        #expect(ids.sorted().map(\.description) == ["0.0.0001", "0.0.ffff", "0.1.0000", "fe.0.0000"])
    }
}
