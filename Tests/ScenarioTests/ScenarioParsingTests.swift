// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import Testing

@testable import Scenario

private func chp(_ text: String) -> ChannelPathID { try! ChannelPathID(parsing: text) }
private func dev(_ text: String) -> DeviceID { try! DeviceID(parsing: text) }
private func sch(_ text: String) -> SubchannelID { try! SubchannelID(parsing: text) }

/// The refusal a text gets: `LINE:COLUMN: REASON`, or nil when it parses.
private func refusal(_ text: String) -> ScenarioError? {
    do {
        _ = try Scenario.parse(text)
        return nil
    } catch { return error }
}

/// chpids 0.40-0.43, devices 0.0.1000 (0.0.0000) and 0.0.1001 (0.0.0001).
private let targets = ScenarioTargets(
    chpids: [chp("0.40"), chp("0.41"), chp("0.42"), chp("0.43")],
    devices: [dev("0.0.1000"): sch("0.0.0000"), dev("0.0.1001"): sch("0.0.0001")],
    subchannels: [sch("0.0.0000"), sch("0.0.0001")])

@Suite struct ScenarioParsingTests {
    static let switchFailure = """
        {
          "scenario": "switch-failure",
          "groups": {"switch-a": ["0.40", "0.41"]},
          "steps": [
            {"name": "down", "at": 100, "execute": "inject-path-fault",
             "arguments": {"group": "switch-a", "fault": "permanent-error"}},
            {"name": "operator", "after": "down", "delay": 50, "execute": "vary-path",
             "arguments": {"chpid": "0.40", "state": "offline", "force": true}},
            {"name": "up", "at": 1000, "execute": "inject-path-fault",
             "arguments": {"chpids": ["0.40", "0.41"], "fault": "recovered"}}
          ]
        }
        """

    @Test func aScenarioParsesIntoItsTimeline() throws {
        let scenario = try Scenario.parse(Self.switchFailure)
        #expect(scenario.name == "switch-failure")
        #expect(scenario.clock == .model)
        #expect(scenario.groupMembers["switch-a"] == [chp("0.40"), chp("0.41")])
        #expect(scenario.steps.map(\.name) == ["down", "operator", "up"])
        #expect(scenario.steps.map(\.offset) == [100, 150, 1000])
        #expect(scenario.steps[0].action == .pathFault(chpids: [chp("0.40"), chp("0.41")], fault: .permanentError))
        #expect(scenario.steps[1].action == .vary(chpid: chp("0.40"), state: .offline, subchannel: nil, force: true))
        #expect(scenario.steps[0].action.isHardware)
        #expect(!scenario.steps[1].action.isHardware)
        #expect(scenario.steps[0].position == ScenarioPosition(line: 5, column: 5))
        #expect(scenario.duration == 1000)
        try scenario.check(against: targets)
    }

