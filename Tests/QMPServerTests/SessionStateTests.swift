// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import Foundation
import JSONValues
import LinuxSysfs
import NIOCore
import QMPCommands
import TestSupport
import Testing

@testable import QMPServer

extension SysfsTree {
    /// A sysfs tree with chpid 0.40 and one subchannel (no device) on it, in a temporary
    /// directory: the real backend, as `cssd --backend linux-sysfs:ROOT` uses it.
    static func chpid40WithOneSubchannel() -> SysfsTree {
        let tree = SysfsTree()
        for (file, text) in [("status", "online"), ("configure", "1"), ("type", "1a"), ("shared", "1"), ("cmg", "2")] {
            tree.write("devices/css0/chp0.40/" + file, text + "\n")
        }
        tree.write("devices/css0/0.0.0000/type", "0\n")
        tree.write("devices/css0/0.0.0000/chpids", "40 00 00 00 00 00 00 00 \n")
        tree.write("devices/css0/0.0.0000/pimpampom", "80 80 ff\n")
        tree.write("devices/css0/0.0.0000/dev_busid", "none\n")
        return tree
    }
}

/// A session brought into a given state by the calls a connection makes.
private final class StateHarness {
    /// Chpid 0.40 and one subchannel: the backend whose writes a session defers.
    let tree = SysfsTree.chpid40WithOneSubchannel()
    let session: QMPSession
    var output = ByteBuffer()

    static let vary = #"{"execute":"vary-path","arguments":{"chpid":"0.40","state":"offline"},"id":"v"}"#

