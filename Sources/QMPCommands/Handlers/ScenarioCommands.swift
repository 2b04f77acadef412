// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import QMPWire
import Scenario

/// The scenario player's commands of API/scenario.json (issue 26), over
/// `ServerState.scenarios`; each replies with the player's status (`ScenarioStatus`). One static
/// method per command, as the generated `ScenarioCommandsSchema` requires.
enum ScenarioCommands {
    static func scenarioLoad(_ arguments: ScenarioLoadArguments, _ context: CommandContext) throws(QMPError)
        -> CommandOutcome
    {
        let player = context.server.scenarios
        try player.load(arguments.scenario)
        return .reply(player.status.json)
    }

    static func scenarioPlay(_ arguments: ScenarioPlayArguments, _ context: CommandContext) throws(QMPError)
        -> CommandOutcome
    {
        let player = context.server.scenarios
        try player.play(clock: arguments.clock.flatMap { Scenario.Clock(rawValue: $0.rawValue) })
        return .reply(player.status.json)
    }

    static func scenarioPause(_ context: CommandContext) throws(QMPError) -> CommandOutcome {
        try context.server.scenarios.pause()
        return .reply(context.server.scenarios.status.json)
    }

    static func scenarioResume(_ context: CommandContext) throws(QMPError) -> CommandOutcome {
        try context.server.scenarios.resume()
        return .reply(context.server.scenarios.status.json)
    }

    static func scenarioStop(_ context: CommandContext) throws(QMPError) -> CommandOutcome {
        try context.server.scenarios.stop()
        return .reply(context.server.scenarios.status.json)
    }

    static func queryScenario(_ context: CommandContext) throws(QMPError) -> CommandOutcome {
        .reply(context.server.scenarios.status.json)
    }

    /// One device's path fault (the scenario action; recorded like any fault with a state dir).
    static func injectDevicePathFault(_ arguments: InjectDevicePathFaultArguments, _ context: CommandContext)
        throws(QMPError) -> CommandOutcome
    {
        guard let model = context.server.backend as? ModelBackend else {
            throw .generic("inject-device-path-fault needs the model backend")
        }
        let change = try ImpactCommands.modelCall { () throws(ModelError) in
            try model.subsystem.injectDevicePathFault(arguments.device, arguments.chpid, arguments.fault)
        }
        context.publish(change, as: PathEventChange(arguments.fault))
        return .reply(
            PathChangeResultReply(chpid: arguments.chpid.description, changed: change.affected.count, crws: 0).json)
    }
}
