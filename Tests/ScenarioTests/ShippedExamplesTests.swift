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
}
