// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// One chpid's channel-measurement files as one pass read them: the raw blocks, exactly as the
/// kernel copied them out (big-endian; /work/shared/reference/channel-measurement.md 1.3),
/// with the one repair chpstat makes (the CMG 3 CUIV).
package struct SysfsMeasurementBlocks: Sendable, Equatable {
    /// The channel-measurement group (`cmg`, 1...5).
    package var cmg: Int
    /// The 32-byte CMCB: `measurement_chars_full` whole (Linux 6.13+), else the 20 bytes of
    /// `measurement_chars` at offset 12 (word 3) with words 0-2 zero, as chpstat lays them
    /// out; nil for CMG 1, which has no characteristics.
    package var characteristics: [UInt8]?
    /// `characteristics` came from `measurement_chars_full` (words 0-2 are real: chpid,
    /// CMCV, CMG, speed, the CMG 4/5 DPU id).
    package var fullCharacteristics: Bool
    /// `speed_bps` in bit/s (`32G` is 32·10⁹); nil when the file is missing (before 6.10),
    /// reads `0` (the kernel does not know) or is malformed.
    package var speedBitsPerSecond: UInt64?
    /// The 32-byte CUE (`measurement`); a CMG 3 CUIV of 0xfe already made 0xff (some
    /// firmware levels report 0xfe for CMG 3; chpstat `read_cue`).
    package var entry: [UInt8]
    /// The 64-byte extended CUE (`ext_measurement`); nil when the kernel has none for this
    /// chpid (the file is missing before 6.10, and reads 0 bytes for a path without extended
    /// measurement).
    package var extendedEntry: [UInt8]?
    /// The kernel has the `ext_measurement` file (Linux 6.10+).
    package var hasExtendedFile: Bool
    /// How many times the consistency loop read the CUE again because its timestamp moved
    /// while the extended entry was read.
    package var rereads: Int

    /// The CUE's 24-bit timestamp (128 µs units, bytes 1-3).
    package var timestamp: UInt32 {
        UInt32(entry[1]) << 16 | UInt32(entry[2]) << 8 | UInt32(entry[3])
    }
}

/// Why a chpid's measurements could not be read this pass: served as "not available" with
/// this reason, never as zeros.
package enum SysfsMeasurementProblem: Error, Sendable, Equatable, CustomStringConvertible {
    /// `cmg` reads `unknown`: the machine reports no measurement group (chpstat: "No
    /// statistics available").
    case cmgUnknown
    /// `cmg` holds something else than a number.
    case cmgMalformed(String)
    /// A CMG that has no layout here (chpstat v2.43.0 knows 1-5).
    case unsupportedCMG(Int)
    /// A file the kernel should have is not there (it removes the measurement files while
    /// the facility is off; a kernel before 6.10 has no `ext_measurement`, before 6.13 no
    /// `measurement_chars_full`).
    case missing(file: String)
    /// Reading it failed with this errno (EACCES: the files are root's, mode 0400).
    case unreadable(file: String, errno: Int32)
    /// The kernel returned no bytes: it has no data for this CMG (before Linux 6.10 it
    /// measured CMG 2 and 3 only).
    case noData(file: String)
    /// A block of another size than the layout's.
    case wrongSize(file: String, bytes: Int, expected: Int)
    /// The CUE's timestamp moved on each of this many reads while the extended entry was
    /// read: the two could not be taken as one sample.
    case timestampUnstable(reads: Int)

    package var description: String {
        switch self {
        case .cmgUnknown: return "cmg reads 'unknown': the machine reports no measurement group for this channel path"
        case .cmgMalformed(let text): return "cmg reads '\(text)', not a channel-measurement group"
        case .unsupportedCMG(let cmg): return "CMG \(cmg) has no known layout (CMG 1 to 5 have)"
        case .missing(let file): return "\(file) is missing"
        case .unreadable(let file, let code): return "reading \(file) failed: \(SysfsFiles.describe(code))"
        case .noData(let file):
            return "\(file) has no data for this CMG (Linux before 6.10 measures CMG 2 and 3 only)"
        case .wrongSize(let file, let bytes, let expected): return "\(file) has \(bytes) bytes, not \(expected)"
        case .timestampUnstable(let reads):
            return "the measurement's timestamp moved on each of \(reads) reads; no consistent sample"
        }
    }
}

