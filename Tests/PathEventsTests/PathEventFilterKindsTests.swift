// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import Testing

@testable import PathEvents

/// Every change kind has a bit of its own in a filter's mask: a subscription without `changes`
/// admits every kind, one with `changes` only those. (The mask was 16 bits: the 17th and 18th
/// kinds, `subchannel-added` and `subchannel-removed`, had no bit and reached nobody.)
@Suite struct PathEventFilterKindsTests {
    @Test func everyKindHasItsOwnBit() {
        let chpid = ChannelPathID(cssid: 0, chpid: 0x40)
        let everything = PathEventFilter(granularity: .chpid)
        for kind in PathEventChange.allCases {
            #expect(everything.admits(chpid, kind), "\(kind)")
            let only = PathEventFilter(granularity: .chpid, changes: [kind])
            #expect(PathEventChange.allCases.filter { only.admits(chpid, $0) } == [kind])
        }
    }
}
