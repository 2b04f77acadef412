// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import Testing

@testable import Scenario

/// Issue 26: the steps that add and remove devices and quiesce a control unit's paths, played
/// on the model (they stopped the run as "not in the model yet" before).
@Suite struct ScenarioDeviceStepTests {
    typealias R = ScenarioRunTests

    @Test func addAndRemoveDeviceStepsChangeTheModel() throws {
        let text = """
            {"scenario": "devices", "steps": [
              {"name": "add", "at": 0, "execute": "add-device", "arguments": {"device": "0.0.2000", "subchannel": "0.0.0010",
               "chpids": ["0.42", "0.43"], "dev-type": "3390/0c", "cu-type": "3990/e9"}},
              {"name": "fault", "at": 1, "execute": "inject-device-path-fault", "arguments": {"device": "0.0.2000", "chpid": "0.43", "fault": "permanent-error"}},
              {"name": "remove", "at": 2, "execute": "remove-device", "arguments": {"device": "0.0.1001"}}
            ]}
            """
        var model = R.model()
        var run = ScenarioRun(try Scenario.parse(text))
        let added = run.playNext(on: &model)
        #expect(added.map(\.chpid) == [R.chp("0.42"), R.chp("0.43")])
        #expect(added.first?.crws.map(\.rawValue) == [0x0302_0010])
        let sch = try #require(model.subchannel(device: try DeviceID(parsing: "0.0.2000")))
        #expect(sch.id == R.sch("0.0.0010") && sch.devType == 0x3390 && sch.cuType == 0x3990)
        #expect(sch.schib.pmcw.pim == 0xc0)
        // The fault reaches the device the scenario added.
        #expect(run.playNext(on: &model).first?.affected.map(\.id) == [R.sch("0.0.0010")])
        let removed = run.playNext(on: &model)
        #expect(removed.map(\.chpid) == ["0.41", "0.42", "0.40"].map(R.chp))
        #expect(model.storeSubchannel(R.sch("0.0.0001")).cc == 3)
        #expect(run.state == .finished && run.failure == nil)
    }

    @Test func aControlUnitQuiescesAndResumesItsPathsLeavingEachDeviceOne() throws {
        // 0.0.0000 [40 41], 0.0.0001 [41 42 40], 0.0.0002 [42 43]: the port is 0.40 and 0.41.
        let text = """
            {"scenario": "service", "groups": {"port": ["0.40", "0.41"]}, "steps": [
              {"name": "quiesce", "at": 0, "execute": "quiesce-control-unit", "arguments": {"group": "port"}},
              {"name": "resume", "at": 1, "execute": "resume-control-unit", "arguments": {"group": "port"}}
            ]}
            """
        var model = R.model()
        var run = ScenarioRun(try Scenario.parse(text))
        let quiesced = run.playNext(on: &model)
        // 0.40 of both devices; 0.41 only of 0.0.0001: for 0.0.0000 it is the last path in use.
        #expect(
            quiesced.map { "\($0.chpid) \($0.affected[0].id)" } == ["0.40 0.0.0000", "0.40 0.0.0001", "0.41 0.0.0001"])
        #expect(quiesced.allSatisfy { $0.crws.isEmpty && !$0.pathChanged })
        let health = try #require(model.dasdPathHealth(of: model.subchannel(R.sch("0.0.0001"))!))
        #expect(health.masks?.cuirpm == 0xa0)
        #expect(model.dasdDriverState(of: R.sch("0.0.0000")).cuirpm == 0x80)
        // cio's masks did not move.
        #expect(model.subchannel(R.sch("0.0.0000"))?.schib.pmcw.pam == 0xc0)
        let resumed = run.playNext(on: &model)
        #expect(
            resumed.map { "\($0.chpid) \($0.affected[0].id)" } == ["0.40 0.0.0000", "0.40 0.0.0001", "0.41 0.0.0001"])
        for id in ["0.0.0000", "0.0.0001"] { #expect(model.dasdDriverState(of: R.sch(id)) == DASDDriverState()) }
        #expect(run.state == .finished)
    }

    @Test func aControlUnitStepNamesItsDevices() throws {
        let text = """
            {"scenario": "one", "steps": [
              {"name": "quiesce", "at": 0, "execute": "quiesce-control-unit", "arguments": {"chpid": "0.42", "devices": ["0.0.1002"]}},
              {"name": "bad", "at": 1, "execute": "quiesce-control-unit", "arguments": {"chpid": "0.43", "devices": ["0.0.1000"]}}
            ]}
            """
        var model = R.model()
        var run = ScenarioRun(try Scenario.parse(text))
        #expect(run.playNext(on: &model).map { $0.affected[0].id } == [R.sch("0.0.0002")])
        #expect(model.dasdDriverState(of: R.sch("0.0.0001")).cuirpm == 0)
        #expect(run.playNext(on: &model).isEmpty)
        #expect(run.state == .stopped)
        #expect(run.failure?.reason == ModelError.pathNotInstalled(R.chp("0.43"), R.sch("0.0.0000")).description)
    }
}
