// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import PathChangePipeline

/// The intended chpid states this server keeps (linux-sysfs with `--state-dir`,
/// API/intent.md) and the drift it last reported. Confined to the server's event loop, like
/// `ServerState`; the durable record is `log`'s, written off the loop before the memory here
/// changes (`update`), so what a reply acknowledged is on disk.
package final class ChpidIntents {
    /// Where the intent is kept.
    package let log: any IntentLog
    /// Per chpid, what is intended (never an empty intent).
    package private(set) var intended: [ChannelPathID: ChpidIntent]
    /// The drift last reported per chpid, so that a drift is published once when it starts
    /// or changes, not at every reading.
    private var reported: [ChannelPathID: ChpidDrift] = [:]

    package init(log: any IntentLog, intended: [ChannelPathID: ChpidIntent]) {
        self.log = log
        self.intended = intended.filter { !$0.value.isEmpty }
    }

    /// Takes a recorded update into memory (after `log.recordIntent` returned).
    package func update(_ update: IntentUpdate) {
        update.applied(to: &intended)
    }

    /// One chpid's drift against the backend's last reading; nil without an intent.
    package func drift(of chpid: ChannelPathID, in backend: ChannelSubsystemBackend) -> ChpidDrift? {
        guard let intent = intended[chpid] else { return nil }
        return ChpidDrift.evaluate(
            chpid, intent: intent, path: backend.subsystem.channelPath(chpid),
            configureKnown: backend.details(of: chpid)?.configureKnown ?? true)
    }

    /// Every chpid with an intent, in chpid order. O(intents).
    package func drifts(in backend: ChannelSubsystemBackend) -> [ChpidDrift] {
        intended.keys.sorted().compactMap { drift(of: $0, in: backend) }
    }

    /// Publishes a `drift` event for each chpid that drifts now and did not, or drifts
    /// differently than last reported (cause observed: the host's state, not a command, is
    /// what differs). A chpid that is gone has no path to carry an event: the query and the
    /// metrics report it. O(intents).
    /// - Returns: the number of drift events published.
    @discardableResult
    package func publishDrift(_ server: ServerState) -> Int {
        let backend = server.backend
        var published = 0
        var now: [ChannelPathID: ChpidDrift] = [:]
        for drift in drifts(in: backend) where drift.drifted {
            now[drift.chpid] = drift
            guard reported[drift.chpid] != drift, let path = backend.subsystem.channelPath(drift.chpid) else {
                continue
            }
            let change = PathChange(before: path, after: path, affected: [], crws: [], crwsLost: 0)
            if server.pathChanges.publish(change, as: .drift, cause: .observed(backend: backend.name)) != nil {
                published += 1
            }
        }
        reported = now
        return published
    }
}
