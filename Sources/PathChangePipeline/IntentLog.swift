// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// One change of a chpid's intended state (`ChpidIntent`), as recorded.
package enum IntentUpdate: Hashable, Sendable {
    /// The given fields replace the intended ones; a nil field stays as it was.
    case set(ChannelPathID, vary: VaryState?, configure: ConfigureState?)
    /// The chpid's intent is forgotten.
    case clear(ChannelPathID)

    package var chpid: ChannelPathID {
        switch self {
        case .set(let chpid, _, _), .clear(let chpid): chpid
        }
    }

    /// `intents` with this update made.
    package func applied(to intents: inout [ChannelPathID: ChpidIntent]) {
        switch self {
        case .set(let chpid, let vary, let configure):
            var intent = intents[chpid] ?? ChpidIntent()
            if let vary { intent.vary = vary }
            if let configure { intent.configure = configure }
            intents[chpid] = intent
        case .clear(let chpid):
            intents[chpid] = nil
        }
    }
}

/// Where intended chpid states are kept (`--state-dir` on linux-sysfs: the state store's
/// `host_intent` table). Both calls block (SQLite, an fsync): never on the event loop except
/// at start.
package protocol IntentLog: AnyObject, Sendable {
    /// Every recorded intent.
    /// - Throws: when the record cannot be read (a description names the problem).
    func loadIntents() throws -> [ChannelPathID: ChpidIntent]
    /// Makes `update` durable before returning (one transaction; `synchronous=FULL`).
    /// - Throws: when it cannot be written (a full disk, a closed store).
    func recordIntent(_ update: IntentUpdate) throws
}
