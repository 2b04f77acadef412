// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import JSONValues
import PathChangePipeline
import PathEvents
import Testing

@testable import QMPCommands
@testable import QMPSchema
@testable import QMPWire

/// The scenario player's commands (API/scenario.json) through the dispatcher, on a
/// `ServerState` alone (no network layer: model time plays inside scenario-play), over the
/// model of the embedded topology (0.40-0.43 carry 42 DASDs; 0.4c is the only operational
/// path of 0.0.3000-0.0.3001, 0.4d being in standby).
@Suite struct ScenarioCommandsTests {
    /// Keeps every published change's cause and sequence.
    final class Causes: PathChangeSink {
        var seen: [(UInt64, PathChangeCause, PathEventChange)] = []
        func pathChangePublished(_ published: PublishedPathChange) {
            seen.append((published.sequence, published.cause, published.kind))
        }
    }

    static func server() throws -> (ServerState, Causes) {
        let server = try ServerState(
            schema: Schema.embedded(), registry: CommandRegistry.standard(), options: ServerOptions(),
            journal: PathEventJournal(capacity: 1024, epoch: "00000000000000aa"))
        let causes = Causes()
        server.pathChanges.register(causes, as: .metrics)
        return (server, causes)
    }

    static func run(_ server: ServerState, _ command: String, _ arguments: JSON? = nil) throws -> Result<JSON, QMPError>
    {
        var members: [(String, JSON)] = [("execute", .string(command))]
        if let arguments { members.append(("arguments", arguments)) }
        guard case .success(let checked) = QMPRequest.check(.object(members), oobEnabled: false) else {
            throw QMPError.generic("bad request")
        }
        return MeasurementCommandsTests.runChecked(server, checked)
    }

    static func load(_ server: ServerState, _ text: String) throws -> Result<JSON, QMPError> {
        try run(server, "scenario-load", .object([("scenario", .string(text))]))
    }

    static let switchFailure = """
        {"scenario": "switch-failure", "groups": {"switch-a": ["0.40", "0.41", "0.42", "0.43"]},
         "steps": [
          {"name": "down", "at": 1000, "execute": "inject-path-fault",
           "arguments": {"group": "switch-a", "fault": "permanent-error"}},
          {"name": "up", "after": "down", "delay": 30000, "execute": "inject-path-fault",
           "arguments": {"group": "switch-a", "fault": "recovered"}}
         ]}
        """

    @Test func playsInModelTimeWithTheScenarioAndStepAsCause() throws {
        let (server, causes) = try Self.server()
        let loaded = try Self.load(server, Self.switchFailure).get()
        #expect(loaded["state"]?.stringValue == "loaded")
        #expect(loaded["total"]?.intValue == 2)
        let played = try Self.run(server, "scenario-play").get()
        #expect(played["state"]?.stringValue == "finished")
        #expect(played["played"]?.intValue == 2)
        #expect(played["last-step"]?.stringValue == "up")
        // 4 chpids down (each its own change), redundancy/last-path losses after the last
        // ones, then 4 back: every change caused by the scenario and its step, numbered on.
        #expect(causes.seen.map(\.0) == Array(1...UInt64(causes.seen.count)))
        let downs = causes.seen.filter { $0.2 == .permanentError }
        #expect(downs.count == 4)
        #expect(causes.seen.filter { $0.2 == .recovered }.count == 4)
        for (_, cause, kind) in causes.seen {
            let step = kind == .recovered ? "up" : "down"
            #expect(cause == .command(by: .scenario(name: "switch-failure", step: step)))
        }
        #expect(server.subsystem.channelPath(ChannelPathID(cssid: 0, chpid: 0x40))?.isAvailable == true)
    }

    @Test func refusesBadTextAndUnknownIdsWithTheirPlaceBeforePlaying() throws {
        let (server, causes) = try Self.server()
        guard case .failure(let syntax) = try Self.load(server, "{\"scenario\": \"x\",\n  \"steps\": [}") else {
            Issue.record("a malformed scenario was loaded")
            return
        }
        #expect(syntax.errorClass == .genericError)
        #expect(syntax.desc.hasPrefix("2:"))
        let unknown = """
            {"scenario": "x", "steps": [
              {"at": 0, "execute": "inject-path-fault", "arguments": {"chpid": "0.77", "fault": "recovered"}}]}
            """
        guard case .failure(let topology) = try Self.load(server, unknown) else {
            Issue.record("a scenario naming an unknown chpid was loaded")
            return
        }
        #expect(topology.desc.hasPrefix("2:"), "\(topology.desc)")
        #expect(topology.desc.contains("0.77"))
        #expect(try Self.run(server, "query-scenario").get()["state"]?.stringValue == "idle")
        guard case .failure(let nothing) = try Self.run(server, "scenario-play") else {
            Issue.record("played without a scenario")
            return
        }
        #expect(nothing.desc.contains("no scenario is loaded"))
        #expect(causes.seen.isEmpty)
    }

