// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import Foundation
import TestSupport
import Testing
import TopologyFile

@testable import Scenario

/// The scenarios shipped in API/examples parse and name only what their topology has.
@Suite struct ShippedExamplesTests {
    static let directory = Repository.root + "/API/examples"

    @Test(arguments: ["switch-failure", "flapping-link", "storage-port-service"])
    func anExampleIsValidOnItsTopology(name: String) throws {
        let topology = try TopologyFile.decode(contentsOf: Self.directory + "/topology.json")
        let text = try String(contentsOfFile: Self.directory + "/\(name).json", encoding: .utf8)
        let scenario = try Scenario.parse(text)
        #expect(scenario.name == name)
        #expect(!scenario.steps.isEmpty)
        try scenario.check(against: ScenarioTargets(topology: topology))
    }

    @Test func theFlappingLinkUnrollsToTwentyStepsAndTheRepair() throws {
        let text = try String(contentsOfFile: Self.directory + "/flapping-link.json", encoding: .utf8)
        let scenario = try Scenario.parse(text)
        #expect(scenario.steps.count == 21)
        #expect(scenario.steps.last?.name == "operator-offline")
        #expect(scenario.steps.last?.offset == 20_500)
    }

    /// The storage port in service mode, played on its topology: the quiesce takes 0.40 and 0.44
    /// out of the driver's use on both devices behind the port (each keeps 0.42 and 0.46), the
    /// resume gives them back; nothing is left quiesced.
    @Test func theStoragePortServiceQuiescesAndResumesThePortsPaths() throws {
        let topology = try TopologyFile.decode(contentsOf: Self.directory + "/topology.json")
        var model = try Subsystem(topology: topology)
        let text = try String(contentsOfFile: Self.directory + "/storage-port-service.json", encoding: .utf8)
        var run = ScenarioRun(try Scenario.parse(text))
        let quiesced = run.playNext(on: &model)
        #expect(
            quiesced.map { "\($0.chpid) \($0.affected[0].id)" } == [
                "0.40 0.0.0000", "0.40 0.0.0001", "0.44 0.0.0000", "0.44 0.0.0001",
            ])
        for id in ["0.0.0000", "0.0.0001"] {
            let sch = try #require(model.subchannel(try SubchannelID(parsing: id)))
            #expect(model.dasdPathHealth(of: sch)?.masks?.cuirpm == 0xa0)
            #expect(model.dasdPathHealth(of: sch)?.masks?.opm == 0x50)
        }
        while run.next != nil { _ = run.playNext(on: &model) }
        #expect(run.state == .finished && run.failure == nil)
        for sch in model.subchannels {
            #expect(model.dasdPathHealth(of: sch)?.masks?.cuirpm == 0)
            #expect(model.dasdPathHealth(of: sch)?.masks?.opm == 0xf0)
        }
    }
}
