// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import Foundation
import Synchronization
import TestSupport
import Testing

@testable import LinuxSysfs

/// The linux-sysfs side of the channel-measurement facility: fixture trees of each CMG, of
/// the kernels before 6.7, of 6.10 and of 6.13, and missing and malformed files, read as the
/// kernel requires and chpstat does.
@Suite struct MeasurementSysfsTests {
    static let chp40 = ChannelPathID(cssid: 0, chpid: 0x40)
    static let chp41 = ChannelPathID(cssid: 0, chpid: 0x41)

    /// A CMCB written from the layout: word 0 not-valid 0, shared, extended, chpid; word 1
    /// CMCV (all five valid), CMGP 9, CMG; word 2 CMGS 32 (32·10⁹ bit/s); words 3-7 `data`.
    static func cmcb(cmg: UInt32, chpid: UInt32 = 0x40, data: [UInt32]) -> [UInt8] {
        bigEndian([0x6000_0000 | chpid, 0xf809_0000 | cmg, 0x0000_0020] + data)
    }

    /// A CUE: CUIV, the 24-bit timestamp, seven counters.
    static func cue(cuiv: UInt32 = 0xff, timestamp: UInt32, _ counters: [UInt32]) -> [UInt8] {
        bigEndian([cuiv << 24 | timestamp] + counters)
    }

    /// A tree with chpids 0.40 and 0.41, one subchannel, the facility enabled, and `kernel`'s
    /// `/proc`.
    static func tree(kernel: SysfsTree.MeasurementKernel = .linux6_13) -> SysfsTree {
        let tree = SysfsTree()
        tree.chp("40")
        tree.chp("41")
        tree.sch("0.0.0000", chpids: "40 41 00 00 00 00 00 00", pimpampom: "c0 c0 ff", device: "0.0.1000")
        tree.cmEnable(1)
        tree.proc(kernel: kernel)
        return tree
    }

    static func blocks(_ pass: MeasurementPass, _ id: ChannelPathID) throws -> SysfsMeasurementBlocks {
        try #require(pass.results[id]).get()
    }

    static func problem(_ pass: MeasurementPass, _ id: ChannelPathID) -> SysfsMeasurementProblem? {
        guard case .failure(let problem)? = pass.results[id] else { return nil }
        return problem
    }

    // MARK: Each CMG on a 6.13 kernel

    /// Every CMG's blocks come back byte for byte as the kernel exposes them; CMG 1 has no
    /// characteristics, CMG 1 and 3 no extended entry (the kernel's file reads 0 bytes).
    @Test(arguments: 1...5) func eachCMGIsReadWhole(cmg: Int) throws {
        let tree = Self.tree()
        let characteristics = Self.cmcb(cmg: UInt32(cmg), data: [1000, 2000, 3000, 4000, cmg >= 4 ? 0x0400_0040 : 64])
        let entry = Self.cue(timestamp: 0x12_3456, [1, 2, 3, 4, 5, 6, 0xffff_fffe])
        let extended: [UInt8]? = [2, 4, 5].contains(cmg) ? bigEndian((1...16).map { UInt32($0) * 0x0101 }) : nil
        tree.measurement(
            "40", cmg: cmg, characteristics: characteristics, entry: entry, extended: extended, speed: "32G")
        let backend = try SysfsBackend(root: tree.root, procRoot: tree.procRoot)
        let blocks = try Self.blocks(backend.measureNow(), Self.chp40)
        #expect(blocks.cmg == cmg)
        #expect(blocks.characteristics == (cmg == 1 ? nil : characteristics))
        #expect(blocks.fullCharacteristics == (cmg != 1))
        #expect(blocks.entry == entry)
        #expect(blocks.timestamp == 0x12_3456)
        #expect(blocks.extendedEntry == extended)
        #expect(blocks.hasExtendedFile)
        #expect(blocks.speedBitsPerSecond == 32_000_000_000)
        #expect(blocks.rereads == 0)
        #expect(backend.lastMeasurement?.facility == .enabled)
    }

    // MARK: Older kernels

    /// Before 6.13 there is no `measurement_chars_full`: the 20 bytes of `measurement_chars`
    /// go to word 3 and words 0-2 stay zero, as chpstat lays them out.
    @Test func before613TheCharacteristicsStartAtWordThree() throws {
        let tree = Self.tree(kernel: .linux6_10)
        let characteristics = Self.cmcb(cmg: 2, data: [1000, 2000, 3000, 4000, 64])
        tree.measurement(
            "40", kernel: .linux6_10, cmg: 2, characteristics: characteristics,
            entry: Self.cue(timestamp: 7, [1, 2, 3, 4, 5, 6, 7]), extended: bigEndian(Array(repeating: 9, count: 16)))
        let backend = try SysfsBackend(root: tree.root, procRoot: tree.procRoot)
        let blocks = try Self.blocks(backend.measureNow(), Self.chp40)
        #expect(blocks.characteristics == [UInt8](repeating: 0, count: 12) + characteristics[12...])
        #expect(!blocks.fullCharacteristics)
        #expect(blocks.extendedEntry?.count == 64)
    }

