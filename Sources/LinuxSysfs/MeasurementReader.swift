// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

#if canImport(Glibc)
import Glibc
#endif

/// The state of the channel-measurement facility, as `css0/cm_enable` says.
package enum MeasurementFacilityState: Sendable, Equatable, CustomStringConvertible {
    /// No `cm_enable`: the kernel or machine has no channel-path measurement (chpstat:
    /// "unsupported"; a KVM guest).
    case unsupported
    /// `cm_enable` reads 0, as after every Linux boot.
    case disabled
    /// `cm_enable` reads 1: the measurement files exist and firmware updates them.
    case enabled
    /// `cm_enable` could not be read or understood; the reason.
    case unreadable(String)

    package var description: String {
        switch self {
        case .unsupported: return "unsupported"
        case .disabled: return "disabled"
        case .enabled: return "enabled"
        case .unreadable(let reason): return "unreadable (\(reason))"
        }
    }
}

/// One pass over every chpid's measurement files: what a poll tick (or the reading right
/// after `cm_enable` was written) found.
package struct MeasurementPass: Sendable {
    /// The facility's state; when not `enabled`, `results` is empty.
    package var facility: MeasurementFacilityState
    /// Per chpid: its blocks, or why there are none this pass.
    package var results: [ChannelPathID: Result<SysfsMeasurementBlocks, SysfsMeasurementProblem>]
    /// Per chpid: its `cmg` when it is a number, also when its blocks could not be read (a
    /// read problem does not change the group, so the running totals go on).
    package var groups: [ChannelPathID: Int] = [:]
    /// When the pass started, on the monotonic clock (nanoseconds): the host's time of the
    /// samples, beside the CUE's own 24-bit timestamp (which wraps every 2147 s).
    package var monotonicNanoseconds: UInt64
    /// How long the pass took (nanoseconds).
    package var duration: UInt64

    package init(
        facility: MeasurementFacilityState,
        results: [ChannelPathID: Result<SysfsMeasurementBlocks, SysfsMeasurementProblem>] = [:],
        monotonicNanoseconds: UInt64 = 0, duration: UInt64 = 0
    ) {
        self.facility = facility
        self.results = results
        self.monotonicNanoseconds = monotonicNanoseconds
        self.duration = duration
    }
}

/// Reads the facility's state and, when it is enabled, every chpid's blocks: at most one
/// pass per poll tick, on the follower's thread (never on the event loop), under the mirror's
/// lock. It keeps each chpid's characteristics until its CMG changes or the facility is
/// enabled again, and takes `cmg` from the tick's reading of the chpid's attributes, so that
/// a pass reads `measurement` and `ext_measurement` (and `measurement` once more when the
/// extended entry is there): 2 or 3 small reads per chpid, and `cm_enable`.
/// A problem is logged once per chpid and message (`SysfsProblemLog`) and reported in the
/// pass as that chpid's result.
final class MeasurementReader {
    let paths: SysfsPaths
    /// 16 before Linux 6.7 (`cmg` printed `%x`), 10 since.
    let cmgRadix: Int
    private var characteristics: [ChannelPathID: MeasurementFiles.Characteristics] = [:]
    private var lastFacility: MeasurementFacilityState?
    /// Passes made so far (tests: one per poll tick at most).
    private(set) var passes = 0

    init(paths: SysfsPaths, cmgRadix: Int) {
        self.paths = paths
        self.cmgRadix = cmgRadix
    }

    /// `css0/cm_enable`.
    var enablePath: String { paths.css(0) + "/cm_enable" }

    /// The facility's state now.
    func facility() -> MeasurementFacilityState {
        switch SysfsFiles.readLine(at: AT_FDCWD, enablePath) {
        case .missing: return .unsupported
        case .failed(let code): return .unreadable("reading \(enablePath) failed: \(SysfsFiles.describe(code))")
        case .bytes(let bytes):
            // The kernel prints `%x` of a 0/1 flag (`cm_enable_show`); anything else is a tree
            // cssd does not understand, never "on" (a hex parse took `ff` or `-1` for enabled).
            let text = String(decoding: bytes, as: UTF8.self)
            switch text {
            case "0": return .disabled
            case "1": return .enabled
            default: return .unreadable("\(enablePath) reads '\(text)', not 0 or 1")
            }
        }
    }

    /// One pass: the facility's state, and every one of `chpids`' blocks when it is enabled.
    /// - Parameter note: logs a problem once (`SysfsProblemLog.note`), with the kind of read
    ///   error it counts as, if any.
    /// - Parameter chpids: the chpids, each with the `cmg` its attributes' reading just
    ///   found (nil: none or not understood; the pass reads the file again to say why).
    func pass(_ chpids: [(id: ChannelPathID, cmg: Int?)], note: (String, SysfsProblemLog.Kind?) -> Void)
        -> MeasurementPass
    {
        let started = monotonicNanoseconds()
        let facility = facility()
        if facility != lastFacility {
            // Enabled again: the kernel read the characteristics anew (chsc_get_channel_measurement_chars).
            characteristics = [:]
            lastFacility = facility
            if case .unreadable(let reason) = facility { note(reason, .unreadable) }
        }
        guard facility == .enabled else {
            passes += 1
            return MeasurementPass(
                facility: facility, monotonicNanoseconds: started, duration: monotonicNanoseconds() - started)
        }
        var results: [ChannelPathID: Result<SysfsMeasurementBlocks, SysfsMeasurementProblem>] = [:]
        var groups: [ChannelPathID: Int] = [:]
        var directories: [UInt8: Int32] = [:]
        defer { for fd in directories.values { close(fd) } }
        for (id, cmg) in chpids {
            if directories[id.cssid] == nil {
                directories[id.cssid] = open(paths.css(id.cssid), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            }
            let directory = directories[id.cssid]!
            guard directory >= 0 else {
                results[id] = .failure(.unreadable(file: paths.css(id.cssid), errno: errno))
                continue
            }
            let files = MeasurementFiles(directory: directory)
            let name = SysfsPaths.channelPathName(id)
            let reading: Result<(SysfsMeasurementBlocks, MeasurementFiles.Characteristics), SysfsMeasurementProblem>
            do throws(SysfsMeasurementProblem) {
                // The tick's reading had no number: read `cmg` again to say why.
                var group = cmg ?? 0
                if cmg == nil { group = try files.readCMG(name + "/cmg", radix: cmgRadix) }
                groups[id] = group
                reading = files.read(chpid: name, cmg: group, cached: characteristics[id])
            } catch {
                reading = .failure(error)
            }
            switch reading {
            case .success(let (blocks, read)):
                characteristics[id] = read
                results[id] = .success(blocks)
            case .failure(let problem):
                characteristics[id] = nil
                results[id] = .failure(problem)
                note("\(paths.channelPath(id)): measurement not available: \(problem)", problem.readErrorKind)
            }
        }
        passes += 1
        var pass = MeasurementPass(
            facility: facility, results: results, monotonicNanoseconds: started,
            duration: monotonicNanoseconds() - started)
        pass.groups = groups
        return pass
    }
}

extension SysfsMeasurementProblem {
    /// The read error it counts as (`cssd_backend_read_errors_total{kind}`); nil for what the
    /// machine or kernel is like (no CMG, no data for a CMG before 6.10, a moving timestamp).
    var readErrorKind: SysfsProblemLog.Kind? {
        switch self {
        case .missing: return .missing
        case .unreadable: return .unreadable
        case .cmgMalformed, .wrongSize: return .malformed
        case .cmgUnknown, .unsupportedCMG, .noData, .timestampUnstable: return nil
        }
    }
}
