// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Testing

@testable import CSSModel

/// One expected affected subchannel: id, slot, lpm, pam, pom, pnom, PNO.
typealias Masks = (String, Int, UInt8, UInt8, UInt8, UInt8, Bool)

/// One line per affected subchannel, so a mismatch shows which mask of which subchannel differs.
func line(_ id: String, _ slot: Int, _ masks: [UInt8], _ pno: Bool) -> String {
    let names = ["lpm", "pam", "pom", "pnom"]
    let fields = zip(names, masks).map { "\($0) \(Hex.string($1, width: 2))" }.joined(separator: " ")
    return "\(id) slot \(slot) \(fields)\(pno ? " PNO" : "")"
}

func summarize(_ change: PathChange) -> [String] {
    change.affected.map { line("\($0.id)", $0.slot, [$0.lpm, $0.pam, $0.pom, $0.pnom], $0.pathNotOperational) }
}

func render(_ rows: [Masks]) -> [String] {
    rows.map { line($0.0, $0.1, [$0.2, $0.3, $0.4, $0.5], $0.6) }
}

@Suite struct PathOperationTests {
    @Test func initialMasksFollowPathStates() {
        let model = Fixtures.small()
        let masks = model.subchannels.map { sch in
            let pmcw = sch.schib.pmcw
            let masks = [pmcw.pim, pmcw.pam, pmcw.pom, pmcw.lpm].map { Hex.string($0, width: 2) }
            return "\(sch.id) " + masks.joined(separator: " ")
        }
        #expect(
            masks == [
                "0.0.0000 c0 c0 ff c0", "0.0.0001 e0 e0 ff e0", "0.0.0002 80 80 ff 80",
                "0.0.0003 e0 a0 ff c0",  // 0.60 standby: not in pam; 0.43 offline: not in lpm
                "0.1.0000 80 80 ff 80",
            ])
        #expect(model.channelPath(Fixtures.chp("0.40"))?.subchannelCount == 3)
        #expect(
            model.subchannels(using: Fixtures.chp("0.41")).map(\.id.description) == [
                "0.0.0000", "0.0.0001", "0.1.0000",
            ])
        #expect(model.subchannels(using: Fixtures.chp("0.41")).slot(at: 1) == 0)
        #expect(model.subchannel(device: try! DeviceID(parsing: "0.1.1000"))?.id.description == "0.1.0000")
    }

    // MARK: RCHP

    @Test(arguments: [
        (false, "0.40", 0, [0x4402_0040] as [UInt32]),
        (true, "0.40", 0, [0x5402_0040, 0x4402_0000]),
        (true, "1.40", 3, []),  // css 1 has no such chpid
        (false, "0.99", 3, []),  // unknown chpid
        (false, "0.60", 3, []),  // standby: not operational for this partition
    ])
    func resetChannelPath(mcss: Bool, chpid: String, cc: Int, words: [UInt32]) {
        var model = Fixtures.small(multipleCSS: mcss)
        let before = model.subchannels
        let result = model.resetChannelPath(Fixtures.chp(chpid))
        #expect(result.cc == cc)
        #expect(result.crws.map(\.rawValue) == words)
        #expect(Fixtures.drain(&model) == words)
        #expect(model.subchannels == before)
    }

    @Test func resetOnTheVirtualCSSIsChainedWithItsCSSID() throws {
        var model = try Subsystem(topology: .embeddedDefault)
        #expect(model.multipleCSSEnabled)
        #expect(model.resetChannelPath(Fixtures.chp("fe.00")).cc == 0)
        #expect(Fixtures.drain(&model) == [0x5402_0000, 0x4402_fe00])
    }

    // MARK: Vary

    @Test func varyOffClearsLPMOnEveryUserAndQueuesNothing() throws {
        var model = Fixtures.small()
        let off = try model.varyPath(Fixtures.chp("0.40"), to: .offline)
        #expect(off.before.vary == .online)
        #expect(off.after.vary == .offline)
        #expect(off.crws.isEmpty)
        #expect(
            summarize(off)
                == render([
                    ("0.0.0000", 0, 0x40, 0xc0, 0xff, 0, false), ("0.0.0001", 2, 0xc0, 0xe0, 0xff, 0, false),
                    ("0.0.0003", 0, 0x40, 0xa0, 0xff, 0, false),
                ]))
        #expect(try model.varyPath(Fixtures.chp("0.40"), to: .offline).affected.isEmpty)
        let on = try model.varyPath(Fixtures.chp("0.40"), to: .online)
        #expect(on.affected.map(\.lpm) == [0xc0, 0xe0, 0xc0])
        let on43 = try model.varyPath(Fixtures.chp("0.43"), to: .online)
        #expect(summarize(on43) == render([("0.0.0003", 2, 0xe0, 0xa0, 0xff, 0, false)]))
        #expect(Fixtures.drain(&model).isEmpty)
    }

    @Test func varyForOneSubchannel() throws {
        var model = Fixtures.small()
        let change = try model.varyPath(Fixtures.chp("0.41"), to: .offline, subchannel: Fixtures.sch("0.0.0001"))
        #expect(summarize(change) == render([("0.0.0001", 0, 0x60, 0xe0, 0xff, 0, false)]))
        #expect(change.after.vary == .online)
        #expect(model.subchannel(Fixtures.sch("0.0.0000"))?.schib.pmcw.lpm == 0xc0)
        #expect(throws: ModelError.pathNotInstalled(Fixtures.chp("0.42"), Fixtures.sch("0.0.0000"))) {
            try model.varyPath(Fixtures.chp("0.42"), to: .offline, subchannel: Fixtures.sch("0.0.0000"))
        }
        #expect(throws: ModelError.unknownSubchannel(Fixtures.sch("0.0.0009"))) {
            try model.varyPath(Fixtures.chp("0.42"), to: .offline, subchannel: Fixtures.sch("0.0.0009"))
        }
        #expect(throws: ModelError.unknownChannelPath(Fixtures.chp("0.99"))) {
            try model.varyPath(Fixtures.chp("0.99"), to: .offline)
        }
    }

    // MARK: Configure and faults

    /// Each row: setup steps, the operation, expected CRW words, expected affected masks.
    struct Row: CustomTestStringConvertible, Sendable {
        var name: String
        var setup: [(String, String)] = []
        var chpid: String
        var operation: String
        var mcss = false
        var words: [UInt32]
        var affected: [String]
        var testDescription: String { name }
    }

    static let rows: [Row] = [
        Row(
            name: "standby: path gone ERC 6, PAM cleared", chpid: "0.41", operation: "standby", words: [0x0406_0041],
            affected: render([
                ("0.0.0000", 1, 0xc0, 0x80, 0xff, 0, false), ("0.0.0001", 0, 0xe0, 0x60, 0xff, 0, false),
                ("0.1.0000", 0, 0x80, 0x00, 0xff, 0, false),
            ])),
        Row(
            name: "standby under MCSSE: chained", chpid: "0.41", operation: "standby", mcss: true,
            words: [0x1406_0041, 0x0406_0000],
            affected: render([
                ("0.0.0000", 1, 0xc0, 0x80, 0xff, 0, false), ("0.0.0001", 0, 0xe0, 0x60, 0xff, 0, false),
                ("0.1.0000", 0, 0x80, 0x00, 0xff, 0, false),
            ])),
        Row(
            name: "configure: path come ERC 2, PAM set", chpid: "0.60", operation: "configured", words: [0x0402_0060],
            affected: render([("0.0.0003", 1, 0xc0, 0xe0, 0xff, 0, false)])),
        Row(
            name: "standby -> configured round trip", setup: [("0.41", "standby")], chpid: "0.41",
            operation: "configured", words: [0x0402_0041],
            affected: render([
                ("0.0.0000", 1, 0xc0, 0xc0, 0xff, 0, false), ("0.0.0001", 0, 0xe0, 0xe0, 0xff, 0, false),
                ("0.1.0000", 0, 0x80, 0x80, 0xff, 0, false),
            ])),
        Row(name: "configured again: nothing", chpid: "0.41", operation: "configured", words: [], affected: []),
        Row(name: "standby again: nothing", chpid: "0.60", operation: "standby", words: [], affected: []),
        Row(
            name: "permanent error: ERC 6, PAM/POM cleared, PNOM and PNO set", chpid: "0.42",
            operation: "permanent-error", words: [0x0406_0042],
            affected: render([
                ("0.0.0001", 1, 0xe0, 0xa0, 0xbf, 0x40, true), ("0.0.0002", 0, 0x80, 0x00, 0x7f, 0x80, true),
            ])),
        Row(
            name: "recovery from permanent error: ERC 2", setup: [("0.42", "permanent-error")], chpid: "0.42",
            operation: "recovered", words: [0x0402_0042],
            affected: render([
                ("0.0.0001", 1, 0xe0, 0xe0, 0xff, 0, false), ("0.0.0002", 0, 0x80, 0x80, 0xff, 0, false),
            ])),
        Row(
            name: "temporary error: ERC 3, stays in PAM", chpid: "0.42", operation: "temporary-error",
            words: [0x0403_0042],
            affected: render([
                ("0.0.0001", 1, 0xe0, 0xe0, 0xbf, 0x40, true), ("0.0.0002", 0, 0x80, 0x80, 0x7f, 0x80, true),
            ])),
        Row(
            name: "recovery from temporary error: ERC 2", setup: [("0.42", "temporary-error")], chpid: "0.42",
            operation: "recovered", words: [0x0402_0042],
            affected: render([
                ("0.0.0001", 1, 0xe0, 0xe0, 0xff, 0, false), ("0.0.0002", 0, 0x80, 0x80, 0xff, 0, false),
            ])),
        Row(
            name: "temporary then permanent: path gone", setup: [("0.42", "temporary-error")], chpid: "0.42",
            operation: "permanent-error", words: [0x0406_0042],
            affected: render([
                ("0.0.0001", 1, 0xe0, 0xa0, 0xbf, 0x40, true), ("0.0.0002", 0, 0x80, 0x00, 0x7f, 0x80, true),
            ])),
        Row(
            name: "temporary on a failed path: nothing", setup: [("0.42", "permanent-error")], chpid: "0.42",
            operation: "temporary-error", words: [], affected: []),
        Row(
            name: "recovery of a working path: nothing", chpid: "0.42", operation: "recovered", words: [],
            affected: []),
        Row(
            name: "fault on a standby path: masks only, no CRW", chpid: "0.60", operation: "permanent-error", words: [],
            affected: render([("0.0.0003", 1, 0xc0, 0xa0, 0xbf, 0x40, true)])),
        Row(
            name: "standby of a failed path: already gone, no CRW", setup: [("0.42", "permanent-error")], chpid: "0.42",
            operation: "standby", words: [], affected: []),
        Row(
            name: "configure a failed path: still gone, no CRW",
            setup: [("0.42", "permanent-error"), ("0.42", "standby")], chpid: "0.42", operation: "configured",
            words: [], affected: []),
        Row(
            name: "standby of a path in temporary error: gone", setup: [("0.42", "temporary-error")], chpid: "0.42",
            operation: "standby", words: [0x0406_0042],
            affected: render([
                ("0.0.0001", 1, 0xe0, 0xa0, 0xbf, 0x40, true), ("0.0.0002", 0, 0x80, 0x00, 0x7f, 0x80, true),
            ])),
        Row(
            name: "permanent error under MCSSE: chained", chpid: "0.42", operation: "permanent-error", mcss: true,
            words: [0x1406_0042, 0x0406_0000],
            affected: render([
                ("0.0.0001", 1, 0xe0, 0xa0, 0xbf, 0x40, true), ("0.0.0002", 0, 0x80, 0x00, 0x7f, 0x80, true),
            ])),
    ]

    static func perform(_ model: inout Subsystem, _ chpid: String, _ operation: String) throws -> PathChange {
        if let state = ConfigureState(name: operation) {
            return try model.configurePath(Fixtures.chp(chpid), to: state)
        }
        return try model.injectPathFault(Fixtures.chp(chpid), PathFault(rawValue: operation)!)
    }

    @Test(arguments: rows)
    func configureAndFaults(row: Row) throws {
        var model = Fixtures.small(multipleCSS: row.mcss)
        for (chpid, operation) in row.setup { _ = try Self.perform(&model, chpid, operation) }
        _ = Fixtures.drain(&model)
        let change = try Self.perform(&model, row.chpid, row.operation)
        #expect(change.crws.map(\.rawValue) == row.words)
        #expect(summarize(change) == row.affected)
        #expect(Fixtures.drain(&model) == row.words)
        for word in row.words { #expect(!CRW(rawValue: word).solicited) }
        // The model agrees with what the change reported.
        for entry in change.affected {
            let pmcw = model.subchannel(entry.id)!.schib.pmcw
            #expect((pmcw.lpm, pmcw.pam, pmcw.pom, pmcw.pnom) == (entry.lpm, entry.pam, entry.pom, entry.pnom))
            #expect(model.subchannel(entry.id)!.schib.scsw.pathNotOperational == entry.pathNotOperational)
        }
    }

    @Test func configureRefusals() {
        var model = Fixtures.small()
        #expect(throws: ModelError.invalidConfigureTarget(.reserved)) {
            try model.configurePath(Fixtures.chp("0.40"), to: .reserved)
        }
        #expect(throws: ModelError.unknownChannelPath(Fixtures.chp("0.99"))) {
            try model.configurePath(Fixtures.chp("0.99"), to: .standby)
        }
        #expect(throws: ModelError.unknownChannelPath(Fixtures.chp("0.99"))) {
            try model.injectPathFault(Fixtures.chp("0.99"), .recovered)
        }
        var embedded = try! Subsystem(topology: .embeddedDefault)
        #expect(throws: ModelError.notConfigurable(Fixtures.chp("0.4e"), .reserved)) {
            try embedded.configurePath(Fixtures.chp("0.4e"), to: .configured)
        }
        #expect(
            ModelError.notConfigurable(Fixtures.chp("0.4e"), .reserved).description
                == "channel path 0.4e is reserved and cannot be configured by this partition")
        #expect(ModelError.unknownChannelPath(Fixtures.chp("0.99")).isNotFound)
    }

    @Test func setStatusKeepsPNO() throws {
        var model = Fixtures.small()
        try model.injectPathFault(Fixtures.chp("0.42"), .temporaryError)
        try model.setStatus(SCSW(ctrl: SCSW.Control.statusPending), of: Fixtures.sch("0.0.0002"))
        #expect(model.subchannel(Fixtures.sch("0.0.0002"))!.schib.scsw.pathNotOperational)
        #expect(model.subchannel(Fixtures.sch("0.0.0002"))!.schib.scsw.isStatusPending)
    }

    @Test func machineReportTable() {
        let id = Fixtures.chp("0.40")
        func path(_ c: ConfigureState, _ k: PathCondition) -> ChannelPath {
            ChannelPath(id: id, type: 0x1a, configure: c, condition: k)
        }
        #expect(
            Subsystem.machineReport(from: path(.configured, .operational), to: path(.standby, .operational))
                == .permanentErrorNotInitialized)
        #expect(
            Subsystem.machineReport(from: path(.standby, .operational), to: path(.configured, .operational))
                == .initialized)
        #expect(Subsystem.machineReport(from: path(.standby, .operational), to: path(.standby, .permanentError)) == nil)
        #expect(
            Subsystem.machineReport(from: path(.configured, .operational), to: path(.configured, .temporaryError))
                == .temporaryError)
        #expect(
            Subsystem.machineReport(from: path(.configured, .temporaryError), to: path(.configured, .operational))
                == .initialized)
    }
}
