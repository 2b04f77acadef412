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

/// Calls `heard` with every published change.
private final class ClockReadingSink: PathChangeSink {
    let heard: (PublishedPathChange) -> Void
    init(_ heard: @escaping (PublishedPathChange) -> Void) { self.heard = heard }
    func pathChangePublished(_ published: PublishedPathChange) { heard(published) }
}

@Suite("Command pipeline: durability")
struct DurableClockTests {
    @Test("a recorded command runs at its own time, carried in its context: the server's clock is not swapped")
    func recordedCommandLeavesTheClock() throws {
        let directory = NSTemporaryDirectory() + "cssd-clock-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let subsystem = try Subsystem(topology: .embeddedDefault)
        let store = try StateStore.open(
            directory: directory, fingerprint: StateStore.fingerprint(of: subsystem, backend: "model"),
            backend: "model", changedState: CommandRegistry.changedState)
        defer { store.close() }
        let state = try ServerState.standard(subsystem: subsystem)
        state.durability = store
        state.pathChanges.register(store, as: .stateStore)
        // A clock that ticks a second per reading.
        var ticks = 0
        state.clock = {
            ticks += 1
            return EventTime(seconds: 1_700_000_000 + ticks, microseconds: 0)
        }
        // What "now" is while the change is being published, as any reader of the clock sees it.
        var readings: [(published: EventTime, clock: EventTime)] = []
        let sink = ClockReadingSink { readings.append(($0.time, state.clock())) }
        state.pathChanges.register(sink, as: .metrics)
        let session = QMPSession(server: state)
        var output = ByteBuffer()
        try session.writeGreeting(into: &output)
        var input = ByteBuffer(
            string:
                #"{"execute":"qmp_capabilities"}{"execute":"vary-path","arguments":{"chpid":"0.40","state":"offline"}}"#
        )
        _ = session.receive(&input, into: &output, budget: .max)
        #expect(String(buffer: output).contains(#""changed": "#))
        let reading = try #require(readings.first)
        // The change carries the command's time; the clock, read meanwhile, has moved on.
        #expect(reading.clock != reading.published)
        #expect(state.journal.changes.last?.time == reading.published)
        withExtendedLifetime(sink) {}
    }

    @Test("middlewares run around the dispatch, the first outermost, and see its result")
    func middlewaresNest() throws {
        final class Log { var lines: [String] = [] }
        struct Tracing: CommandMiddleware {
            let name: String
            let log: Log
            func handle(_ call: CommandCall, context: CommandContext, next: CommandNext) -> CommandResult {
                log.lines.append("\(name) in")
                let result = next(call, context)
                log.lines.append("\(name) out \(result.errorClass?.rawValue ?? "ok")")
                return result
            }
        }
        let log = Log()
        let pipeline = CommandPipeline([Tracing(name: "a", log: log), Tracing(name: "b", log: log)])
        let state = try ServerState.standard()
        let session = QMPSession(server: state)
        let request = try QMPRequest.check(JSON.parse(#"{"execute":"nope"}"#)!, oobEnabled: false).get()
        _ = pipeline.handle(
            CommandCall(request, server: state), context: CommandContext(server: state, session: session))
        #expect(log.lines == ["a in", "b in", "b out CommandNotFound", "a out CommandNotFound"])
    }
}
