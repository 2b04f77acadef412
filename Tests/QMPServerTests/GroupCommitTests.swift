// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import Foundation
import JSONValues
import NIOCore
import PathChangePipeline
import PathEvents
import QMPCommands
import QMPWire
import StateStore
import Testing

@testable import QMPServer

/// A session of the model with a real state dir (a temporary directory), deferring its waits as
/// a network connection does: the test runs each wait where the connection's thread would.
private final class DurableSession {
    let directory = NSTemporaryDirectory() + "cssd-group-\(UUID().uuidString)"
    let store: StateStore
    let state: ServerState
    let session: QMPSession
    var output = ByteBuffer()

    init() throws {
        let subsystem = try Subsystem(topology: .embeddedDefault)
        store = try StateStore.open(
            directory: directory, fingerprint: StateStore.fingerprint(of: subsystem, backend: "model"),
            backend: "model", changedState: CommandRegistry.changedState)
        state = try ServerState.standard(subsystem: subsystem)
        state.durability = store
        state.pathChanges.register(store, as: .stateStore)
        session = QMPSession(server: state)
        session.deferralEnabled = true
        try session.writeGreeting(into: &output)
        feed(#"{"execute":"qmp_capabilities"}"#)
        output.clear()
    }

    deinit {
        store.close()
        try? FileManager.default.removeItem(atPath: directory)
    }

    @discardableResult
    func feed(_ text: String) -> QMPSession.Progress {
        var input = ByteBuffer(string: text)
        return session.receive(&input, into: &output, budget: .max)
    }

    /// `count` vary-path requests of chpid 0.44 (a DASD chpid that leaves five paths: one change
    /// each), alternately offline and online, with ids 1...count.
    static func varies(_ count: Int) -> String {
        (1...count).map {
            #"{"execute":"vary-path","arguments":{"chpid":"0.44","state":"\#($0 % 2 == 1 ? "offline" : "online")"},"id":\#($0)}"#
        }.joined()
    }

    func lines() -> [JSON] {
        let text = output.readString(length: output.readableBytes) ?? ""
        return text.split(separator: "\r\n").map { JSON.parse(String($0))! }
    }
}

@Suite("Group commit per connection (--state-dir)")
struct GroupCommitTests {
    @Test("a pipelining connection's recorded commands run while their commit waits; one wait commits them all")
    func pipelinedCommandsShareOneCommit() throws {
        let h = try DurableSession()
        h.feed(#"{"execute":"subscribe-path-events","id":"s"}"#)
        #expect(h.lines().map { $0["id"]?.stringValue } == ["s"])
        #expect(h.feed(DurableSession.varies(64)) == .needInput)
        // All 64 ran on the model (before: only the first, the rest waited for its fsync) and
        // no reply or event went before its change was durable.
        #expect(h.state.pathChanges.lastSequence == 64)
        #expect(h.output.readableBytes == 0)
        #expect(h.session.isWaiting)
        let wait = try #require(h.session.takeDurableWait())
        #expect(wait.count == 64)
        #expect(h.session.takeDurableWait() == nil)  // one wait at a time
        // A request behind them while the wait runs: its record goes with the next wait.
        h.feed(#"{"execute":"vary-path","arguments":{"chpid":"0.45","state":"offline"},"id":65}"#)
        #expect(h.output.readableBytes == 0)
        h.session.completeDurableWait(wait.run())
        #expect(h.store.isDurable(64))
        _ = h.session.process(into: &h.output, budget: .max)
        // Replies in request order. The events of the changes were queued while held (not
        // yet durable), so the subscription coalesced them (one pending event per chpid, as
        // for any subscriber that is not read): the newest follows the last reply.
        let lines = h.lines()
        #expect(lines.prefix(64).compactMap { $0["id"]?.intValue } == Array(1...64))
        #expect(lines.dropFirst(64).map { $0["data"]?["sequence"]?.intValue } == [64])
        let next = try #require(h.session.takeDurableWait())
        #expect(next.count == 1)
        h.session.completeDurableWait(next.run())
        _ = h.session.process(into: &h.output, budget: .max)
        // Its reply, then the event of its change.
        let last = h.lines()
        #expect(last.map { $0["id"]?.intValue ?? $0["data"]?["sequence"]?.intValue } == [65, 65])
        #expect(!h.session.isWaiting)
    }

    @Test("a commit that fails fails every reply of its batch with the command's error; their events are held")
    func failedCommitFailsTheBatch() throws {
        let h = try DurableSession()
        h.feed(#"{"execute":"subscribe-path-events","id":"s"}"#)
        h.output.clear()
        h.feed(DurableSession.varies(8))
        let wait = try #require(h.session.takeDurableWait())
        h.store.close()  // the state dir is gone from under the wait: its commit fails
        h.session.completeDurableWait(wait.run())
        _ = h.session.process(into: &h.output, budget: .max)
        let lines = h.lines()
        #expect(lines.count == 8)
        for (index, line) in lines.enumerated() {
            #expect(line["id"]?.intValue == index + 1)
            let desc = line["error"]?["desc"]?.stringValue ?? ""
            #expect(desc.hasPrefix("the change was made but could not be recorded in the state dir: "))
        }
        #expect(h.state.deliverableThrough == 0)  // no subscriber hears of them
        // Until the retry: a recorded command is refused unrun (the model stays as recorded,
        // nothing more is held), a query answers.
        h.feed(#"{"execute":"vary-path","arguments":{"chpid":"0.45","state":"offline"},"id":9}"#)
        h.feed(#"{"execute":"query-version","id":10}"#)
        _ = h.session.process(into: &h.output, budget: .max)
        let after = h.lines()
        #expect(after.map { $0["id"]?.intValue } == [9, 10])
        let refusal = after.first?["error"]?["desc"]?.stringValue ?? ""
        #expect(refusal.hasPrefix("the state dir cannot record changes now (its last commit failed: "))
        #expect(refusal.contains("nothing was changed"))
        #expect(h.state.pathChanges.lastSequence == 8)
        #expect(h.session.takeDurableWait() == nil)
    }

    @Test("a request neither read-only nor recorded waits, unrun, until the replies before it are written")
    func otherRequestsWaitForTheQueue() throws {
        let h = try DurableSession()
        h.feed(
            DurableSession.varies(2) + #"{"execute":"query-chpids","id":"q"}"#
                + #"{"execute":"store-subchannel","arguments":{"subchannel":"0.0.0000"},"id":"s"}"#
                + DurableSession.varies(1))
        // The query ran (its reply queued); store-subchannel (not marked read-only, not
        // recorded) and the vary behind it did not.
        #expect(h.state.pathChanges.lastSequence == 2)
        let wait = try #require(h.session.takeDurableWait())
        #expect(wait.count == 2)
        h.session.completeDurableWait(wait.run())
        _ = h.session.process(into: &h.output, budget: .max)
        #expect(h.lines().map { $0["id"]?.intValue.map(String.init) ?? $0["id"]?.stringValue } == ["1", "2", "q", "s"])
        #expect(h.state.pathChanges.lastSequence == 3)
        let last = try #require(h.session.takeDurableWait())
        h.session.completeDurableWait(last.run())
        _ = h.session.process(into: &h.output, budget: .max)
        #expect(h.lines().compactMap { $0["id"]?.intValue } == [1])
    }
}
