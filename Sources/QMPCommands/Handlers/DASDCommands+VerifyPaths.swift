// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import JSONValues
import QMPWire
import Synchronization

extension DASDCommands {
    /// `verify-paths`: IBM's vary off and on, per chpid in turn, through the backend's one
    /// write shape (`PendingWrite`, as vary-path): planned now, every vary offline checked by
    /// the last-path interlock first; the sysfs writes run in one blocking part, off then on
    /// for each chpid before the next, stopping at the first refusal; back on the event loop
    /// each reading is applied and each vary completed and published in order. The model has
    /// no blocking part: its varies are made there, in the same order.
    static func verifyPaths(_ arguments: VerifyPathsArguments, _ context: CommandContext) throws(QMPError)
        -> CommandOutcome
    {
        let server = context.server
        let backend = server.backend
        let chpids = arguments.chpids
        guard !chpids.isEmpty else { throw .generic("Parameter 'chpids' expects at least one chpid") }
        guard Set(chpids).count == chpids.count else { throw .generic("Parameter 'chpids' names a chpid twice") }
        for id in chpids {
            guard let path = backend.subsystem.channelPath(id) else {
                throw QMPError(.deviceNotFound, ModelError.unknownChannelPath(id).description)
            }
            guard path.vary == .online else {
                throw .generic("channel path \(id) is not varied online: nothing to verify (vary-path it online)")
            }
            // One chpid is off at a time: each is checked alone.
            try context.checkLastPaths(
                "verify-paths \(id) (vary offline)", PathRemoval(chpids: [id]), force: arguments.force == true)
        }
        var writes: [(off: PendingWrite, on: PendingWrite)] = []
        for id in chpids {
            let off = try CSSCommands.backendCall { () throws(BackendError) in try backend.planVary(id, to: .offline) }
            let on = try CSSCommands.backendCall { () throws(BackendError) in try backend.planVary(id, to: .online) }
            writes.append((off, on))
        }
        let performs = writes.map { ($0.off.perform, $0.on.perform) }
        let outcomes = VerificationOutcomes()
        let blocking: (@Sendable () -> DeferredWork.Outcome)?
        if performs.allSatisfy({ $0.0 == nil && $0.1 == nil }) {
            blocking = nil
        } else {
            blocking = {
                var results: [(PendingWrite.Outcome, PendingWrite.Outcome?)] = []
                for (off, on) in performs {
                    let offOutcome = off?() ?? .success(nil)
                    guard case .success = offOutcome else {
                        results.append((offOutcome, nil))
                        break
                    }
                    let onOutcome = on?() ?? .success(nil)
                    results.append((offOutcome, onOutcome))
                    guard case .success = onOutcome else { break }
                }
                outcomes.results.withLock { $0 = results }
                return .success(nil)
            }
        }
        // The interlock of other commands counts these chpids as gone until the varies are done.
        let going = chpids.map(PathGoing.init)
        for path in going { server.pathsGoing.append(WeakPathGoing(value: path)) }
        return .deferred(
            DeferredWork(blocking: blocking) { (_) throws(QMPError) in
                server.pathsGoing.removeAll { entry in entry.value == nil || going.contains { $0 === entry.value } }
                let results =
                    blocking == nil
                    ? writes.map { _ in (PendingWrite.Outcome.success(nil), PendingWrite.Outcome?.some(.success(nil))) }
                    : outcomes.results.withLock { $0 }
                var steps: [PathVerificationStepReply] = []
                var failure: String?
                for (index, (offOutcome, onOutcome)) in results.enumerated() {
                    let (off, on) = writes[index]
                    let id = off.chpid
                    if case .success(let reading?) = offOutcome { server.applyObserved(reading) }
                    do throws(BackendError) {
                        context.publish(try backend.completeWrite(off, offOutcome), as: .offline)
                    } catch {
                        failure = "varying \(id) offline failed: \(error)"
                        break
                    }
                    guard let onOutcome else { break }
                    if case .success(let reading?) = onOutcome { server.applyObserved(reading) }
                    do throws(BackendError) {
                        let change = try backend.completeWrite(on, onOutcome)
                        context.publish(change, as: .online)
                        steps.append(
                            PathVerificationStepReply(
                                chpid: id.description, variedOffline: true, variedOnline: true,
                                subchannels: change.affected.count))
                    } catch {
                        failure =
                            "\(id) was varied offline, but varying it online again failed: \(error); it is left offline"
                        break
                    }
                }
                if let failure {
                    let done = steps.map(\.chpid).joined(separator: ", ")
                    throw .generic("verify-paths: \(failure)" + (done.isEmpty ? "" : " (verified before it: \(done))"))
                }
                return .array(steps.map(\.json))
            })
    }
}

/// The blocking part's outcomes per chpid (vary offline, then online: nil when not tried),
/// carried to the event loop.
private final class VerificationOutcomes: Sendable {
    let results = Mutex<[(PendingWrite.Outcome, PendingWrite.Outcome?)]>([])
}