    @Test func aLoopUnrollsWithinItsPeriodAndAfterSortsByOffset() throws {
        let text = """
            {"scenario": "flap", "clock": "wall", "steps": [
              {"name": "flap", "at": 0, "loop": {"count": 3, "period": 1000, "steps": [
                {"name": "down", "at": 0, "execute": "inject-path-fault", "arguments": {"chpid": "0.42", "fault": "temporary-error"}},
                {"name": "up", "at": 400, "execute": "inject-path-fault", "arguments": {"chpid": "0.42", "fault": "recovered"}}
              ]}},
              {"name": "after-flap", "after": "flap", "delay": 10, "execute": "configure-chpid",
               "arguments": {"chpid": "0.42", "state": "standby"}},
              {"name": "early", "at": 500, "execute": "remove-device", "arguments": {"device": "0.0.1001"}}
            ]}
            """
        let scenario = try Scenario.parse(text)
        #expect(scenario.clock == .wall)
        #expect(
            scenario.steps.map(\.name) == [
                "flap#1/down", "flap#1/up", "early", "flap#2/down", "flap#2/up", "flap#3/down", "flap#3/up",
                "after-flap",
            ])
        #expect(scenario.steps.map(\.offset) == [0, 400, 500, 1000, 1400, 2000, 2400, 3010])
        #expect(scenario.steps.last?.action == .configure(chpid: chp("0.42"), state: .standby, force: false))
        try scenario.check(against: targets)
    }

    @Test func newFaultsParse() throws {
        let text = """
            {"scenario": "devices", "steps": [
              {"at": 0, "execute": "add-device", "arguments": {"device": "0.0.2000", "subchannel": "0.0.0010",
               "chpids": ["0.42", "0.43"], "dev-type": "3390/0c", "cu-type": "3990/e9"}},
              {"at": 1, "execute": "inject-device-path-fault", "arguments": {"device": "0.0.2000", "chpid": "0.43", "fault": "permanent-error"}},
              {"at": 2, "execute": "remove-device", "arguments": {"device": "0.0.2000"}}
            ]}
            """
        let scenario = try Scenario.parse(text)
        #expect(scenario.steps.map(\.name) == ["step-1", "step-2", "step-3"])
        #expect(
            scenario.steps[0].action
                == .addDevice(
                    ScenarioDevice(
                        device: dev("0.0.2000"), subchannel: sch("0.0.0010"), chpids: [chp("0.42"), chp("0.43")],
                        devType: 0x3390, devModel: 0x0c, cuType: 0x3990, cuModel: 0xe9)))
        #expect(
            scenario.steps[1].action
                == .devicePathFault(device: dev("0.0.2000"), chpid: chp("0.43"), fault: .permanentError))
        try scenario.check(against: targets)
    }

    /// Each refusal names the line and column of the value at fault and why.
    @Test(arguments: [
        ("[1, 2]", "1:1: not a scenario: expected an object with a \"scenario\" name and \"steps\""),
        ("{\"topology\": 1}", "1:1: not a scenario: expected an object with a \"scenario\" name and \"steps\""),
        ("{\"scenario\": \"x\"}", "1:1: not a scenario: \"steps\" is missing"),
        ("{\"scenario\": \"x\",\n \"steps\": [}", "2:12: not JSON: expected a value"),
        ("{\"scenario\": \"x\" \"steps\": []}", "1:18: not JSON: expected ',' or '}'"),
        ("{\"scenario\": \"x\", \"steps\": [1 2]}", "1:31: not JSON: expected ',' or ']'"),
        ("{\"scenario\": \"x\", \"steps\": []", "1:30: the text ends inside an object"),
        ("{\"scenario\": \"x\", \"steps\": [1", "1:30: the text ends inside an array"),
        ("{\"scenario\": \"x\", \"steps\": []} x", "1:32: unexpected text after the scenario's closing brace"),
        ("{\"scenario\": \"x\", \"scenario\": \"y\", \"steps\": []}", "1:19: 'scenario' is given twice"),
        (
            "{\"scenario\": \"x\", \"stpes\": []}",
            "1:19: unknown member 'stpes' in a scenario; the members here are: scenario, description, clock, groups, steps"
        ),
        (
            "{\"scenario\": \"x\", \"steps\": [\n  {\"at\": 5, \"execute\": \"remove-device\", \"arguments\": {\"device\": \"0.0.1000\"}},\n  {\"at\": 4, \"execute\": \"remove-device\", \"arguments\": {\"device\": \"0.0.1001\"}}]}",
            "3:3: steps out of order: step 'step-2' is at 4 ms, before the step above it (5 ms)"
        ),
        (
            "{\"scenario\": \"x\", \"steps\": [\n  {\"name\": \"f\", \"at\": 0, \"loop\": {\"period\": 100, \"steps\": []}}]}",
            "2:34: loop 'f' has no end: give \"count\" (1...1000000 iterations)"
        ),
        (
            "{\"scenario\": \"x\", \"steps\": [\n  {\"name\": \"f\", \"at\": 0, \"loop\": {\"count\": 0, \"period\": 100}}]}",
            "2:44: loop 'f' count 0 is out of range (1...1000000)"
        ),
        (
            "{\"scenario\": \"x\", \"steps\": [{\"at\": 0, \"loop\": {\"count\": 2, \"period\": 100, \"steps\": [\n {\"at\": 100, \"execute\": \"remove-device\", \"arguments\": {\"device\": \"0.0.1000\"}}]}}]}",
            "2:2: loop 'step-1': step 'step-1#1/step-1' is at 100 ms, not within the period (100 ms)"
        ),
        (
            "{\"scenario\": \"x\", \"steps\": [\n  {\"after\": \"later\", \"execute\": \"remove-device\", \"arguments\": {\"device\": \"0.0.1000\"}}]}",
            "2:13: step 'step-1' is after 'later', which is not a step above it in this list"
        ),
        (
            "{\"scenario\": \"x\", \"steps\": [\n  {\"at\": 0, \"execute\": \"explode\"}]}",
            "2:24: step 'step-1': unknown action 'explode'; the actions are: inject-path-fault, vary-path, configure-chpid, inject-device-path-fault, add-device, remove-device, quiesce-control-unit, resume-control-unit"
        ),
        (
            "{\"scenario\": \"x\", \"steps\": [\n  {\"at\": 0, \"execute\": \"inject-path-fault\", \"arguments\": {\"chpid\": \"0.4g\", \"fault\": \"recovered\"}}]}",
            "2:68: chpid '0.4g': expected cssid.chpid in hex, like 0.4a"
        ),
        (
            "{\"scenario\": \"x\", \"steps\": [\n  {\"at\": 0, \"execute\": \"inject-path-fault\", \"arguments\": {\"group\": \"sw\", \"fault\": \"recovered\"}}]}",
            "2:68: unknown group 'sw' (none is defined)"
        ),
        (
            "{\"scenario\": \"x\", \"steps\": [\n  {\"at\": 0, \"execute\": \"vary-path\", \"arguments\": {\"chpid\": \"0.40\", \"state\": \"offline\", \"forse\": true}}]}",
            "2:88: vary-path has no argument 'forse'; its arguments are: chpid, state, subchannel, force"
        ),
        (
            "{\"scenario\": \"x\", \"steps\": [\n  {\"at\": 0, \"execute\": \"quiesce-control-unit\", \"arguments\": {}}]}",
            "2:61: quiesce-control-unit needs exactly one of 'chpid', 'chpids', 'group'"
        ),
        (
            "{\"scenario\": \"x\", \"steps\": [\n  {\"at\": 0, \"execute\": \"resume-control-unit\", \"arguments\": {\"chpid\": \"0.40\", \"devices\": [\"0.0.1000\", \"0.0.1000\"]}}]}",
            "2:102: devices names 0.0.1000 twice"
        ),
    ])
    func refusalsNameTheLineAndTheReason(text: String, expected: String) {
        #expect(refusal(text)?.description == expected)
    }

    /// Ids are checked against the running topology, in timeline order.
    @Test(arguments: [
        (
            "{\"scenario\": \"x\", \"groups\": {\"sw\": [\"0.40\",\n \"0.7f\"]}, \"steps\": [\n {\"at\": 0, \"execute\": \"inject-path-fault\", \"arguments\": {\"group\": \"sw\", \"fault\": \"recovered\"}}]}",
            "2:2: step 'step-1': unknown chpid 0.7f (not in the topology)"
        ),
        (
            "{\"scenario\": \"x\", \"steps\": [\n {\"at\": 0, \"execute\": \"remove-device\", \"arguments\": {\"device\": \"0.0.1000\"}},\n {\"at\": 1, \"execute\": \"inject-device-path-fault\", \"arguments\": {\"device\": \"0.0.1000\", \"chpid\": \"0.40\", \"fault\": \"recovered\"}}]}",
            "3:75: step 'step-2': unknown device 0.0.1000 (not in the topology at this step)"
        ),
        (
            "{\"scenario\": \"x\", \"steps\": [\n {\"at\": 0, \"execute\": \"add-device\", \"arguments\": {\"device\": \"0.0.3000\", \"subchannel\": \"0.0.0001\", \"chpids\": [\"0.40\"], \"cu-type\": \"3990/e9\"}}]}",
            "2:87: step 'step-1': subchannel 0.0.0001 is already in use"
        ),
        (
            "{\"scenario\": \"x\", \"steps\": [\n {\"at\": 0, \"execute\": \"vary-path\", \"arguments\": {\"chpid\": \"0.40\", \"state\": \"online\", \"subchannel\": \"0.0.0009\"}}]}",
            "2:100: step 'step-1': unknown subchannel 0.0.0009 (not in the topology at this step)"
        ),
    ])
    func unknownIdsAreRefusedWhereTheyAreWritten(text: String, expected: String) throws {
        let scenario = try Scenario.parse(text)
        var message: String?
        do { try scenario.check(against: targets) } catch { message = error.description }
        #expect(message == expected)
    }

    @Test func theJSONReaderIsStrict() {
        for text in [
            "{\"a\": 01}", "{\"a\": 1,}", "{'a': 1}", "{\"a\": NaN}", "{\"a\": \"\u{1}\"}", "{\"a\": \"\\ud800\"}",
        ] {
            #expect(throws: ScenarioError.self, "\(text)") { try ScenarioJSON.parse(text) }
        }
        let deep = String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
        #expect(throws: ScenarioError.self) { try ScenarioJSON.parse(deep) }
        #expect(throws: Never.self) {
            try ScenarioJSON.parse("{\"a\": [1.5e3, -2, \"\\u00e9\\ud83d\\ude00\", null, true]}")
        }
    }

    @Test func aLoopThatUnrollsTooFarIsRefused() {
        let text = """
            {"scenario": "x", "steps": [{"name": "l", "at": 0, "loop": {"count": 1000000, "period": 1, "steps": [
              {"at": 0, "execute": "remove-device", "arguments": {"device": "0.0.1000"}},
              {"at": 0, "execute": "remove-device", "arguments": {"device": "0.0.1000"}}]}}]}
            """
        // Counted before unrolling (iterations × body steps), and pointed at the loop.
        let error = refusal(text)
        #expect(
            error?.reason
                == "loop 'l' unrolls to 2000000 steps (1000000 iterations): the scenario would have more than 1000000 steps"
        )
        #expect(error?.line == 1)
        // Nested: the outer loop is refused before any inner one unrolls.
        let nested = """
            {"scenario": "x", "steps": [
             {"at": 0, "execute": "remove-device", "arguments": {"device": "0.0.1000"}},
             {"name": "outer", "at": 0, "loop": {"count": 1000, "period": 100000, "steps": [
              {"name": "inner", "at": 0, "loop": {"count": 1000, "period": 1, "steps": [
               {"at": 0, "execute": "remove-device", "arguments": {"device": "0.0.1000"}}]}}]}}]}
            """
        let outer = refusal(nested)
        #expect(outer?.line == 3)
        #expect(
            outer?.reason.hasPrefix("loop 'outer' unrolls to 1000000 steps") == true, "\(String(describing: outer))")
    }
}
