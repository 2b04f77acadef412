// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import ChannelMeasurement
import Synchronization

/// The linux-sysfs backend's measurements: every pass's readings fed, per chpid, to a
/// `MeasurementTracker` (64-bit running totals, chpstat's metrics over the last interval, or
/// why not), and the facility's state, under a lock of their own: the follower's thread
/// records a pass (one per poll tick), the event loop's query takes the reports without
/// waiting for a reading in progress. Costs O(chpids) per pass and per query.
final class SysfsMeasurements: Sendable {
    private struct State {
        var tracker = MeasurementTracker()
        var lastPass: MeasurementPass?
        /// Why a chpid has no group, when the tracker could only say "no CMG": its `cmg`
        /// file is missing, unreadable or not a number.
        var groupProblems: [ChannelPathID: MeasurementProblem] = [:]
        /// The tracker's problem already logged per chpid, until the chpid recovers.
        var logged: [ChannelPathID: String] = [:]
    }

    private let state = Mutex(State())

    /// The last pass (nil before the first).
    var lastPass: MeasurementPass? { state.withLock { $0.lastPass } }

    /// The facility's state as of the last pass (disabled before the first).
    var facility: ChannelMeasurementFacilityState {
        guard let pass = lastPass else { return .disabled }
        return Self.facility(pass.facility)
    }

    static func facility(_ state: MeasurementFacilityState) -> ChannelMeasurementFacilityState {
        switch state {
        case .enabled: .enabled
        case .disabled: .disabled
        case .unsupported:
            .unsupported(
                reason: "no css0/cm_enable: this kernel or machine has no channel-path measurement "
                    + "(it needs an LPAR or DPM partition)")
        case .unreadable(let reason): .unsupported(reason: reason)
        }
    }

    /// Records `pass`: one reading per chpid of `chpids` (each with the `cmg` and `shared` its
    /// attributes' reading found), at the pass's monotonic time. Chpids no longer there are
    /// forgotten. A problem the tracker finds in the data (a timestamp that did not move, a
    /// counter that went backwards, samples too far apart) is logged through `note` once per
    /// chpid until the chpid is available again.
    func record(
        _ pass: MeasurementPass, chpids: [(id: ChannelPathID, cmg: Int?, shared: Bool?)], note: (String) -> Void
    ) {
        let time = Double(pass.monotonicNanoseconds) / 1e9
        state.withLock { state in
            state.lastPass = pass
            let present = Set(chpids.map(\.id))
            for id in state.tracker.chpids where !present.contains(id) { state.tracker.remove(id) }
            for (id, cmg, shared) in chpids {
                let (reading, groupProblem) = Self.reading(id, cmg: cmg, shared: shared, in: pass)
                state.groupProblems[id] = groupProblem
                state.tracker.record(reading, at: time)
                let problem = state.tracker.report(id)?.problem
                switch problem {
                case .timestampDidNotMove?, .counterWentBackwards?, .intervalTooLong?:
                    if state.logged[id] != problem!.reason {
                        state.logged[id] = problem!.reason
                        note("channel path \(id): measurement not available: \(problem!)")
                    }
                case nil: state.logged[id] = nil
                default: break
                }
            }
        }
    }

    /// The reports of `chpids` (in the order given): the tracker's, with the reason for a
    /// chpid without a group; a chpid not read yet says so.
    func reports(_ chpids: [(id: ChannelPathID, cmg: Int?, shared: Bool?)]) -> [ChannelMeasurementReport] {
        state.withLock { state in
            chpids.map { id, cmg, shared in
                guard var report = state.tracker.report(id) else {
                    return ChannelMeasurementReport(
                        chpid: id, cmgValue: cmg, shared: shared,
                        problem: .missing(
                            file: "measurement",
                            detail: "not read yet (cssd reads the measurement files once per poll tick)"))
                }
                if report.cmgValue == nil, let problem = state.groupProblems[id] { report.problem = problem }
                return report
            }
        }
    }

    /// What the tracker takes for `id` from `pass`, and the reason it has no group when its
    /// `cmg` could not be read (the tracker itself says only "no CMG").
    static func reading(_ id: ChannelPathID, cmg: Int?, shared: Bool?, in pass: MeasurementPass)
        -> (ChannelMeasurementReading, MeasurementProblem?)
    {
        var reading = ChannelMeasurementReading(chpid: id, cmg: pass.groups[id] ?? cmg, shared: shared)
        guard pass.facility == .enabled else {
            if case .unsupported(let reason) = facility(pass.facility) {
                reading.problem = .facilityUnsupported(reason)
            } else {
                reading.problem = .facilityDisabled
            }
            return (reading, nil)
        }
        switch pass.results[id] {
        case .success(let blocks)?:
            reading.cmg = blocks.cmg
            reading.speedBPS = blocks.speedBitsPerSecond
            reading.extendedEntryFile = blocks.hasExtendedFile
            do throws(MeasurementBlockError) {
                if let characteristics = blocks.characteristics {
                    reading.characteristics = try CMCB(bytes: characteristics)
                    reading.fullCharacteristics = blocks.fullCharacteristics
                }
                reading.sample = MeasurementSample(
                    cue: try CUE(bytes: blocks.entry), extendedCUE: try blocks.extendedEntry.map(ExtendedCUE.init))
            } catch {
                reading.problem = .malformed(error)  // not reached: the reader checked the sizes
            }
            return (reading, nil)
        case .failure(let problem)?:
            switch problem {
            case .cmgUnknown:
                reading.cmg = nil
                return (reading, nil)
            case .cmgMalformed(let text):
                reading.cmg = nil
                return (reading, .unreadable(file: "cmg", detail: "reads '\(text)', not a channel-measurement group"))
            case .unsupportedCMG(let value):
                reading.cmg = value
            case .missing(let file) where file.hasSuffix("/cmg"):
                reading.cmg = nil
                return (reading, .missing(file: file, detail: "the kernel shows no group for this channel path"))
            case .unreadable(let file, let code) where file.hasSuffix("/cmg"):
                reading.cmg = nil
                return (reading, .unreadable(file: file, detail: SysfsFiles.describe(code)))
            case .missing(let file):
                reading.problem = .missing(
                    file: file,
                    detail: "the kernel has no such file for this channel path (facility off, or an older kernel)")
            case .unreadable(let file, let code):
                reading.problem = .unreadable(file: file, detail: SysfsFiles.describe(code))
            case .noData(let file):
                reading.problem = .missing(
                    file: file, detail: "0 bytes: no data for this CMG (Linux before 6.10 measures CMG 2 and 3 only)")
            case .wrongSize(let file, let bytes, let expected):
                reading.problem = .malformed(.wrongSize(block: file, expected: expected, actual: bytes))
            case .timestampUnstable(let reads):
                reading.problem = .unreadable(
                    file: "measurement",
                    detail: "its timestamp moved on each of \(reads) reads; no consistent sample this pass")
            }
            return (reading, nil)
        case nil:
            // The chpid came after the pass's list was made: nothing read for it yet.
            reading.problem = .missing(file: "measurement", detail: "not read yet")
            return (reading, nil)
        }
    }
}
