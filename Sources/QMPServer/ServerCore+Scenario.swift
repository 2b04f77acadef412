// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import JSONValues
import Logging
import NIOCore
import PathChangePipeline
import QMPCommands

/// The scenario player's timers and commits (`ScenarioScheduling`): its steps run on the
/// server's loop, between the connections' work; the wait for the state dir's commit runs on
/// the durable-record thread, as a command's does, never on the loop.
extension ServerCore: ScenarioScheduling {
    func schedule(after milliseconds: Int, _ work: @escaping () -> Void) -> () -> Void {
        let task = loop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(milliseconds))) { work() }
        return { task.cancel() }
    }

    func whenDurable(_ token: UInt64, of log: DurableLog, _ done: @escaping (String?) -> Void) {
        let loop = self.loop
        let bound = NIOLoopBound(done, eventLoop: loop)
        threads.durableRecords.submit { _ in
            let failure: String?
            switch log.waitUntilDurable(token) {
            case .success: failure = nil
            case .failure(let error): failure = "\(error)"
            }
            loop.execute { bound.value(failure) }
        }
    }

    func announceEnd(_ status: JSON) {
        broadcast("SCENARIO_ENDED", data: status, afterPathEvents: true)
    }

    func logScenario(_ message: String, warning: Bool) {
        if warning { logger.warning("\(message)") } else { logger.info("\(message)") }
    }
}