    /// Before 6.10: no `ext_measurement` (its absence is how such a kernel is, not a
    /// problem) and no `speed_bps`; `cmg` is printed in hex until 6.7.
    @Test func before610ThereIsNoExtendedEntryAndCMGIsHex() throws {
        let tree = Self.tree(kernel: .linux6_6)
        let entry = Self.cue(timestamp: 7, [1, 2, 3, 4, 5, 6, 7])
        tree.measurement(
            "40", kernel: .linux6_6, cmg: 3, characteristics: Self.cmcb(cmg: 3, data: [1, 2, 3, 4, 0]), entry: entry)
        tree.write("devices/css0/chp0.41/cmg", "a\n")  // CMG 10 in the old notation
        let backend = try SysfsBackend(root: tree.root, procRoot: tree.procRoot)
        #expect(backend.kernelRelease == KernelRelease(major: 6, minor: 6))
        #expect(backend.details(of: Self.chp41)?.cmg == 10)
        let pass = backend.measureNow()
        let blocks = try Self.blocks(pass, Self.chp40)
        #expect(blocks.entry == entry && blocks.extendedEntry == nil && !blocks.hasExtendedFile)
        #expect(blocks.speedBitsPerSecond == nil)
        #expect(Self.problem(pass, Self.chp41) == .unsupportedCMG(10))
    }

    /// Since 6.7 `cmg` is decimal: `10` is ten, and `a` is not a CMG.
    @Test func since67CMGIsDecimal() throws {
        let tree = Self.tree(kernel: .linux6_13)
        tree.write("devices/css0/chp0.40/cmg", "10\n")
        tree.write("devices/css0/chp0.41/cmg", "a\n")
        let backend = try SysfsBackend(root: tree.root, procRoot: tree.procRoot)
        #expect(backend.details(of: Self.chp40)?.cmg == 10)
        #expect(backend.details(of: Self.chp41)?.cmg == nil)
        let pass = backend.measureNow()
        #expect(Self.problem(pass, Self.chp40) == .unsupportedCMG(10))
        #expect(Self.problem(pass, Self.chp41) == .cmgMalformed("a"))
    }

    /// Kernels before 6.10 measure CMG 2 and 3 only: the `measurement` of another CMG reads
    /// 0 bytes, which is "no data", never zeros.
    @Test func anEmptyEntryIsNoData() throws {
        let tree = Self.tree(kernel: .linux6_6)
        tree.measurement("40", kernel: .linux6_6, cmg: 1, entry: [])
        let pass = try SysfsBackend(root: tree.root, procRoot: tree.procRoot).measureNow()
        #expect(Self.problem(pass, Self.chp40) == .noData(file: "chp0.40/measurement"))
    }

    // MARK: The CMG 3 firmware quirk

    /// Some firmware levels report a CUIV of 0xfe for CMG 3: taken as 0xff (chpstat
    /// `read_cue`); for another CMG 0xfe stays what it says (word 7 invalid).
    @Test func aCMG3CUIVOfFEIsTakenAsFF() throws {
        let tree = Self.tree()
        tree.measurement("40", cmg: 3, entry: Self.cue(cuiv: 0xfe, timestamp: 5, [1, 2, 3, 4, 5, 6, 7]))
        tree.measurement(
            "41", cmg: 2, entry: Self.cue(cuiv: 0xfe, timestamp: 5, [1, 2, 3, 4, 5, 6, 7]),
            extended: bigEndian(Array(repeating: 0, count: 16)))
        let pass = try SysfsBackend(root: tree.root, procRoot: tree.procRoot).measureNow()
        #expect(try Self.blocks(pass, Self.chp40).entry[0] == 0xff)
        #expect(try Self.blocks(pass, Self.chp41).entry[0] == 0xfe)
    }

    // MARK: Missing and malformed files

