// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import JSONValues
import PathChangePipeline
import QMPWire
import Synchronization

/// The intended-state commands of API/intent.json (issue 22), over `ServerState.intents`
/// (linux-sysfs with `--state-dir`; nil elsewhere, where they say why not). One static method
/// per command, as the generated `IntentCommandsSchema` requires.
enum IntentCommands {
    static func queryChpidDrift(_ arguments: QueryChpidDriftArguments, _ context: CommandContext) throws(QMPError)
        -> CommandOutcome
    {
        let server = context.server
        guard let intents = server.intents else {
            return .reply(
                ChpidDriftReportReply(tracking: false, reason: notTracked(server), drifted: 0, chpids: []).json)
        }
        var drifts = intents.drifts(in: server.backend)
        if let selected = arguments.chpids.map(Set.init) { drifts = drifts.filter { selected.contains($0.chpid) } }
        return .reply(
            ChpidDriftReportReply(
                tracking: true, reason: nil, drifted: drifts.filter(\.drifted).count, chpids: drifts.map(driftInfo)
            ).json)
    }

    static func setChpidIntent(_ arguments: SetChpidIntentArguments, _ context: CommandContext) throws(QMPError)
        -> CommandOutcome
    {
        let server = context.server
        let intents = try tracking(server)
        let chpid = arguments.chpid
        guard server.subsystem.channelPath(chpid) != nil else {
            throw QMPError(.deviceNotFound, "channel path \(chpid) does not exist")
        }
        guard arguments.vary != nil || arguments.configure != nil else {
            throw .generic("set-chpid-intent needs 'vary' or 'configure' (clear-chpid-intent forgets an intent)")
        }
        if arguments.configure == .notRecognized {
            throw .generic("Parameter 'configure': not-recognized cannot be intended (configured, standby or reserved)")
        }
        let update = IntentUpdate.set(chpid, vary: arguments.vary, configure: arguments.configure)
        return record(update, intents, server) {
            driftInfo(intents.drift(of: chpid, in: server.backend)!).json
        }
    }

    static func clearChpidIntent(_ arguments: ClearChpidIntentArguments, _ context: CommandContext) throws(QMPError)
        -> CommandOutcome
    {
        let server = context.server
        let intents = try tracking(server)
        return record(.clear(arguments.chpid), intents, server) { .emptyObject() }
    }

    static func reapplyChpidIntent(_ arguments: ReapplyChpidIntentArguments, _ context: CommandContext)
        throws(QMPError) -> CommandOutcome
    {
        let server = context.server
        let intents = try tracking(server)
        let chpid = arguments.chpid
        guard server.subsystem.channelPath(chpid) != nil else {
            throw QMPError(.deviceNotFound, "channel path \(chpid) does not exist")
        }
        guard let drift = intents.drift(of: chpid, in: server.backend), let write = drift.writes.first else {
            // Nothing to write: no intent, no drift, or one no write can undo (reserved).
            let after = intents.drift(of: chpid, in: server.backend)
            return .reply(reapplied(chpid, write: nil, changed: 0, after: after))
        }
        // Through the commands themselves: their checks (the last-path interlock), the intent
        // they record, their events; the audit line is this command's.
        let outcome: CommandOutcome
        switch write {
        case .vary(let state):
            outcome = try CSSCommands.varyPath(
                VaryPathArguments(chpid: chpid, state: state, subchannel: nil, force: arguments.force), context)
        case .configure(let state):
            outcome = try CSSCommands.configureChpid(
                ConfigureChpidArguments(chpid: chpid, state: state, force: arguments.force), context)
        }
        func reply(_ value: JSON) -> JSON {
            reapplied(
                chpid, write: write, changed: value["changed"]?.intValue ?? 0,
                after: intents.drift(of: chpid, in: server.backend))
        }
        switch outcome {
        case .reply(let value): return .reply(reply(value))
        case .deferred(let work):
            return .deferred(
                DeferredWork(
                    blocking: work.blocking, waitsOn: work.waitsOn, holdsEventsFrom: work.holdsEventsFrom,
                    record: work.record
                ) {
                    (result) throws(QMPError) -> JSON in reply(try work.finish(result))
                })
        }
    }

    // MARK: - Helpers

    /// The server's intents, or the GenericError that says why there are none.
    private static func tracking(_ server: ServerState) throws(QMPError) -> ChpidIntents {
        guard let intents = server.intents else { throw .generic(notTracked(server)) }
        return intents
    }

    private static func notTracked(_ server: ServerState) -> String {
        if server.backend.kind == .model {
            return "the model backend keeps no intended state: cssd owns its state, nothing else changes it, "
                + "and --state-dir restores it as it was, so it cannot drift"
        }
        return "intended state is kept only with --state-dir (it must outlive a restart to be worth keeping)"
    }

    /// Records `update` durably off the event loop (the state dir's commit thread), then takes
    /// it into memory, publishes any drift it makes, and replies with `reply()`.
    private static func record(
        _ update: IntentUpdate, _ intents: ChpidIntents, _ server: ServerState, reply: @escaping () -> JSON
    ) -> CommandOutcome {
        let log = intents.log
        return .deferred(
            DeferredWork(
                blocking: { () -> DeferredWork.Outcome in
                    do {
                        try log.recordIntent(update)
                        return .success(nil)
                    } catch {
                        return .failure(
                            .io(path: "state dir", operation: "recording intent in", errno: 0, message: "\(error)"))
                    }
                }, waitsOn: .durableRecord
            ) { (outcome) throws(QMPError) -> JSON in
                if case .failure(let error) = outcome {
                    throw .generic("the intent could not be recorded in the state dir (nothing changed): \(error)")
                }
                intents.update(update)
                intents.publishDrift(server)
                return reply()
            })
    }

    /// One `ChpidDriftInfo` (API/intent.json).
    static func driftInfo(_ drift: ChpidDrift) -> ChpidDriftInfoReply {
        ChpidDriftInfoReply(
            chpid: drift.chpid.description, intendedVary: drift.intent.vary,
            intendedConfigure: drift.intent.configure, present: drift.present, vary: drift.vary,
            configure: drift.configure, varyDrifted: drift.varyDrifted, configureDrifted: drift.configureDrifted,
            drifted: drift.drifted, unreachable: drift.unreachable ? true : nil)
    }

    private static func reapplied(_ chpid: ChannelPathID, write: ChpidDrift.Write?, changed: Int, after: ChpidDrift?)
        -> JSON
    {
        var vary: VaryState?
        var configure: ConfigureState?
        switch write {
        case .vary(let state): vary = state
        case .configure(let state): configure = state
        case nil: break
        }
        // Without an intent there is nothing to compare: reported as not drifted.
        return ReapplyIntentResultReply(
            chpid: chpid.description, vary: vary, configure: configure, changed: changed,
            drift: after.map(driftInfo) ?? noIntent(chpid)
        ).json
    }

    private static func noIntent(_ chpid: ChannelPathID) -> ChpidDriftInfoReply {
        ChpidDriftInfoReply(
            chpid: chpid.description, intendedVary: nil, intendedConfigure: nil, present: true, vary: nil,
            configure: nil, varyDrifted: false, configureDrifted: false, drifted: false, unreachable: nil)
    }
}