    @Test func operatorStepsPassTheInterlockUnlessForced() throws {
        let (server, causes) = try Self.server()
        let text = """
            {"scenario": "service", "steps": [
              {"name": "vary-4c", "at": 0, "execute": "vary-path", "arguments": {"chpid": "0.4c", "state": "offline"}},
              {"name": "after", "at": 10, "execute": "inject-path-fault", "arguments": {"chpid": "0.40", "fault": "temporary-error"}}]}
            """
        _ = try Self.load(server, text).get()
        let refused = try Self.run(server, "scenario-play").get()
        #expect(refused["state"]?.stringValue == "failed")
        #expect(refused["played"]?.intValue == 0)
        #expect(refused["next-step"]?.stringValue == "vary-4c")
        let failure = try #require(refused["failure"]?.stringValue)
        #expect(failure.hasPrefix("vary-4c: vary-path 0.4c offline refused"), "\(failure)")
        #expect(causes.seen.isEmpty)
        #expect(server.subsystem.channelPath(ChannelPathID(cssid: 0, chpid: 0x4c))?.vary == .online)

        _ = try Self.load(server, text.replacing(#""offline"}"#, with: #""offline", "force": true}"#))
            .get()
        let forced = try Self.run(server, "scenario-play").get()
        #expect(forced["state"]?.stringValue == "finished")
        #expect(server.subsystem.channelPath(ChannelPathID(cssid: 0, chpid: 0x4c))?.vary == .offline)
        #expect(causes.seen.first?.1 == .command(by: .scenario(name: "service", step: "vary-4c")))
    }

    @Test func hardwareStepsAreNeverRefusedByTheInterlock() throws {
        let (server, _) = try Self.server()
        let text = """
            {"scenario": "hw", "steps": [
              {"at": 0, "execute": "inject-path-fault", "arguments": {"chpid": "0.4c", "fault": "permanent-error"}}]}
            """
        _ = try Self.load(server, text).get()
        #expect(try Self.run(server, "scenario-play").get()["state"]?.stringValue == "finished")
    }

    @Test func devicePathFaultChangesOneDeviceOnly() throws {
        let (server, causes) = try Self.server()
        let reply = try Self.run(
            server, "inject-device-path-fault",
            .object([
                ("device", .string("0.0.1000")), ("chpid", .string("0.40")), ("fault", .string("permanent-error")),
            ])
        ).get()
        #expect(reply["changed"]?.intValue == 1)
        #expect(causes.seen.count == 1)
        #expect(causes.seen.first?.2 == .permanentError)
    }

    @Test func pauseResumeAndStopNeedARun() throws {
        let (server, _) = try Self.server()
        for command in ["scenario-pause", "scenario-resume", "scenario-stop"] {
            guard case .failure(let error) = try Self.run(server, command) else {
                Issue.record("\(command) without a run succeeded")
                continue
            }
            #expect(error.errorClass == .genericError)
        }
    }

    @Test func wallTimeNeedsTheServersTimers() throws {
        let (server, _) = try Self.server()
        _ = try Self.load(server, Self.switchFailure).get()
        guard case .failure(let error) = try Self.run(server, "scenario-play", .object([("clock", .string("wall"))]))
        else {
            Issue.record("wall time played without timers")
            return
        }
        #expect(error.desc.contains("wall time"))
    }
}

extension MeasurementCommandsTests {
    /// Dispatches a checked request as a client connection and runs deferred work inline.
    static func runChecked(_ server: ServerState, _ checked: QMPRequest) -> Result<JSON, QMPError> {
        final class Session: SessionControl {
            var isNegotiated: Bool { true }
            var isReadOnly: Bool { false }
            var origin: CommandOrigin { .connection(1) }
            func enterCommandMode(oob: Bool) {}
        }
        switch Dispatcher.dispatch(checked, server: server, session: Session()) {
        case .success(.reply(let value)): return .success(value)
        case .success(.deferred(let work)): return work.runInline()
        case .failure(let error): return .failure(error)
        }
    }
}