    /// Each problem is that chpid's, with its reason; the other chpid is served.
    @Test(arguments: [
        ("measurement", nil as [UInt8]?, SysfsMeasurementProblem.missing(file: "chp0.40/measurement")),
        (
            "measurement", [UInt8](repeating: 1, count: 31),
            .wrongSize(file: "chp0.40/measurement", bytes: 31, expected: 32)
        ),
        (
            "measurement", [UInt8](repeating: 1, count: 33),
            .wrongSize(file: "chp0.40/measurement", bytes: 33, expected: 32)
        ),
        (
            "ext_measurement", [UInt8](repeating: 1, count: 40),
            .wrongSize(file: "chp0.40/ext_measurement", bytes: 40, expected: 64)
        ),
        (
            "measurement_chars_full", [UInt8](repeating: 1, count: 20),
            .wrongSize(file: "chp0.40/measurement_chars_full", bytes: 20, expected: 32)
        ),
        ("cmg", Array("unknown\n".utf8), .cmgUnknown),
        ("cmg", Array("two\n".utf8), .cmgMalformed("two")),
        ("cmg", Array("7\n".utf8), .unsupportedCMG(7)),
        ("cmg", nil, .missing(file: "chp0.40/cmg")),
    ])
    func aBadFileMakesThatChpidNotAvailable(file: String, content: [UInt8]?, problem: SysfsMeasurementProblem) throws {
        let tree = Self.tree()
        let good = Self.cue(timestamp: 9, [1, 2, 3, 4, 5, 6, 7])
        let extended = bigEndian(Array(repeating: 3, count: 16))
        tree.measurement(
            "40", cmg: 2, characteristics: Self.cmcb(cmg: 2, data: [1, 2, 3, 4, 5]), entry: good, extended: extended)
        tree.measurement(
            "41", cmg: 2, characteristics: Self.cmcb(cmg: 2, chpid: 0x41, data: [1, 2, 3, 4, 5]), entry: good,
            extended: extended)
        let backend = try SysfsBackend(root: tree.root, procRoot: tree.procRoot)
        let logged = Mutex<[String]>([])
        backend.follower.inspect { mirror in mirror.log = { _, message in logged.withLock { $0.append(message) } } }
        // The file goes bad while cssd runs; the next tick reads the chpid's attributes, then
        // measures.
        let path = "devices/css0/chp0.40/" + file
        if let content { tree.writeBytes(path, content) } else { tree.remove(path) }
        _ = try backend.refresh()
        // Characteristics are read again only when the facility is enabled again.
        tree.cmEnable(0)
        backend.measureNow()
        tree.cmEnable(1)
        let pass = backend.measureNow()
        #expect(Self.problem(pass, Self.chp40) == problem)
        #expect(try Self.blocks(pass, Self.chp41).entry == good)
        // One log line, naming the chpid and the reason; the next pass does not repeat it.
        backend.measureNow()
        #expect(
            logged.withLock { $0 } == [
                "sysfs: \(tree.root)/devices/css0/chp0.40: measurement not available: \(problem)"
            ])
    }

    /// The facility off (`cm_enable` 0: the kernel has removed the files) or missing (no
    /// facility): no chpid is read, and the state says why.
    @Test func theFacilityOffOrMissingReadsNoChpid() throws {
        let tree = Self.tree()
        tree.measurement("40", cmg: 2, entry: Self.cue(timestamp: 9, [1, 2, 3, 4, 5, 6, 7]))
        let backend = try SysfsBackend(root: tree.root, procRoot: tree.procRoot)
        tree.cmEnable(0)
        var pass = backend.measureNow()
        #expect(pass.facility == .disabled && pass.results.isEmpty)
        tree.remove("devices/css0/cm_enable")
        pass = backend.measureNow()
        #expect(pass.facility == .unsupported && pass.results.isEmpty)
        // The kernel prints `%x` of a 0/1 flag: anything else is not understood, not "on"
        // (`ff`, `-1` and `+1` parse as hex numbers but no kernel writes them).
        for text in ["yes\n", "ff\n", "-1\n", "+1\n", "10\n"] {
            tree.write("devices/css0/cm_enable", text)
            pass = backend.measureNow()
            guard case .unreadable = pass.facility else {
                Issue.record("cm_enable \(text.debugDescription) read as \(pass.facility)")
                continue
            }
        }
    }

    /// The characteristics are read once per CMG: a changed CMCB shows only after the CMG
    /// changed or the facility was enabled again (as the kernel reads them only then).
    @Test func theCharacteristicsAreReadAgainWhenTheFacilityIsEnabledAgain() throws {
        let tree = Self.tree()
        let first = Self.cmcb(cmg: 2, data: [1, 2, 3, 4, 5])
        let entry = Self.cue(timestamp: 9, [1, 2, 3, 4, 5, 6, 7])
        tree.measurement("40", cmg: 2, characteristics: first, entry: entry, extended: [])
        let backend = try SysfsBackend(root: tree.root, procRoot: tree.procRoot)
        #expect(try Self.blocks(backend.measureNow(), Self.chp40).characteristics == first)
        let second = Self.cmcb(cmg: 2, data: [6, 7, 8, 9, 10])
        tree.writeBytes("devices/css0/chp0.40/measurement_chars_full", second)
        #expect(try Self.blocks(backend.measureNow(), Self.chp40).characteristics == first)
        tree.cmEnable(0)
        backend.measureNow()
        tree.cmEnable(1)
        #expect(try Self.blocks(backend.measureNow(), Self.chp40).characteristics == second)
    }

    // MARK: The consistency loop

    /// A firmware that updates the entries while they are read: the CUE is read again, with
    /// the extended entry, until its timestamp holds still (chpstat `read_util`); one that
    /// never holds still gives no sample rather than a mixed one.
    @Test func theEntryIsReadAgainUntilItsTimestampHoldsStill() throws {
        final class Firmware: @unchecked Sendable {
            var timestamps: [UInt32]
            var entryReads = 0
            init(_ timestamps: [UInt32]) { self.timestamps = timestamps }
            func read(_ name: String, _ limit: Int) -> SysfsFiles.BlockReading {
                switch name {
                case "chp0.40/cmg": return .bytes(Array("2\n".utf8))
                case "chp0.40/measurement_chars_full":
                    return .bytes(MeasurementSysfsTests.cmcb(cmg: 2, data: [1, 2, 3, 4, 5]))
                case "chp0.40/measurement":
                    let timestamp = timestamps[min(entryReads, timestamps.count - 1)]
                    entryReads += 1
                    return .bytes(MeasurementSysfsTests.cue(timestamp: timestamp, [timestamp, 0, 0, 0, 0, 0, 0]))
                case "chp0.40/ext_measurement":
                    return .bytes(bigEndian(Array(repeating: UInt32(entryReads), count: 16)))
                default: return .missing
                }
            }
        }
        let moving = Firmware([1, 2, 2])
        let reading = MeasurementFiles(read: moving.read).read(chpid: "chp0.40", cmg: 2, cached: nil)
        let (blocks, _) = try reading.get()
        #expect(blocks.timestamp == 2 && blocks.rereads == 1 && moving.entryReads == 3)
        // The extended entry is the one read between the two reads that agree.
        #expect(blocks.extendedEntry == bigEndian(Array(repeating: 2, count: 16)))
        let restless = Firmware([1, 2, 3, 4, 5, 6])
        let never = MeasurementFiles(read: restless.read).read(chpid: "chp0.40", cmg: 2, cached: nil)
        #expect(throws: SysfsMeasurementProblem.timestampUnstable(reads: MeasurementFiles.maximumCUEReads)) {
            try never.get()
        }
    }

    /// Each file is read in one read at offset 0, asking for one byte more than the block:
    /// the kernel answers only such a read.
    @Test func eachBlockIsOneReadAtOffsetZero() throws {
        let tree = Self.tree()
        let entry = Self.cue(timestamp: 9, [1, 2, 3, 4, 5, 6, 7])
        tree.measurement("40", cmg: 2, entry: entry, extended: [])
        let calls = Mutex<[(String, Int)]>([])
        let files = MeasurementFiles { name, limit in
            calls.withLock { $0.append((name, limit)) }
            return SysfsFiles.readBlock(at: AT_FDCWD, tree.root + "/devices/css0/" + name, limit: limit)
        }
        _ = try files.read(chpid: "chp0.40", cmg: 2, cached: nil).get()
        let blocks = calls.withLock { $0 }.filter { $0.0.contains("measurement") }
        #expect(
            blocks.map(\.0) == ["chp0.40/measurement_chars_full", "chp0.40/measurement", "chp0.40/ext_measurement"])
        #expect(blocks.map(\.1) == [33, 33, 65])
    }

    // MARK: speed_bps

    @Test func speedIsReadAsTheKernelPrintsIt() {
        #expect(MeasurementFiles.parseSpeed("32G") == 32_000_000_000)
        #expect(MeasurementFiles.parseSpeed("16000M") == 16_000_000_000)
        #expect(MeasurementFiles.parseSpeed("1T") == 1_000_000_000_000)
        #expect(MeasurementFiles.parseSpeed("1234567") == 1_234_567)
        #expect(MeasurementFiles.parseSpeed("0") == nil)
        #expect(MeasurementFiles.parseSpeed("G") == nil)
        #expect(MeasurementFiles.parseSpeed("-5K") == nil)
        #expect(MeasurementFiles.parseSpeed("99999999999999999T") == nil)
    }
}
