// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import Testing

@testable import ChannelMeasurement

/// The facility's state as `--state-dir` keeps it: saved and restored onto the same
/// topology's facility, it gives the same counts at every later model time (a restart loses
/// nothing and no counter goes backwards); what is not of this topology is refused.
@Suite struct ModelStateTests {
    static func id(_ chpid: UInt8) -> ChannelPathID { ChannelPathID(cssid: 0, chpid: chpid) }

    /// A facility enabled, with a load in force on 0.40 and one pending on 0.41 (set between
    /// two update boundaries), and 0.42 idle; 0.43 has no CMG.
    static func loaded() throws -> MeasurementModel {
        var model = ModelTests.model([0x40: .cmg2, 0x41: .cmg3, 0x42: .cmg5, 0x43: nil])
        try model.setEnabled(true)
        try model.setLoad(id(0x40), ["util_part": 50, "read_total": 4e9], at: .seconds(10))
        try model.setLoad(id(0x40), ["util_part": 30], at: .milliseconds(30_500))
        try model.setLoad(id(0x41), ["write_part": 1000], at: .milliseconds(41_100))
        return model
    }

    @Test func aRestoredFacilityCountsOnExactlyAsTheSavedOne() throws {
        let saved = try Self.loaded()
        let bytes = saved.savedState(at: .milliseconds(41_200))
        var restored = ModelTests.model([0x40: .cmg2, 0x41: .cmg3, 0x42: .cmg5, 0x43: nil])
        #expect(!restored.enabled)
        let time = try restored.restoreState(bytes)
        #expect(time == .milliseconds(41_200))
        #expect(restored == saved)
        #expect(restored.enabled)
        for chpid: UInt8 in [0x40, 0x41, 0x42, 0x43] {
            for seconds in [42, 44, 100, 10_000] {
                #expect(
                    restored.exactCounts(Self.id(chpid), at: .seconds(seconds))
                        == saved.exactCounts(Self.id(chpid), at: .seconds(seconds)), "\(chpid) at \(seconds) s")
                #expect(
                    restored.reading(Self.id(chpid), at: .seconds(seconds))
                        == saved.reading(Self.id(chpid), at: .seconds(seconds)))
            }
        }
        // The pending load took effect at its boundary after the restore too.
        #expect(restored.channels[Self.id(0x41)]?.load(at: .seconds(42)).metrics == ["write_part": 1000])
        // Saved again, the same bytes (a deterministic layout: keys and chpids in order).
        #expect(restored.savedState(at: .milliseconds(41_200)) == bytes)
    }

    @Test func aStateOfAnotherTopologyOrCorruptIsRefusedAndLeavesTheFacilityAsItWas() throws {
        let bytes = try Self.loaded().savedState(at: .seconds(50))
        let fresh = ModelTests.model([0x40: .cmg2, 0x41: .cmg3, 0x42: .cmg5, 0x43: nil])
        var other = ModelTests.model([0x40: .cmg2, 0x41: .cmg2, 0x42: .cmg5, 0x43: nil])
        #expect(throws: StateCodingError("channel path 0.41 had CMG 3, this topology gives it 2")) {
            try other.restoreState(bytes)
        }
        var fewer = ModelTests.model([0x40: .cmg2, 0x41: .cmg3])
        #expect(throws: StateCodingError("it measures channel path 0.42, which this topology lacks")) {
            try fewer.restoreState(bytes)
        }
        var model = fresh
        for cut in [0, 1, 17, bytes.count / 2, bytes.count - 1] {
            #expect(throws: StateCodingError.self) { try model.restoreState(Array(bytes.prefix(cut))) }
        }
        #expect(throws: StateCodingError.self) { try model.restoreState(bytes + [0]) }
        var version = bytes
        version[0] = 9
        #expect(throws: StateCodingError("channel-measurement state version 9, not 1")) {
            try model.restoreState(version)
        }
        #expect(model == fresh)
    }
}
