// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel

extension ServerState {
    /// Takes a reading of an observed backend (linux-sysfs) as the view and publishes what it
    /// changed as observed path events (`PathEventChange.observed`), in the reading's chpid
    /// order: every change but the written chpid's (`update.write`), which the write's command
    /// publishes with its reply. The one place a reading becomes events: the follower's
    /// readings (delivered to the loop) and a write's (returned by its blocking part) both come
    /// here. A reading that found entries come or go hands the new directories to
    /// `onBackendLayoutChange`. Nothing here reads the machine.
    /// - Returns: the number of changes published (0 for a backend that is not observed).
    @discardableResult
    package func applyObserved(_ update: ObservedUpdate) -> Int {
        guard let backend = backend as? ObservedBackend else { return 0 }
        let (before, changes) = backend.apply(update)
        if update.layoutChanged { onBackendLayoutChange?(backend.watchedDirectories) }
        for change in changes {
            guard let kind = PathEventChange.observed(change, before: before) else { continue }
            pathChanges.publish(change, as: kind, cause: .observed(backend: backend.name))
        }
        // The DASD driver's own changes: the path and the device's masks stay as they are.
        let driverChanges =
            update.dasdDisabled.map { ($0.chpid, $0.subchannel, PathEventChange($0.reason)) }
            + update.dasdEnabled.map { ($0.chpid, $0.subchannel, PathEventChange.driverEnabled) }
        for (chpid, subchannel, kind) in driverChanges {
            guard let change = backend.subsystem.driverPathChange(chpid: chpid, subchannel: subchannel) else {
                continue
            }
            pathChanges.publish(change, as: kind, cause: .observed(backend: backend.name))
        }
        // Subchannels an operator purged (cio_ignore): one report per chpid they used, naming
        // them with their last masks; the path itself did not change.
        var purgedBySlot: [ChannelPathID: [AffectedSubchannel]] = [:]
        for sch in update.purged {
            for (slot, chpid) in sch.channelPaths.enumerated() {
                guard let chpid else { continue }
                purgedBySlot[chpid, default: []].append(AffectedSubchannel(current: sch, slot: slot))
            }
        }
        for chpid in purgedBySlot.keys.sorted() {
            guard let path = backend.subsystem.channelPath(chpid) else { continue }
            pathChanges.publish(
                PathChange(before: path, after: path, affected: purgedBySlot[chpid]!, crws: [], crwsLost: 0),
                as: .subchannelsPurged, cause: .observed(backend: backend.name))
        }
        // After the changes themselves: a drift event follows the change that made it.
        intents?.publishDrift(self)
        return changes.count + update.dasdDisabled.count + update.dasdEnabled.count + purgedBySlot.count
    }
}
