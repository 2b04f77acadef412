// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import NIOCore
import QMPWire
import Testing

@testable import QMPCommands

@Suite("query-subchannels page text")
struct SubchannelPageWriterTests {
    /// The writer's bytes are exactly what jansson prints for the reference tree.
    private func check(
        _ subsystem: Subsystem, next: SubchannelID?, availability: ((Subchannel) -> DeviceAvailability?)? = nil
    ) {
        let page = subsystem.subchannels
        var writer = SubchannelPageWriter(capacity: page.count, availability: availability)
        let fast = writer.page(page, next: next)
        var reference = ByteBuffer()
        ReplyEncoder.write(CSSCommands.subchannelPage(page, next: next, availability: availability), to: &reference)
        #expect(String(decoding: fast, as: UTF8.self) == reference.readString(length: reference.readableBytes))
    }

    @Test("embedded topology, with and without next, after path changes")
    func embedded() throws {
        var subsystem = try Subsystem(topology: .embeddedDefault)
        check(subsystem, next: nil)
        check(subsystem, next: SubchannelID(cssid: 0xfe, ssid: 3, schno: 0xabcd))
        _ = try subsystem.varyPath(ChannelPathID(cssid: 0, chpid: 0x40), to: .offline)
        _ = try subsystem.injectPathFault(ChannelPathID(cssid: 0, chpid: 0x41), .permanentError)
        _ = try subsystem.configurePath(ChannelPathID(cssid: 0, chpid: 0x4c), to: .standby)
        check(subsystem, next: nil)
    }

    @Test("observed vpm and a device that is not there (linux-sysfs)")
    func observed() throws {
        var subsystem = try Subsystem(topology: .embeddedDefault)
        let ids = subsystem.subchannels.prefix(3).map(\.id)
        let pmcw = subsystem.subchannels[0].schib.pmcw
        try subsystem.setObservedMasks(ids[0], pam: pmcw.pam, pom: pmcw.pom, lpm: pmcw.lpm, vpm: 0)
        try subsystem.setObservedMasks(ids[1], pam: pmcw.pam, pom: pmcw.pom, lpm: pmcw.lpm, vpm: 0xff)
        try subsystem.setObservedDevice(ids[1], present: false)
        try subsystem.setObservedDevice(ids[2], present: false)
        #expect(subsystem.subchannels[0].verifiedPathMask == 0)
        #expect(subsystem.subchannels[1].verifiedPathMask == subsystem.subchannels[1].schib.pmcw.pim)  // within PIM
        var writer = SubchannelPageWriter(capacity: 3)
        let text = String(decoding: writer.page(Array(subsystem.subchannels.prefix(3)), next: nil), as: UTF8.self)
        #expect(text.contains("\"vpm\": 0}") && text.contains(", \"device\": false}"))
        check(subsystem, next: nil)
        // Availability, when asked for: every value, none for a device that is not there.
        let states = DeviceAvailability.allCases
        check(subsystem, next: nil) { sch in sch.hasDevice ? states[Int(sch.id.schno) % states.count] : nil }
    }

    @Test("synthetic topology in another css")
    func synthetic() throws {
        check(
            try Subsystem(topology: try Topology.synthetic(subchannels: 3000, chpids: 16, paths: 8, cssid: 0x1f)),
            next: nil)
    }
}
