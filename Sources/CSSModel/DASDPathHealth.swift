// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// The six path masks the DASD device driver keeps per device, as Linux prints them in the ccw
/// device's `path_masks` (drivers/s390/block/dasd_devmap.c `dasd_pm_show`,
/// `"%02x %02x %02x %02x %02x %02x\n"`): bit `0x80 >> i` is slot `i` of the subchannel's
/// `chpids` (Linux's slots, not packed to the installed paths).
package struct DASDPathMasks: Hashable, Sendable {
    /// Paths the driver uses (operational path mask).
    package var opm: UInt8
    /// Non-preferred paths (the storage server prefers others).
    package var nppm: UInt8
    /// Miscabled paths: they lead to another device (`dasd_eckd_read_conf`).
    package var cablepm: UInt8
    /// Paths quiesced by the storage server (Control Unit Initiated Reconfiguration).
    package var cuirpm: UInt8
    /// Paths without zHPF: their HPF characteristics differ from the device's.
    package var hpfpm: UInt8
    /// Paths the driver disabled after too many IFCC/CCC errors (`path_threshold` within
    /// `path_interval`, when `path_autodisable` is on).
    package var ifccpm: UInt8

    package init(opm: UInt8, nppm: UInt8, cablepm: UInt8, cuirpm: UInt8, hpfpm: UInt8, ifccpm: UInt8) {
        self.opm = opm
        self.nppm = nppm
        self.cablepm = cablepm
        self.cuirpm = cuirpm
        self.hpfpm = hpfpm
        self.ifccpm = ifccpm
    }

    /// Parses `path_masks` exactly as the kernel prints it: six two-digit hex bytes separated
    /// by one blank, an optional trailing newline. Anything else is nil (never a guess).
    package init?(parsing text: Substring) {
        var body = text
        if body.last == "\n" { body = body.dropLast() }
        let parts = body.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var values: [UInt8] = []
        for part in parts {
            guard part.count == 2, let value = Hex.number(part, maxDigits: 2) else { return nil }
            values.append(UInt8(value))
        }
        self.init(
            opm: values[0], nppm: values[1], cablepm: values[2], cuirpm: values[3], hpfpm: values[4],
            ifccpm: values[5])
    }

    /// `init(parsing:)` over raw bytes as read (no String: the sweep reads one per DASD).
    package init?(bytes: UnsafeRawBufferPointer) {
        var count = bytes.count
        if count == 18, bytes[17] == 0x0a { count = 17 }
        guard count == 17 else { return nil }
        var values = [UInt8](repeating: 0, count: 6)
        for field in 0..<6 {
            let at = field * 3
            if field > 0, bytes[at - 1] != 0x20 { return nil }
            guard let high = Hex.digit(bytes[at]), let low = Hex.digit(bytes[at + 1]) else { return nil }
            values[field] = UInt8(high << 4 | low)
        }
        self.init(
            opm: values[0], nppm: values[1], cablepm: values[2], cuirpm: values[3], hpfpm: values[4],
            ifccpm: values[5])
    }

    /// The paths the driver took out of use for a reason of its own (IFCC threshold,
    /// miscabling, CUIR quiesce): the ones `path_reset` may give back.
    package var disabledByDriver: UInt8 { ifccpm | cablepm | cuirpm }
}

/// Why the DASD driver does not use a path.
package enum DASDPathDisableReason: String, Hashable, Sendable, CaseIterable {
    /// The IFCC/CCC error threshold was exceeded (`ifccpm`).
    case ifccThreshold = "ifcc-threshold"
    /// The path leads to another device (`cablepm`).
    case miscabled
    /// The storage server quiesced it (`cuirpm`).
    case cuirQuiesced = "cuir-quiesced"
}

