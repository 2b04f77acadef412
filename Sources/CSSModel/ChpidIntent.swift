// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// The state an operator means a channel path to be in (issue 22, "Intended state and
/// drift"): what Linux itself never remembers. Vary state resets to online at every boot
/// (`chp_new()` sets it), configure state outlives Linux at machine level, and neither
/// chchp nor zdev persists either. A field that is nil is not intended: it is never drift.
///
/// cssd keeps one per chpid with `--state-dir` on linux-sysfs: set by a vary or configure it
/// made (the field it wrote), or explicitly (`set-chpid-intent`) for a chpid set elsewhere.
package struct ChpidIntent: Hashable, Sendable {
    package var vary: VaryState?
    /// Configured, standby or reserved (a partition cannot configure a reserved path, but it
    /// can mean to leave it reserved); never not-recognized.
    package var configure: ConfigureState?

    package init(vary: VaryState? = nil, configure: ConfigureState? = nil) {
        self.vary = vary
        self.configure = configure
    }

    /// Nothing is intended (the record can go).
    package var isEmpty: Bool { vary == nil && configure == nil }

    /// Whether the intent keeps the path out of use on purpose (standby or reserved): then its
    /// vary state is no drift, since a path outside the PAM carries no I/O either way.
    package var keepsPathOut: Bool { configure == .standby || configure == .reserved }
}

/// How a channel path's actual state compares with its intent: `ChpidDrift.evaluate`.
package struct ChpidDrift: Hashable, Sendable {
    package let chpid: ChannelPathID
    package let intent: ChpidIntent
    /// The path's vary state as last read; nil when the host has no such chpid.
    package let vary: VaryState?
    /// The path's configure state as last read; nil when it is unknown (the kernel's read of
    /// `configure` failed, e.g. EOPNOTSUPP in a KVM guest) or the chpid is absent.
    package let configure: ConfigureState?
    /// The host has the chpid.
    package let present: Bool
    /// The vary state differs from the intended one (and the path is not deliberately kept
    /// in standby or reserved).
    package let varyDrifted: Bool
    /// The configure state is known and differs from the intended one.
    package let configureDrifted: Bool

    /// Any difference: absent, or a field drifted. An unknown configure state is not a
    /// difference (nothing says it differs) and is reported as unknown.
    package var drifted: Bool { !present || varyDrifted || configureDrifted }

    /// The comparison of `intent` with `path` (nil: the host has no such chpid). Pure.
    /// - Parameter configureKnown: false when the source could not read the configure state.
    package static func evaluate(
        _ chpid: ChannelPathID, intent: ChpidIntent, path: ChannelPath?, configureKnown: Bool
    ) -> ChpidDrift {
        guard let path else {
            return ChpidDrift(
                chpid: chpid, intent: intent, vary: nil, configure: nil, present: false, varyDrifted: false,
                configureDrifted: false)
        }
        let configure = configureKnown ? path.configure : nil
        let configureDrifted = intent.configure != nil && configure != nil && configure != intent.configure
        // Deliberately out (standby/reserved as intended, and so it is): its vary state is moot.
        let keptOut = intent.keepsPathOut && configure == intent.configure
        let varyDrifted = !keptOut && intent.vary != nil && path.vary != intent.vary
        return ChpidDrift(
            chpid: chpid, intent: intent, vary: path.vary, configure: configure, present: true,
            varyDrifted: varyDrifted, configureDrifted: configureDrifted)
    }

    /// The writes that bring the path to its intent, in order (configure before vary: a vary
    /// of a path in standby changes nothing the machine uses). Empty when nothing drifted or
    /// the chpid is absent. A configure intent of reserved cannot be written by a partition
    /// and is left out (`unreachable`).
    package var writes: [Write] {
        guard present else { return [] }
        var out: [Write] = []
        if configureDrifted, let state = intent.configure, state == .configured || state == .standby {
            out.append(.configure(state))
        }
        if varyDrifted, let state = intent.vary { out.append(.vary(state)) }
        return out
    }

    /// A drift no write of this partition can undo: an intended reserved state that is not
    /// the actual one.
    package var unreachable: Bool { configureDrifted && intent.configure == .reserved }

    package enum Write: Hashable, Sendable {
        case vary(VaryState)
        case configure(ConfigureState)
    }
}