    init(_ state: QMPSession.StateName) throws {
        let server = try ServerState.standard(backend: try SysfsBackend(root: tree.root))
        session = QMPSession(server: server)
        session.deferralEnabled = true
        try session.writeGreeting(into: &output)
        if state != .negotiating && state != .stopped { feed(#"{"execute":"qmp_capabilities"}"#) }
        if state == .waitingToStart || state == .waitingForWork { #expect(feed(Self.vary) == .waiting) }
        if state == .waitingForWork { _ = try session.takeDeferredWork() }
        if state == .stopped { session.stop() }
        #expect(session.state.name == state)
        output.clear()
    }

    @discardableResult
    func feed(_ text: String) -> QMPSession.Progress {
        var input = ByteBuffer(string: text)
        return session.receive(&input, into: &output, budget: .max)
    }

    func lines() -> [JSON] {
        let text = output.readString(length: output.readableBytes) ?? ""
        return text.split(separator: "\r\n").map { JSON.parse(String($0))! }
    }
}

/// The calls of the session's public surface that depend on its state.
enum SessionCall: String, CaseIterable {
    case writeGreeting, append, process, receive, takeDeferredWork, completeDeferred, writeEvent, stop, close
}

@Suite("QMP session states")
struct SessionStateTests {
    typealias Name = QMPSession.StateName

    /// What each call does in each state: the state after it, or the state error.
    static func expected(_ call: SessionCall, in state: Name) -> Name? {
        switch (call, state) {
        case (.writeGreeting, .negotiating): return .negotiating
        case (.writeGreeting, _): return nil
        case (.append, .stopped): return nil
        case (.append, _), (.process, _), (.receive, _), (.writeEvent, _): return state
        case (.takeDeferredWork, .waitingToStart): return .waitingForWork
        case (.takeDeferredWork, _): return nil
        case (.completeDeferred, .waitingForWork): return .commandMode
        case (.completeDeferred, _): return nil
        case (.stop, _), (.close, _): return .stopped
        }
    }

    @Test(
        "every call in every state does what the table says; a wrong one is a state error that changes nothing",
        arguments: Name.allCases, SessionCall.allCases)
    func table(state: Name, call: SessionCall) throws {
        let h = try StateHarness(state)
        let expected = Self.expected(call, in: state)
        let buffered = h.session.bufferedInputBytes
        do throws(SessionStateError) {
            switch call {
            case .writeGreeting:
                try h.session.writeGreeting(into: &h.output)
                #expect(h.lines().first?["QMP"] != nil)
            case .append:
                var input = ByteBuffer(string: #"{"execute":"query-version"}"#)
                try h.session.append(&input)
                #expect(h.session.bufferedInputBytes == buffered + 27)
            case .process:
                let progress = h.session.process(into: &h.output, budget: .max)
                let wanted: [Name: QMPSession.Progress] = [
                    .negotiating: .needInput, .commandMode: .needInput, .waitingToStart: .waiting,
                    .waitingForWork: .waiting, .stopped: .stopped,
                ]
                #expect(progress == wanted[state])
            case .receive:
                let progress = h.feed(#"{"execute":"query-version","id":1}"#)
                switch state {
                case .negotiating:
                    #expect(
                        progress == .needInput && h.lines().first?["error"]?["class"]?.stringValue == "CommandNotFound")
                case .commandMode:
                    #expect(progress == .needInput && h.lines().first?["return"]?["package"] != nil)
                case .waitingToStart, .waitingForWork:
                    // Kept for after the reply: nothing written, nothing processed.
                    #expect(progress == .waiting && h.output.readableBytes == 0 && h.session.bufferedInputBytes > 0)
                case .stopped:
                    #expect(progress == .stopped && h.output.readableBytes == 0 && h.session.bufferedInputBytes == 0)
                }
            case .takeDeferredWork:
                let work = try h.session.takeDeferredWork()
                #expect((try? work().get()) != nil)
                #expect(h.tree.read("devices/css0/chp0.40/status") == "offline")
            case .completeDeferred:
                try h.session.completeDeferred(.success(nil), into: &h.output)
                let reply = h.lines()
                #expect(reply.count == 1 && reply[0]["id"]?.stringValue == "v" && reply[0]["return"] != nil)
            case .writeEvent:
                let written = h.session.writeEvent("E", data: nil, seconds: 1, microseconds: 2, into: &h.output)
                #expect(written == (state != .negotiating && state != .stopped))
                #expect((h.output.readableBytes > 0) == written)
            case .stop:
                h.session.stop()
            case .close:
                h.session.close()
            }
            #expect(expected != nil, "\(call) in \(state) should have been refused")
            #expect(h.session.state.name == expected ?? state)
        } catch {
            #expect(expected == nil, "\(call) in \(state) was refused: \(error)")
            #expect(error.state == state && error.call == call.rawValue && !error.allowed.contains(state))
            // Refused: nothing changed, nothing was written or buffered.
            #expect(h.session.state.name == state)
            #expect(h.output.readableBytes == 0 && h.session.bufferedInputBytes == buffered)
        }
    }

    @Test("the derived views follow the state")
    func derivedViews() throws {
        for state in Name.allCases {
            let s = try StateHarness(state).session
            #expect(s.isNegotiated == [.commandMode, .waitingToStart, .waitingForWork].contains(state))
            #expect(s.isWaiting == [.waitingToStart, .waitingForWork].contains(state))
            #expect(s.isStopped == (state == .stopped))
            #expect(!s.isOOBEnabled)
        }
        let h = try StateHarness(.negotiating)
        h.feed(#"{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}"#)
        guard case .commandMode(oob: true) = h.session.state else {
            Issue.record("expected command mode with oob, got \(h.session.state.name)")
            return
        }
        // oob survives a deferred reply.
        h.feed(StateHarness.vary)
        #expect(h.session.isOOBEnabled && h.session.isWaiting)
        let work = try h.session.takeDeferredWork()
        try h.session.completeDeferred(work(), into: &h.output)
        guard case .commandMode(oob: true) = h.session.state else {
            Issue.record("expected command mode with oob, got \(h.session.state.name)")
            return
        }
    }

    @Test("input sent while a reply waits is processed after the reply, in order")
    func inputWhileWaiting() throws {
        let h = try StateHarness(.commandMode)
        #expect(h.feed(StateHarness.vary + #"{"execute":"query-version","id":"q"}"#) == .waiting)
        #expect(h.output.readableBytes == 0)
        let work = try h.session.takeDeferredWork()
        try h.session.completeDeferred(work(), into: &h.output)
        #expect(h.session.process(into: &h.output, budget: .max) == .needInput)
        let lines = h.lines()
        #expect(lines.map { $0["id"]?.stringValue } == ["v", "q"])
        #expect(lines[0]["return"]?["changed"]?.intValue == 1)
    }

    @Test("a failed deferred write is the reply's error, and the session goes on")
    func failedWork() throws {
        let h = try StateHarness(.waitingForWork)
        let failure = BackendError.io(path: "/x", operation: "writing 'offline' to", errno: 16, message: "EBUSY")
        try h.session.completeDeferred(.failure(failure), into: &h.output)
        let reply = h.lines()
        #expect(
            reply.first?["error"]?["class"]?.stringValue == "GenericError" && reply.first?["id"]?.stringValue == "v")
        #expect(h.session.state.name == .commandMode)
        #expect(h.feed(#"{"execute":"query-version"}"#) == .needInput)
    }

    @Test("stopping drops a waiting reply: its completion is refused, nothing is written")
    func stopWhileWaiting() throws {
        let h = try StateHarness(.waitingForWork)
        h.session.stop()
        #expect(throws: SessionStateError(call: "completeDeferred", state: .stopped, allowed: [.waitingForWork])) {
            try h.session.completeDeferred(.success(nil), into: &h.output)
        }
        #expect(h.output.readableBytes == 0)
    }
}