/// What the DASD device driver (dasd-eckd, dasd-fba) says about one device's paths: its masks
/// and the knobs that govern disabling paths (host-paths.md §4). A value that could not be
/// read is nil and `problems` says why; nothing is guessed.
package struct DASDPathHealth: Hashable, Sendable {
    /// The driver the ccw device is bound to (`dasd-eckd`, `dasd-fba`).
    package var driver: String
    /// The device's `online` read 1 when the masks were read.
    package var online: Bool
    /// Linux's eight slots: the chpid of each installed path (PIM bit set), nil elsewhere.
    package var slots: [ChannelPathID?]
    /// `path_masks`; nil when missing or malformed (see `problems`).
    package var masks: DASDPathMasks?
    /// `path_autodisable` (0/1).
    package var autodisable: Bool?
    /// `path_threshold`: IFCC/CCC errors within `interval` that disable a path.
    package var threshold: UInt32?
    /// `path_interval`: seconds without an error after which the count restarts.
    package var interval: UInt32?
    /// `hpf`: zHPF in use.
    package var hpf: Bool?
    /// `fc_security`: `Unsupported`, `Authentication`, `Encryption` or `Inconsistent`.
    package var fcSecurity: String?
    /// `paths_info/<cssid>.<chpid>/fc_security`, per path.
    package var pathFCSecurity: [ChannelPathID: String]
    /// What could not be read or understood, one text per file.
    package var problems: [String]

    package init(
        driver: String, online: Bool, slots: [ChannelPathID?], masks: DASDPathMasks?, autodisable: Bool? = nil,
        threshold: UInt32? = nil, interval: UInt32? = nil, hpf: Bool? = nil, fcSecurity: String? = nil,
        pathFCSecurity: [ChannelPathID: String] = [:], problems: [String] = []
    ) {
        self.driver = driver
        self.online = online
        self.slots = slots
        self.masks = masks
        self.autodisable = autodisable
        self.threshold = threshold
        self.interval = interval
        self.hpf = hpf
        self.fcSecurity = fcSecurity
        self.pathFCSecurity = pathFCSecurity
        self.problems = problems
    }

    /// One installed path's state in the driver's eyes.
    package struct Path: Hashable, Sendable {
        package var slot: Int
        package var chpid: ChannelPathID
        package var inUse: Bool
        package var nonPreferred: Bool
        package var miscabled: Bool
        package var cuirQuiesced: Bool
        package var noHPF: Bool
        package var ifccDisabled: Bool

        /// The reasons the driver does not use it, in `DASDPathDisableReason` order.
        package var disabledBecause: [DASDPathDisableReason] {
            var out: [DASDPathDisableReason] = []
            if ifccDisabled { out.append(.ifccThreshold) }
            if miscabled { out.append(.miscabled) }
            if cuirQuiesced { out.append(.cuirQuiesced) }
            return out
        }
    }

    /// The installed paths in slot order, with their states; empty when the masks are unknown.
    package var paths: [Path] {
        guard let masks else { return [] }
        return slots.enumerated().compactMap { slot, chpid in
            guard let chpid else { return nil }
            let bit: UInt8 = 0x80 >> UInt8(slot)
            return Path(
                slot: slot, chpid: chpid, inUse: masks.opm & bit != 0, nonPreferred: masks.nppm & bit != 0,
                miscabled: masks.cablepm & bit != 0, cuirQuiesced: masks.cuirpm & bit != 0,
                noHPF: masks.hpfpm & bit != 0, ifccDisabled: masks.ifccpm & bit != 0)
        }
    }

    /// The slot mask of `chpids` (bit `0x80 >> slot`), for `path_reset`; nil when one of them
    /// is not a path of this device.
    package func slotMask(of chpids: [ChannelPathID]) -> UInt8? {
        var mask: UInt8 = 0
        for chpid in chpids {
            guard let slot = slots.firstIndex(of: chpid) else { return nil }
            mask |= 0x80 >> UInt8(slot)
        }
        return mask
    }
}