/// Reading one chpid's measurement files the way the kernel requires and chpstat does.
/// The files come through `read` (a single read at offset 0 of a css directory's file,
/// `SysfsFiles.readBlock`): a test hands in a firmware that moves the CUE's timestamp
/// between two reads, which no file on a disk does.
struct MeasurementFiles {
    static let cmcbSize = 32
    /// `measurement_chars` is the CMCB from word 3 on.
    static let partialCMCBOffset = 12
    static let partialCMCBSize = 20
    static let cueSize = 32
    static let extendedCUESize = 64
    /// The CUE is read at most this often per pass: firmware updates it every few seconds,
    /// so a timestamp that moves on every read means something else is wrong.
    static let maximumCUEReads = 4

    /// One read of a file (its path relative to the css directory) of at most `limit` bytes.
    let read: (_ name: String, _ limit: Int) -> SysfsFiles.BlockReading

    /// The files of the css directory open as `directory`.
    init(directory: Int32) {
        read = { name, limit in SysfsFiles.readBlock(at: directory, name, limit: limit) }
    }

    init(read: @escaping (_ name: String, _ limit: Int) -> SysfsFiles.BlockReading) {
        self.read = read
    }

    /// The characteristics, which change only with the CMG (read again when it does, and
    /// when the facility is enabled again).
    struct Characteristics: Equatable {
        var cmg: Int
        var block: [UInt8]?
        var full: Bool
        var speed: UInt64?
    }

    /// Reads the characteristics (unless `cached` has them for this CMG), then the CUE and
    /// extended CUE until the CUE's timestamp is stable (chpstat `read_util`).
    /// - Parameters:
    ///   - chpid: the chpid's directory name in the css directory (`chp0.4a`).
    ///   - cmg: the chpid's group (1...5), from its `cmg` (`readCMG`).
    /// - Returns: the blocks and the characteristics to cache, or the problem.
    func read(chpid: String, cmg: Int, cached: Characteristics?)
        -> Result<(SysfsMeasurementBlocks, Characteristics), SysfsMeasurementProblem>
    {
        do throws(SysfsMeasurementProblem) {
            guard (1...5).contains(cmg) else { throw .unsupportedCMG(cmg) }
            let characteristics: Characteristics
            if let cached, cached.cmg == cmg {
                characteristics = cached
            } else {
                characteristics = try readCharacteristics(chpid: chpid, cmg: cmg)
            }
            var hasExtendedFile = false
            var extended: [UInt8]?
            var entry = try readEntry(chpid: chpid, cmg: cmg)
            var reads = 1
            while true {
                (extended, hasExtendedFile) = try readExtendedEntry(chpid: chpid)
                // Without extended data there is nothing to keep in step with the CUE.
                guard extended != nil else { break }
                let again = try readEntry(chpid: chpid, cmg: cmg)
                reads += 1
                if again[1..<4] == entry[1..<4] { break }
                // The firmware updated the entries meanwhile: the extended one may be of the
                // other update. Read both again.
                guard reads < Self.maximumCUEReads else { throw .timestampUnstable(reads: reads) }
                entry = again
            }
            let blocks = SysfsMeasurementBlocks(
                cmg: cmg, characteristics: characteristics.block, fullCharacteristics: characteristics.full,
                speedBitsPerSecond: characteristics.speed, entry: entry, extendedEntry: extended,
                hasExtendedFile: hasExtendedFile, rereads: max(0, reads - 2))
            return .success((blocks, characteristics))
        } catch {
            return .failure(error)
        }
    }

    /// `cmg`: `unknown`, or the number in the kernel's notation.
    func readCMG(_ name: String, radix: Int) throws(SysfsMeasurementProblem) -> Int {
        let text = try line(name)
        guard text != "unknown" else { throw .cmgUnknown }
        guard let cmg = Int(text, radix: radix), cmg >= 0 else { throw .cmgMalformed(text) }
        return cmg
    }

