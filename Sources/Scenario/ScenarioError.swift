// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// Why a scenario is refused, and where: `LINE:COLUMN: REASON`, the place being the value or
/// member at fault (the step, the chpid, the loop). The one error of the Scenario module: a
/// scenario is checked whole before anything is played, so every refusal (not JSON, not a
/// scenario, an unknown action, an unknown chpid or device, steps out of order, a loop without
/// an end) is one of these. The server answers it as a GenericError carrying `description`.
package struct ScenarioError: Error, Equatable, Sendable, CustomStringConvertible {
    package let position: ScenarioPosition
    /// What is wrong, naming the value and the rule.
    package let reason: String

    package init(_ position: ScenarioPosition, _ reason: String) {
        self.position = position
        self.reason = reason
    }

    package var line: Int { position.line }
    package var column: Int { position.column }

    package var description: String { "\(position): \(reason)" }
}
