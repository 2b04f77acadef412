// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import Foundation
import LinuxSysfs
import NIOCore
import QMPCommands
import QMPWire
import TestSupport
import Testing

@testable import QMPServer

/// A command's outcome is a value; where deferred work runs is the session's business: off the
/// loop when the network layer enabled deferral and the work has a blocking part, else inline.
@Suite("Command outcomes in the session")
struct CommandOutcomeTests {
    /// A sysfs tree with one channel path (0.40, online, configured) and one subchannel on it.
    func sysfsTree() -> SysfsTree {
        let tree = SysfsTree()
        tree.chp("40")
        tree.chp("41")
        // Two paths: taking 0.40 leaves the online device one (the last-path interlock allows it).
        tree.sch("0.0.0000", chpids: "40 41 00 00 00 00 00 00", pimpampom: "c0 c0 ff", device: "0.0.1000")
        return tree
    }

    func session(_ backend: ChannelSubsystemBackend?, deferral: Bool) throws -> (QMPSession, ByteBuffer) {
        let server = try ServerState.standard(backend: backend)
        let session = QMPSession(server: server)
        session.deferralEnabled = deferral
        var output = ByteBuffer()
        var negotiate = ByteBuffer(string: #"{"execute":"qmp_capabilities"}"#)
        _ = session.receive(&negotiate, into: &output, budget: .max)
        output.clear()
        return (session, output)
    }

    func lines(_ output: inout ByteBuffer) -> [String] {
        (output.readString(length: output.readableBytes) ?? "").split(separator: "\r\n").map(String.init)
    }

    @Test("model: the write has no blocking part, so the reply comes at once even with deferral on")
    func modelRepliesAtOnce() throws {
        for deferral in [true, false] {
            var (session, output) = try session(nil, deferral: deferral)
            var input = ByteBuffer(
                string: #"{"execute":"vary-path","arguments":{"chpid":"0.40","state":"offline"},"id":1}"#)
            #expect(session.receive(&input, into: &output, budget: .max) == .needInput)
            #expect(!session.isWaiting)
            #expect(throws: SessionStateError.self) { try session.takeDeferredWork() }
            #expect(lines(&output) == [#"{"return": {"chpid": "0.40", "changed": 42, "crws": 0}, "id": 1}"#])
        }
    }

    @Test("sysfs with deferral: the reply waits for the blocking write, input waits behind it")
    func sysfsDeferred() throws {
        let tree = sysfsTree()
        var (session, output) = try session(try SysfsBackend(root: tree.root), deferral: true)
        var input = ByteBuffer(
            string: #"{"execute":"configure-chpid","arguments":{"chpid":"0.40","state":"standby"},"id":1}"#
                + #"{"execute":"query-version","id":2}"#)
        #expect(session.receive(&input, into: &output, budget: .max) == .waiting)
        #expect(output.readableBytes == 0)
        #expect(tree.read("devices/css0/chp0.40/configure") == "1\n")  // nothing written on the loop
        let work = try session.takeDeferredWork()
        #expect(throws: SessionStateError.self) { try session.takeDeferredWork() }  // handed out once
        let outcome = work()
        #expect(tree.read("devices/css0/chp0.40/configure") == "0")
        try session.completeDeferred(outcome, into: &output)
        #expect(session.process(into: &output, budget: .max) == .needInput)
        let replies = lines(&output)
        #expect(replies.count == 2)
        // The tree is files only: no kernel updates pimpampom, so no subchannel's masks changed.
        #expect(replies.first == #"{"return": {"chpid": "0.40", "changed": 0, "crws": 0}, "id": 1}"#)
        #expect(session.server.subsystem.channelPath(ChannelPathID(cssid: 0, chpid: 0x40))?.configure == .standby)
        #expect(replies.last?.hasSuffix(#""id": 2}"#) == true)
    }

    @Test("sysfs without deferral (tests, the fuzzer): the same work runs inline")
    func sysfsInline() throws {
        let tree = sysfsTree()
        var (session, output) = try session(try SysfsBackend(root: tree.root), deferral: false)
        var input = ByteBuffer(
            string: #"{"execute":"configure-chpid","arguments":{"chpid":"0.40","state":"standby"},"id":1}"#)
        #expect(session.receive(&input, into: &output, budget: .max) == .needInput)
        #expect(tree.read("devices/css0/chp0.40/configure") == "0")
        #expect(lines(&output) == [#"{"return": {"chpid": "0.40", "changed": 0, "crws": 0}, "id": 1}"#])
    }
}
