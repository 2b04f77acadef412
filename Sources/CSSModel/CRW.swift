// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// The reporting-source code of a CRW: which kind of facility the report is about.
package struct ReportingSource: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    package let rawValue: UInt8
    package init(rawValue: UInt8) { self.rawValue = rawValue & 0x0f }

    package static let subchannel = ReportingSource(rawValue: 0x3)
    package static let channelPath = ReportingSource(rawValue: 0x4)
    package static let configAlert = ReportingSource(rawValue: 0x9)
    package static let channelSubsystem = ReportingSource(rawValue: 0xb)

    package var description: String { "0x" + Hex.string(rawValue) }
}

/// The error-recovery code of a CRW: what happened to the reporting source.
package struct ErrorRecoveryCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    package let rawValue: UInt8
    package init(rawValue: UInt8) { self.rawValue = rawValue & 0x3f }

    package static let event = ErrorRecoveryCode(rawValue: 0)
    package static let available = ErrorRecoveryCode(rawValue: 1)
    /// "Path has come" for a channel path; also what RCHP reports.
    package static let initialized = ErrorRecoveryCode(rawValue: 2)
    package static let temporaryError = ErrorRecoveryCode(rawValue: 3)
    package static let installedParameters = ErrorRecoveryCode(rawValue: 4)
    package static let terminal = ErrorRecoveryCode(rawValue: 5)
    /// "Path has gone" for a channel path.
    package static let permanentErrorNotInitialized = ErrorRecoveryCode(rawValue: 6)
    package static let permanentErrorInitialized = ErrorRecoveryCode(rawValue: 7)
    package static let parametersModified = ErrorRecoveryCode(rawValue: 8)
    package static let installedParametersRestored = ErrorRecoveryCode(rawValue: 0xa)

    package var description: String { "0x" + Hex.string(rawValue) }
}

/// A channel-report word: 32 bits the machine queues to tell the program that something in
/// the channel subsystem changed, fetched one at a time with STCRW.
///
/// Layout: S 0x40000000 (solicited), R 0x20000000 (overflow), C 0x10000000 (chained),
/// RSC 0x0f000000, A 0x00800000 (ancillary), ERC 0x003f0000, RSID 0x0000ffff.
package struct CRW: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    package var rawValue: UInt32
    package init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The all-zero word STCRW stores when nothing is pending.
    package static let zero = CRW(rawValue: 0)

    static let solicitedBit: UInt32 = 0x4000_0000
    static let overflowBit: UInt32 = 0x2000_0000
    static let chainedBit: UInt32 = 0x1000_0000
    static let ancillaryBit: UInt32 = 0x0080_0000

    package init(
        solicited: Bool = false, overflow: Bool = false, chained: Bool = false,
        source: ReportingSource, ancillary: Bool = false, erc: ErrorRecoveryCode, rsid: UInt16
    ) {
        var raw = UInt32(source.rawValue) << 24 | UInt32(erc.rawValue) << 16 | UInt32(rsid)
        if solicited { raw |= CRW.solicitedBit }
        if overflow { raw |= CRW.overflowBit }
        if chained { raw |= CRW.chainedBit }
        if ancillary { raw |= CRW.ancillaryBit }
        rawValue = raw
    }

    /// S: the report answers an instruction of the program (e.g. RCHP), rather than an event.
    package var solicited: Bool { rawValue & CRW.solicitedBit != 0 }
    /// R: one or more reports were lost before this one.
    package var overflow: Bool {
        get { rawValue & CRW.overflowBit != 0 }
        set { rawValue = newValue ? rawValue | CRW.overflowBit : rawValue & ~CRW.overflowBit }
    }
    /// C: another CRW of the same report follows.
    package var chained: Bool { rawValue & CRW.chainedBit != 0 }
    package var source: ReportingSource { ReportingSource(rawValue: UInt8(truncatingIfNeeded: rawValue >> 24)) }
    package var ancillary: Bool { rawValue & CRW.ancillaryBit != 0 }
    package var erc: ErrorRecoveryCode { ErrorRecoveryCode(rawValue: UInt8(truncatingIfNeeded: rawValue >> 16)) }
    /// The reporting-source id: a chpid, a schno, or (in a chained second word) cssid << 8.
    package var rsid: UInt16 { UInt16(truncatingIfNeeded: rawValue) }

    /// `0x44020000`.
    package var description: String { "0x" + Hex.string(rawValue, width: 8) }

    /// The words a channel-path report takes: one CRW with rsid = chpid, or, when multiple
    /// channel subsystems are enabled (MCSSE), that CRW chained to a second one whose rsid
    /// carries the cssid (`0x54020000`, `0x4402fe00` for RCHP of fe.00). This is what QEMU's
    /// css_do_rchp queues.
    package static func channelPathReport(
        _ chpid: ChannelPathID, erc: ErrorRecoveryCode, solicited: Bool, multipleCSS: Bool
    ) -> [CRW] {
        let first = CRW(
            solicited: solicited, chained: multipleCSS, source: .channelPath, erc: erc, rsid: UInt16(chpid.chpid))
        guard multipleCSS else { return [first] }
        let second = CRW(solicited: solicited, source: .channelPath, erc: erc, rsid: UInt16(chpid.cssid) << 8)
        return [first, second]
    }
}
