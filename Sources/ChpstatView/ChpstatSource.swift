// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// The state of the channel-measurement facility (sysfs `css0/cm_enable`).
package enum ChpstatFacility: Sendable, Equatable {
    /// No `cm_enable`: not an LPAR or DPM partition, or a kernel without the facility.
    case unsupported
    case disabled
    case enabled
}

/// What chpstat reads once per chpid (`select_chpid`).
package struct ChpstatChannelPath: Sendable, Equatable {
    /// The CMG as the kernel states it; nil for `unknown` (no statistics).
    package var cmg: Int?
    /// The channel-path type.
    package var type: Int
    /// `shared`, as the kernel prints it (0 or 1).
    package var shared: Int
    /// `speed_bps` as printed (`16G`); nil when the kernel has none or says `0` (unknown).
    package var speed: String?

    package init(cmg: Int?, type: Int, shared: Int, speed: String?) {
        self.cmg = cmg
        self.type = type
        self.shared = shared
        self.speed = speed
    }
}

/// A path's characteristics as chpstat reads them (`read_cmcb`): the 32-byte CMCB, or the
/// 20-byte `measurement_chars` placed at word 3 of a zeroed block.
package struct ChpstatCharacteristics: Sendable, Equatable {
    /// 32 bytes.
    package var cmcb: [UInt8]
    /// Whether the whole block was read (`measurement_chars_full`).
    package var full: Bool

    package init(cmcb: [UInt8], full: Bool) {
        self.cmcb = cmcb
        self.full = full
    }
}

/// One read of a path's measurement entries (`read_util`), as the kernel gave them.
package struct ChpstatEntries: Sendable, Equatable {
    /// The CUE: 32 bytes.
    package var cue: [UInt8]
    /// The extended CUE: 64 bytes; nil when the kernel returned less (not an extended path).
    package var extendedCUE: [UInt8]?
    /// The kernel has no `ext_measurement` at all (before Linux 6.10): chpstat warns once.
    package var extendedMissing: Bool

    package init(cue: [UInt8], extendedCUE: [UInt8]?, extendedMissing: Bool = false) {
        self.cue = cue
        self.extendedCUE = extendedCUE
        self.extendedMissing = extendedMissing
    }
}

/// Where `Chpstat` gets its data and its time from (a reference: the clock advances with the
/// source's sleeps, and the output's `meta` reads it): sysfs for chpstat, a cssd socket for
/// `cssctl chpstat`, fixture files in the tests. Every read may fail with a run-time
/// `ChpstatExit` (status 2) that names what could not be read.
///
/// chpstat waits for new data by sleeping (one second at a time, and the interval between
/// iterations); a source decides what a sleep means (a real one sleeps; a fixture moves to its
/// next sample) and what the clock says afterwards.
package protocol ChpstatSource: AnyObject {
    /// `cm_enable`.
    func facility() throws(ChpstatExit) -> ChpstatFacility
    /// Writes `cm_enable`.
    func setFacility(enabled: Bool) throws(ChpstatExit)
    /// A chpid's attributes; nil if it does not exist (`chp0.XX` missing).
    func channelPath(_ chpid: Int) throws(ChpstatExit) -> ChpstatChannelPath?
    /// Its characteristics (read once, for CMG 2-5).
    func characteristics(_ chpid: Int) throws(ChpstatExit) -> ChpstatCharacteristics
    /// Its current measurement entries, consistent with each other.
    func entries(_ chpid: Int) throws(ChpstatExit) -> ChpstatEntries
    /// Waits `seconds`.
    func sleep(seconds: Int)
    /// Seconds since the epoch.
    func now() -> Int
    /// A signal (SIGINT, SIGTERM) asked to stop: chpstat then ends its JSON properly.
    var interrupted: Bool { get }
}

extension ChpstatSource {
    package var interrupted: Bool { false }
}

/// Where `Chpstat` writes, and what it says about its host.
package struct ChpstatEnvironment {
    /// The name errors start with and `--enable` advice names (`chpstat`; `cssctl chpstat`).
    package var programName: String
    /// `meta.version`, `--version`.
    package var version: String
    /// `gethostname()`: `meta.host` prints it whole, the table header up to the first dot.
    package var hostName: String
    /// `strftime(format, localtime(epoch))`.
    package var localTime: (_ epoch: Int, _ format: String) -> String
    /// FMT_NOMETA=1 in the environment: no `meta` object.
    package var hideMeta: Bool
    /// Output to a terminal: ANSI codes in the table (unless `--no-ansi`).
    package var terminal: Bool
    /// Standard output: called with complete pieces (a report, an iteration) to write and flush.
    package var standardOutput: (String) -> Void
    /// Standard error: one message at a time.
    package var standardError: (String) -> Void
    /// More lines for --help (the options of the program around the view).
    package var helpSupplement = ""

    package init(
        programName: String, version: String, hostName: String,
        localTime: @escaping (_ epoch: Int, _ format: String) -> String, hideMeta: Bool, terminal: Bool,
        standardOutput: @escaping (String) -> Void, standardError: @escaping (String) -> Void
    ) {
        self.programName = programName
        self.version = version
        self.hostName = hostName
        self.localTime = localTime
        self.hideMeta = hideMeta
        self.terminal = terminal
        self.standardOutput = standardOutput
        self.standardError = standardError
    }
}
