// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import Testing

/// How a chpid's actual state compares with its intent (API/intent.md): what is drift, what
/// is not, and which writes undo it.
@Suite("Intended chpid state and drift")
struct ChpidIntentTests {
    let id = ChannelPathID(cssid: 0, chpid: 0x40)

    func path(_ vary: VaryState, _ configure: ConfigureState) -> ChannelPath {
        ChannelPath(id: id, type: 0x1a, vary: vary, configure: configure)
    }

    @Test("a vary state that differs is drift; the write is the intended vary")
    func varyDrift() {
        let drift = ChpidDrift.evaluate(
            id, intent: ChpidIntent(vary: .offline), path: path(.online, .configured), configureKnown: true)
        #expect(drift.drifted && drift.varyDrifted && !drift.configureDrifted)
        #expect(drift.writes == [.vary(.offline)])
    }

    @Test("a chpid kept in standby or reserved as intended is no drift, whatever its vary state")
    func keptOut() {
        for state in [ConfigureState.standby, .reserved] {
            let drift = ChpidDrift.evaluate(
                id, intent: ChpidIntent(vary: .offline, configure: state), path: path(.online, state),
                configureKnown: true)
            #expect(!drift.drifted, "\(state)")
            #expect(drift.writes.isEmpty)
        }
        // Intended standby but configured: configure first, and that is the only write due.
        let drift = ChpidDrift.evaluate(
            id, intent: ChpidIntent(vary: .offline, configure: .standby), path: path(.online, .configured),
            configureKnown: true)
        #expect(drift.writes.first == .configure(.standby))
    }

    @Test("an unknown configure state (EOPNOTSUPP) is not drift and is not written")
    func unknownConfigure() {
        let drift = ChpidDrift.evaluate(
            id, intent: ChpidIntent(configure: .standby), path: path(.online, .configured), configureKnown: false)
        #expect(!drift.drifted && drift.configure == nil && drift.writes.isEmpty)
    }

    @Test("a chpid that is gone is drift with nothing to write; reserved cannot be written")
    func absentAndReserved() {
        let gone = ChpidDrift.evaluate(id, intent: ChpidIntent(vary: .online), path: nil, configureKnown: true)
        #expect(gone.drifted && !gone.present && gone.writes.isEmpty)
        let reserved = ChpidDrift.evaluate(
            id, intent: ChpidIntent(configure: .reserved), path: path(.online, .configured), configureKnown: true)
        #expect(reserved.drifted && reserved.unreachable && reserved.writes.isEmpty)
    }
}
