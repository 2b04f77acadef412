// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import Testing

@testable import Scenario

/// The pure player: the same scenario on the same topology makes the same changes and CRWs,
/// every time; stopped midway, the model is what the steps played made of it.
@Suite struct ScenarioRunTests {
    static func chp(_ text: String) -> ChannelPathID { try! ChannelPathID(parsing: text) }
    static func sch(_ text: String) -> SubchannelID { try! SubchannelID(parsing: text) }

    /// chpids 0.40-0.43; 0.0.0000 [40 41], 0.0.0001 [41 42 40], 0.0.0002 [42, 43].
    static func model() -> Subsystem {
        let paths = ["0.40", "0.41", "0.42", "0.43"].map { Topology.ChannelPath(id: chp($0), type: 0x1a) }
        func dasd(_ id: String, _ devno: Int, _ chpids: [String]) -> Topology.Subchannel {
            .init(
                id: sch(id), devno: devno, devType: 0x3390, devModel: 0x0c, cuType: 0x3990, cuModel: 0xe9,
                chpids: chpids.map(chp), enabled: true, isc: 3)
        }
        let topology = Topology(
            channelSubsystems: [.init(cssid: 0)], channelPaths: paths,
            subchannels: [
                dasd("0.0.0000", 0x1000, ["0.40", "0.41"]), dasd("0.0.0001", 0x1001, ["0.41", "0.42", "0.40"]),
                dasd("0.0.0002", 0x1002, ["0.42", "0.43"]),
            ], multipleCSSEnabled: false)
        return try! Subsystem(topology: topology)
    }

    static let text = """
        {"scenario": "incident", "groups": {"switch": ["0.40", "0.41"]}, "steps": [
          {"name": "switch-down", "at": 0, "execute": "inject-path-fault", "arguments": {"group": "switch", "fault": "permanent-error"}},
          {"name": "flap", "at": 10, "loop": {"count": 3, "period": 100, "steps": [
            {"name": "down", "at": 0, "execute": "inject-path-fault", "arguments": {"chpid": "0.43", "fault": "temporary-error"}},
            {"name": "up", "at": 50, "execute": "inject-path-fault", "arguments": {"chpid": "0.43", "fault": "recovered"}}]}},
          {"name": "one-device", "at": 400, "execute": "inject-device-path-fault", "arguments": {"device": "0.0.1002", "chpid": "0.42", "fault": "temporary-error"}},
          {"name": "operator", "at": 500, "execute": "vary-path", "arguments": {"chpid": "0.42", "state": "offline", "force": true}},
          {"name": "switch-up", "at": 600, "execute": "inject-path-fault", "arguments": {"group": "switch", "fault": "recovered"}}
        ]}
        """

    /// Plays the whole scenario; returns every change and the CRWs STCRW then pops.
    static func play(stoppingAfter limit: Int? = nil) throws -> ([PathChange], [UInt32], Subsystem, ScenarioRun) {
        var model = model()
        var run = ScenarioRun(try Scenario.parse(text))
        var changes: [PathChange] = []
        while run.next != nil {
            if let limit, run.played == limit { run.stop() }
            changes += run.playNext(on: &model)
        }
        var crws: [UInt32] = []
        while case let result = model.storeChannelReportWord(), result.cc == 0 { crws.append(result.crw.rawValue) }
        return (changes, crws, model, run)
    }

    @Test func theSameScenarioMakesTheSameChangesEveryTime() throws {
        let (first, firstCRWs, _, run) = try Self.play()
        #expect(run.state == .finished)
        #expect(run.played == 10)
        // switch-down: one report per chpid (ERC 6), the flap: ERC 3 and 2 three times, the
        // device fault and the vary none, switch-up: ERC 2 per chpid.
        #expect(
            firstCRWs == [
                0x0406_0040, 0x0406_0041, 0x0403_0043, 0x0402_0043, 0x0403_0043, 0x0402_0043, 0x0403_0043,
                0x0402_0043, 0x0402_0040, 0x0402_0041,
            ])
        for _ in 0..<3 {
            let (again, againCRWs, _, _) = try Self.play()
            #expect(again == first)
            #expect(againCRWs == firstCRWs)
        }
    }

    @Test func aRunStoppedMidwayLeavesTheStepsPlayed() throws {
        let (_, _, stoppedModel, run) = try Self.play(stoppingAfter: 8)
        #expect(run.state == .stopped)
        #expect(run.played == 8)
        #expect(run.lastPlayed?.name == "one-device")
        // The model is the one the first eight steps make.
        var expected = Self.model()
        var reference = ScenarioRun(try Scenario.parse(Self.text))
        for _ in 0..<8 { _ = reference.playNext(on: &expected) }
        for id in ["0.0.0000", "0.0.0001", "0.0.0002"] {
            #expect(stoppedModel.storeSubchannel(Self.sch(id)).schib == expected.storeSubchannel(Self.sch(id)).schib)
        }
        #expect(stoppedModel.channelPaths == expected.channelPaths)
    }

    @Test func pauseAndResume() throws {
        var model = Self.model()
        var run = ScenarioRun(try Scenario.parse(Self.text))
        _ = run.playNext(on: &model)
        run.pause()
        #expect(run.next == nil)
        #expect(run.playNext(on: &model).isEmpty)
        #expect(run.played == 1)
        run.resume()
        #expect(run.next?.name == "flap#1/down")
    }

    @Test func aStepTheModelCannotDoStopsTheRunAndSaysWhy() throws {
        let text = """
            {"scenario": "x", "steps": [
              {"name": "fault", "at": 0, "execute": "inject-path-fault", "arguments": {"chpid": "0.40", "fault": "temporary-error"}},
              {"name": "gone", "at": 1, "execute": "inject-device-path-fault", "arguments": {"device": "0.0.1000", "chpid": "0.42", "fault": "recovered"}},
              {"name": "never", "at": 2, "execute": "inject-path-fault", "arguments": {"chpid": "0.40", "fault": "recovered"}}]}
            """
        var model = Self.model()
        var run = ScenarioRun(try Scenario.parse(text))
        while run.next != nil { _ = run.playNext(on: &model) }
        #expect(run.state == .stopped)
        #expect(run.played == 1)
        #expect(run.failure?.step == "gone")
        #expect(run.failure?.reason == ModelError.pathNotInstalled(Self.chp("0.42"), Self.sch("0.0.0000")).description)
    }
}
