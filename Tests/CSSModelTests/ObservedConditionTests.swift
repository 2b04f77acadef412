// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Testing

@testable import CSSModel

/// A path's condition derived from its subchannels' masks (`Subsystem.observedCondition(of:)`),
/// for a backend that cannot read it (linux-sysfs): each rule, and the path state that keeps it.
@Suite struct ObservedConditionTests {
    static let first = ChannelPathID(cssid: 0, chpid: 0)

    /// 6 subchannels on chpids 0.00 and 0.01 (slots 0 and 1), all paths available.
    static func model() throws -> Subsystem {
        try Subsystem(topology: .synthetic(subchannels: 6, chpids: 2, paths: 2))
    }

    static func setPAM(_ model: inout Subsystem, _ index: Int, _ pam: UInt8, pom: UInt8 = 0xff) throws {
        let sch = model.subchannels[index]
        try model.setObservedMasks(sch.id, pam: pam, pom: pom, lpm: sch.schib.pmcw.lpm)
    }

    @Test func permanentErrorOnlyWhenNoMemberHasThePathInItsPAM() throws {
        var model = try Self.model()
        #expect(model.observedCondition(of: Self.first) == .operational)
        for index in 0..<5 {
            try Self.setPAM(&model, index, 0x40)  // slot 0 (0.00) gone from this one's PAM
            #expect(model.observedCondition(of: Self.first) == .operational, "member \(index)")
        }
        try Self.setPAM(&model, 5, 0x40)
        #expect(model.observedCondition(of: Self.first) == .permanentError)
        #expect(model.observedCondition(of: ChannelPathID(cssid: 0, chpid: 1)) == .operational)
        #expect(model.setObservedConditions(of: [Self.first, ChannelPathID(cssid: 0, chpid: 1)]) == [Self.first])
        #expect(model.channelPath(Self.first)?.condition == .permanentError)
        #expect(model.setObservedConditions(of: [Self.first]).isEmpty)  // unchanged: nothing to report
        try Self.setPAM(&model, 2, 0xc0)
        #expect(model.setObservedConditions(of: [Self.first]) == [Self.first])
        #expect(model.channelPath(Self.first)?.condition == .operational)
    }

    @Test func temporaryErrorWhenThoseWithItInPAMLackItInPOM() throws {
        var model = try Self.model()
        for index in 0..<6 { try Self.setPAM(&model, index, index < 3 ? 0x40 : 0xc0, pom: 0x7f) }
        #expect(model.observedCondition(of: Self.first) == .temporaryError)
        try Self.setPAM(&model, 4, 0xc0, pom: 0xff)
        #expect(model.observedCondition(of: Self.first) == .operational)
    }

    @Test func aPathNotConfiguredIsOperationalAndKeepsNoCondition() throws {
        var model = try Self.model()
        for index in 0..<6 { try Self.setPAM(&model, index, 0x40) }
        model.setObservedConditions(of: [Self.first])
        var path = try #require(model.channelPath(Self.first))
        #expect(path.condition == .permanentError)
        // A vary keeps the condition (the masks say it, not the vary).
        path.vary = .offline
        path.condition = .operational
        try model.setObservedPath(path)
        #expect(model.channelPath(Self.first)?.condition == .permanentError)
        // Standby: configuration keeps it out of every PAM; no fault.
        path.configure = .standby
        try model.setObservedPath(path)
        #expect(model.channelPath(Self.first)?.condition == .operational)
        #expect(model.observedCondition(of: Self.first) == .operational)
        // Configured again, members not read yet: the condition stays until they are.
        path.configure = .configured
        try model.setObservedPath(path)
        #expect(model.channelPath(Self.first)?.condition == .operational)
    }
}
