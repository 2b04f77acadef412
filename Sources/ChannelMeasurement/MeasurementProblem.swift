// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// Why a chpid's measurements (or its metrics over the last interval) are not available. Each
/// is reported for its chpid only, in the query (`reason`, `description`) and once in the
/// log; the other chpids are served, and no rate is ever computed from such data.
package enum MeasurementProblem: Hashable, Sendable, CustomStringConvertible {
    /// The facility is off (`css0/cm_enable` is 0, as after a Linux boot).
    case facilityDisabled
    /// The source has no channel-measurement facility (no `css0/cm_enable`, not an LPAR or
    /// DPM partition).
    case facilityUnsupported(String)
    /// The path has no CMG (sysfs `cmg` is `unknown`).
    case noGroup
    /// A CMG chpstat does not know (anything but 1-5).
    case unknownGroup(Int)
    /// A block of the wrong size, or a file whose text is not understood.
    case malformed(MeasurementBlockError)
    /// A file the measurement needs is missing (an older kernel, or it vanished): `file`,
    /// with what that means.
    case missing(file: String, detail: String)
    /// A read failed (errno text).
    case unreadable(file: String, detail: String)
    /// Only one sample so far: an interval needs two.
    case firstSample
    /// The entry's counters changed but its timestamp did not: the entry is inconsistent.
    case timestampDidNotMove
    /// A counter is lower than in the previous sample by less than half its range: it went
    /// backwards, which a wrap does not explain.
    case counterWentBackwards(key: String, last: UInt64, current: UInt64)
    /// The samples are further apart than the 24-bit timestamp can tell (it wraps after about
    /// 2147 s; chpstat's `MAX_INTERVAL` is 2140 s).
    case intervalTooLong(seconds: Double)

    /// A short stable name for clients: `facility-disabled`, `facility-unsupported`, `no-cmg`,
    /// `unknown-cmg`, `malformed`, `missing`, `unreadable`, `first-sample`,
    /// `timestamp-did-not-move`, `counter-went-backwards`, `interval-too-long`.
    package var reason: String {
        switch self {
        case .facilityDisabled: "facility-disabled"
        case .facilityUnsupported: "facility-unsupported"
        case .noGroup: "no-cmg"
        case .unknownGroup: "unknown-cmg"
        case .malformed: "malformed"
        case .missing: "missing"
        case .unreadable: "unreadable"
        case .firstSample: "first-sample"
        case .timestampDidNotMove: "timestamp-did-not-move"
        case .counterWentBackwards: "counter-went-backwards"
        case .intervalTooLong: "interval-too-long"
        }
    }

    /// The whole explanation, fit for a QMP reply and a log line.
    package var description: String {
        switch self {
        case .facilityDisabled: "the channel-measurement facility is disabled (enable it with cm_enable)"
        case .facilityUnsupported(let detail): "no channel-measurement facility: \(detail)"
        case .noGroup: "the channel path has no channel-measurement group (cmg unknown)"
        case .unknownGroup(let value): "unknown channel-measurement group \(value) (known: 1-5)"
        case .malformed(let error): error.description
        case .missing(let file, let detail): "\(file) is missing: \(detail)"
        case .unreadable(let file, let detail): "cannot read \(file): \(detail)"
        case .firstSample: "one sample so far; metrics need two"
        case .timestampDidNotMove: "the measurement entry's counters changed but its timestamp did not"
        case .counterWentBackwards(let key, let last, let current):
            "counter \(key) went backwards (\(last) -> \(current)) without a wrap"
        case .intervalTooLong(let seconds):
            "samples \(Int(seconds)) s apart: the 24-bit timestamp wraps after 2147 s, the interval is unknown"
        }
    }

    /// Whether the problem is about the source as a whole or the path's group, after which
    /// the next sample starts a new baseline (no delta is taken across it); transient read
    /// problems keep the baseline, so a later good sample still counts what passed.
    package var breaksBaseline: Bool {
        switch self {
        case .facilityDisabled, .facilityUnsupported, .noGroup, .unknownGroup: true
        default: false
        }
    }
}