/// A path the DASD driver stopped using for a device since the last reading, and why: what
/// a path event of kind `driver-disabled-*` reports.
package struct DASDPathDisabling: Hashable, Sendable {
    package var chpid: ChannelPathID
    package var subchannel: SubchannelID
    package var reason: DASDPathDisableReason

    package init(chpid: ChannelPathID, subchannel: SubchannelID, reason: DASDPathDisableReason) {
        self.chpid = chpid
        self.subchannel = subchannel
        self.reason = reason
    }

    /// The disablings from `before` to `after` of one device: every (path, reason) in
    /// `after` that `before` did not have (nil `before`: a device first read has none).
    package static func between(
        _ before: DASDPathHealth?, _ after: DASDPathHealth?, subchannel: SubchannelID
    ) -> [DASDPathDisabling] {
        guard let before, let after else { return [] }
        var had = Set<String>()
        for path in before.paths { for reason in path.disabledBecause { had.insert("\(path.chpid) \(reason)") } }
        var out: [DASDPathDisabling] = []
        for path in after.paths {
            for reason in path.disabledBecause where !had.contains("\(path.chpid) \(reason)") {
                out.append(DASDPathDisabling(chpid: path.chpid, subchannel: subchannel, reason: reason))
            }
        }
        return out
    }
}

/// A path the DASD driver uses again for a device after it had disabled it (IFCC threshold,
/// miscabling, CUIR quiesce): what a path event of kind `driver-enabled` reports.
package struct DASDPathEnabling: Hashable, Sendable {
    package var chpid: ChannelPathID
    package var subchannel: SubchannelID

    package init(chpid: ChannelPathID, subchannel: SubchannelID) {
        self.chpid = chpid
        self.subchannel = subchannel
    }

    /// The paths of one device that `before` had disabled by the driver and `after` has in use
    /// again (nil on either side: none).
    package static func between(_ before: DASDPathHealth?, _ after: DASDPathHealth?, subchannel: SubchannelID)
        -> [DASDPathEnabling]
    {
        guard let before, let after else { return [] }
        let disabled = Set(before.paths.filter { !$0.disabledBecause.isEmpty }.map(\.chpid))
        return after.paths.filter { disabled.contains($0.chpid) && $0.disabledBecause.isEmpty && $0.inUse }.map {
            DASDPathEnabling(chpid: $0.chpid, subchannel: subchannel)
        }
    }
}

/// Per channel path: how many DASDs behind it are in each of the driver's states (a roll-up of
/// `DASDPathHealth.paths`). O(DASDs × 8) to compute.
package struct DASDChannelPathSummary: Hashable, Sendable {
    package var devices = 0
    package var inUse = 0
    package var nonPreferred = 0
    package var miscabled = 0
    package var cuirQuiesced = 0
    package var noHPF = 0
    package var ifccDisabled = 0
    /// Devices whose masks could not be read.
    package var unknown = 0

    package init() {}

    /// Every chpid that has DASDs behind it, with its counts.
    package static func rollUp<S: Sequence>(_ devices: S) -> [ChannelPathID: DASDChannelPathSummary]
    where S.Element == DASDPathHealth {
        var out: [ChannelPathID: DASDChannelPathSummary] = [:]
        for health in devices {
            guard health.masks != nil else {
                for case let chpid? in health.slots { out[chpid, default: .init()].unknown += 1 }
                continue
            }
            for path in health.paths {
                var summary = out[path.chpid, default: .init()]
                summary.devices += 1
                if path.inUse { summary.inUse += 1 }
                if path.nonPreferred { summary.nonPreferred += 1 }
                if path.miscabled { summary.miscabled += 1 }
                if path.cuirQuiesced { summary.cuirQuiesced += 1 }
                if path.noHPF { summary.noHPF += 1 }
                if path.ifccDisabled { summary.ifccDisabled += 1 }
                out[path.chpid] = summary
            }
        }
        return out
    }
}

extension Subchannel {
    /// lscss `--vpm`'s reading of a subchannel: path verification is due when PIM and PAM
    /// differ, or when a usable path (available, operational and varied online: PAM & POM &
    /// LPM) is missing from the verified path mask (`vpm`). Nil when the backend has no `vpm`
    /// (the model) or the device is not online (the kernel verifies paths only for an online
    /// device, and leaves `vpm` 00). IBM's remedy is to vary the path off and on.
    package var needsPathVerification: Bool? {
        guard type == .io, let vpm = verifiedPathMask, schib.pmcw.isEnabled else { return nil }
        let pmcw = schib.pmcw
        return pmcw.pim != pmcw.pam || (pmcw.pam & pmcw.pom & pmcw.lpm) & ~vpm != 0
    }
}