    /// The CMCB (full, or the older 20-byte view placed at word 3) and `speed_bps`; none for
    /// CMG 1 (chpstat reads none either: its entries need no characteristics).
    func readCharacteristics(chpid: String, cmg: Int) throws(SysfsMeasurementProblem) -> Characteristics {
        let speed = (try? line(chpid + "/speed_bps")).flatMap(Self.parseSpeed)
        guard cmg != 1 else { return Characteristics(cmg: cmg, block: nil, full: false, speed: speed) }
        let fullName = chpid + "/measurement_chars_full"
        switch read(fullName, Self.cmcbSize + 1) {
        case .bytes(let bytes):
            let block = try Self.exactly(bytes, Self.cmcbSize, fullName)
            return Characteristics(cmg: cmg, block: block, full: true, speed: speed)
        case .failed(let code): throw .unreadable(file: fullName, errno: code)
        case .missing: break  // before Linux 6.13
        }
        let bytes = try block(chpid + "/measurement_chars", size: Self.partialCMCBSize)
        let block = [UInt8](repeating: 0, count: Self.partialCMCBOffset) + bytes
        return Characteristics(cmg: cmg, block: block, full: false, speed: speed)
    }

    /// The CUE, with chpstat's repair of a CMG 3 CUIV of 0xfe.
    func readEntry(chpid: String, cmg: Int) throws(SysfsMeasurementProblem) -> [UInt8] {
        var entry = try block(chpid + "/measurement", size: Self.cueSize)
        if cmg == 3 && entry[0] == 0xfe { entry[0] = 0xff }
        return entry
    }

    /// The extended CUE: nil when the kernel has none (no file before 6.10; 0 bytes for a
    /// path without extended measurement), and whether the file exists. chpstat takes a
    /// block of another size for none; here it is a problem, as any block of a wrong size.
    func readExtendedEntry(chpid: String) throws(SysfsMeasurementProblem) -> ([UInt8]?, Bool) {
        let name = chpid + "/ext_measurement"
        switch read(name, Self.extendedCUESize + 1) {
        case .bytes(let bytes) where bytes.isEmpty: return (nil, true)
        case .bytes(let bytes): return (try Self.exactly(bytes, Self.extendedCUESize, name), true)
        case .missing: return (nil, false)
        case .failed(let code): throw .unreadable(file: name, errno: code)
        }
    }

    /// A block that must be there with exactly `size` bytes.
    func block(_ name: String, size: Int) throws(SysfsMeasurementProblem) -> [UInt8] {
        switch read(name, size + 1) {
        case .bytes(let bytes) where bytes.isEmpty: throw .noData(file: name)
        case .bytes(let bytes): return try Self.exactly(bytes, size, name)
        case .missing: throw .missing(file: name)
        case .failed(let code): throw .unreadable(file: name, errno: code)
        }
    }

    static func exactly(_ bytes: [UInt8], _ size: Int, _ name: String) throws(SysfsMeasurementProblem) -> [UInt8] {
        guard bytes.count == size else { throw .wrongSize(file: name, bytes: bytes.count, expected: size) }
        return bytes
    }

    /// A text attribute that must be there: its first line without blanks around it.
    func line(_ name: String) throws(SysfsMeasurementProblem) -> String {
        switch read(name, 4096) {
        case .bytes(let bytes):
            let line = bytes.split(separator: 0x0a, maxSplits: 1, omittingEmptySubsequences: false).first ?? []
            return String(decoding: line, as: UTF8.self).trimmingBlanks
        case .missing: throw .missing(file: name)
        case .failed(let code): throw .unreadable(file: name, errno: code)
        }
    }

    /// `speed_bps` as the kernel prints it (`apply_max_suffix`): digits with an optional
    /// `K`, `M`, `G` or `T` (powers of 1000); nil for `0` (unknown) and anything else.
    static func parseSpeed(_ text: String) -> UInt64? {
        var digits = Substring(text)
        var scale: UInt64 = 1
        if let last = digits.last, let power = ["K": 1, "M": 2, "G": 3, "T": 4][String(last)] {
            digits = digits.dropLast()
            for _ in 0..<power { scale *= 1000 }
        }
        guard !digits.isEmpty, digits.allSatisfy({ ("0"..."9").contains($0) }), let value = UInt64(digits) else {
            return nil
        }
        let (speed, overflow) = value.multipliedReportingOverflow(by: scale)
        return overflow || speed == 0 ? nil : speed
    }
}
