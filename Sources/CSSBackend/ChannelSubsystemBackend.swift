// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import ChannelMeasurement

/// The source of truth behind the commands: the in-memory model, or a real machine seen
/// through Linux sysfs. Queries read `subsystem`, the backend's current view (for a real
/// machine: the last observation). Operations change the source and return what changed, in
/// the model's `PathChange` form, so that replies and path events do not depend on the backend.
/// A backend that cannot do an operation (sysfs has no CRWs to store) says so with
/// `BackendError.unsupported`.
///
/// Backends run on the server's event loop, one call at a time.
package protocol ChannelSubsystemBackend: AnyObject {
    /// Which source this is: the model, or a real machine.
    var kind: BackendKind { get }
    /// The current view.
    var subsystem: Subsystem { get }
    /// What the source says about a path beyond the model (sysfs `cmg`, `chid_external`);
    /// nil when it says nothing more.
    func details(of path: ChannelPathID) -> ChannelPathDetails?
    /// Devices without a subchannel (Linux: `cssN/defunct/`), in bus-id order; the model has
    /// none (the default).
    var orphanedDevices: [OrphanedDevice] { get }
    /// Per DASD subchannel: what the DASD driver says about the device's paths
    /// (DASDPathHealth.swift); empty for a source without DASD drivers (the default).
    var dasdPathHealth: [SubchannelID: DASDPathHealth] { get }
    /// `dasdPathHealth` rolled up per chpid (`DASDChannelPathSummary.rollUp`): the default
    /// computes it, O(DASDs); an observed backend keeps it until its DASDs change.
    var dasdChannelPathSummaries: [ChannelPathID: DASDChannelPathSummary] { get }
    /// A `path_reset` of device `device`'s paths `chpids` (all the driver disabled: nil),
    /// planned: checked now; the returned part writes the mask and re-reads the device (it
    /// may block, so the server runs it off the event loop) and returns that reading.
    /// - Throws: `.unsupported` (the default), `.model(.unknownDevice)`-like errors as
    ///   `BackendError`.
    func planDASDPathReset(_ device: DeviceID, chpids: [ChannelPathID]?) throws(BackendError)
        -> @Sendable () -> PendingWrite.Outcome
    /// A fault the DASD driver of `device` sees on path `chpid` (`Subsystem.injectDASDPathFault`)
    /// at model time `time` (µs): the model only; a real host's faults happen to it.
    /// - Throws: `.unsupported` (the default), `.model(_)` for an unknown device or chpid, a
    ///   device that is not a DASD, a path it does not have.
    func injectDASDPathFault(
        _ device: DeviceID, chpid: ChannelPathID, fault: DASDPathFault, count: UInt32, at time: Int64
    ) throws(BackendError) -> DASDPathFaultResult

    /// A vary (Linux `chchp -v`), planned: checked now, written by the write's `perform`
    /// (off the event loop when it may block), finished by `completeWrite`.
    func planVary(_ id: ChannelPathID, to state: VaryState) throws(BackendError) -> PendingWrite
    /// A configure (Linux `chchp -c`; the sysfs write waits for SCLP), planned like a vary.
    func planConfigure(_ id: ChannelPathID, to state: ConfigureState) throws(BackendError) -> PendingWrite
    /// Back on the event loop: the write's outcome (its error, if it failed; else the reading
    /// its blocking part made, which the caller has applied first, `ObservedBackend.apply`) and
    /// what changed: the change its reply and events carry.
    func completeWrite(_ write: PendingWrite, _ outcome: PendingWrite.Outcome) throws(BackendError) -> PathChange
    /// A vary planned, performed and completed here and now (blocking, for a real machine;
    /// tools and tests). The default does the three steps; an observed backend also takes the
    /// write's reading as its view.
    func varyPath(_ id: ChannelPathID, to state: VaryState) throws(BackendError) -> PathChange
    /// A configure here and now, as `varyPath(_:to:)` does a vary.
    func configurePath(_ id: ChannelPathID, to state: ConfigureState) throws(BackendError) -> PathChange
    func varyPath(_ id: ChannelPathID, to state: VaryState, subchannel: SubchannelID) throws(BackendError) -> PathChange
    func injectPathFault(_ id: ChannelPathID, _ fault: PathFault) throws(BackendError) -> PathChange
    /// A device and its subchannel appear (`Subsystem.addDevice`); the default refuses (only the
    /// model's configuration is cssd's).
    func addDevice(_ description: Topology.Subchannel) throws(BackendError) -> DeviceChange
    /// A device and its subchannel go (`Subsystem.removeDevice`); the default refuses.
    func removeDevice(_ device: DeviceID) throws(BackendError) -> DeviceChange
    func resetChannelPath(_ id: ChannelPathID) throws(BackendError) -> ResetChannelPathResult
    func modifySubchannel(_ id: SubchannelID, schib: SCHIB) throws(BackendError) -> ModifySubchannelResult
    func storeChannelReportWord() throws(BackendError) -> StoreCRWResult
    /// How the backend's readings of its source go (for metrics); nil for a backend that
    /// reads nothing (the model). Safe to call from any thread; never waits for a reading.
    var readingStats: BackendReadingStats? { get }

    // Channel measurement (issue 21; ChannelMeasurementBackend.swift has the defaults, which
    // say "unsupported").
    /// The facility's state (`css0/cm_enable`). Never blocks.
    var channelMeasurementFacility: ChannelMeasurementFacilityState { get }
    /// Enabling or disabling the facility, planned (`PendingMeasurementSwitch`).
    func planChannelMeasurement(enable: Bool) throws(BackendError) -> PendingMeasurementSwitch
    /// Back on the event loop: the switch's outcome; returns the facility's state after it.
    func completeChannelMeasurement(_ write: PendingMeasurementSwitch, _ outcome: PendingMeasurementSwitch.Outcome)
        throws(BackendError) -> ChannelMeasurementFacilityState
    /// Every chpid's (nil) or the selected chpids' measurements, in chpid order, as of `time`
    /// (the model advances its counters to it; a real machine's backend reports its last
    /// reading and ignores it). Never blocks.
    /// - Throws: `.model(.unknownChannelPath)` for a selected chpid the source does not have.
    func channelMeasurements(_ chpids: [ChannelPathID]?, at time: MeasurementTime) throws(BackendError)
        -> [ChannelMeasurementReport]
    /// Sets the load on a model chpid from `time` on (chpstat metric keys, `ChannelLoad`);
    /// returns the load now in force.
    func setChannelLoad(_ chpid: ChannelPathID, _ load: [String: Double], at time: MeasurementTime)
        throws(BackendError) -> ChannelLoad
    /// The partition's name as the HMC shows it (`/proc/sysinfo` `LPAR Name`; the model's own),
    /// for the metrics' `partition` label; nil when unknown. Never blocks.
    var partitionName: String? { get }
    /// The device driver bound to the device of subchannel `id` (Linux: the basename of the
    /// ccw device's `driver` link, e.g. `dasd-eckd`), as last read; nil when unknown or none
    /// (the model binds no drivers: the default). Never blocks.
    func deviceDriver(of id: SubchannelID) -> String?
    /// The availability of the device behind `subchannel` as Linux's ccw device `availability`
    /// attribute states it (`DeviceAvailability`), as last read; nil for a subchannel without a
    /// device. The model has no device states: `.good` for every device (the default). Never
    /// blocks.
    func deviceAvailability(of subchannel: Subchannel) -> DeviceAvailability?
    /// vfio-ccw passthrough as the host shows it (HostPassthrough.swift); nil for a source
    /// without one (the model keeps its guests in `VFIOCCW.Guests`: the default). Never blocks.
    var hostPassthrough: HostPassthroughView? { get }
}

/// A ccw device's `availability` attribute (drivers/s390/cio/device.c `available_show`, which
/// lscss --avail prints): an orphan is `noDevice`; a boxed device `boxed`; a disconnected or
/// not-operational one `noPath` when its subchannel has no logical path left, else `noDevice`;
/// every other state `good`.
package enum DeviceAvailability: String, Hashable, Sendable, CaseIterable {
    case good
    case boxed
    case noPath = "no path"
    case noDevice = "no device"
}

extension ChannelSubsystemBackend {
    package var readingStats: BackendReadingStats? { nil }
    package var partitionName: String? { nil }
    package func deviceDriver(of id: SubchannelID) -> String? { nil }
    package func deviceAvailability(of subchannel: Subchannel) -> DeviceAvailability? {
        subchannel.deviceID != nil && subchannel.hasDevice ? .good : nil
    }
    package var hostPassthrough: HostPassthroughView? { nil }
    /// `model` or `linux-sysfs` (`--backend`), for messages.
    package var name: String { kind.rawValue }
}

/// The kinds of source behind the commands, by their `--backend` names; the kind says who owns
/// the channel subsystem's state.
package enum BackendKind: String, Sendable, CaseIterable {
    /// The in-memory model: cssd owns the state (`--state-dir` keeps it by recording the
    /// commands that change it).
    case model
    /// A real machine through Linux sysfs: the host owns the state and stays the truth; cssd
    /// reads it and writes to it, and keeps only what it owns itself (guests).
    case linuxSysfs = "linux-sysfs"
}

/// The health of a backend that reads its source periodically (linux-sysfs: the poll tick,
/// API/linux-sysfs.md "Change detection"), as the metrics endpoint reports it.
package struct BackendReadingStats: Hashable, Sendable {
    /// Seconds the last completed poll tick took; nil before the first tick.
    package var lastReadingDuration: Double?
    /// Unix time (seconds) at which the last reading without a read error completed: the
    /// start-up reading, then each clean poll tick (whether or not anything changed).
    package var lastGoodReading: Double
    /// Read errors so far, by kind (`missing`: a file or directory that should be there is
    /// not; `unreadable`: a read or listing failed; `malformed`: contents not understood).
    /// Every kind is present, at 0 until it occurs. Counted per occurrence, every reading.
    package var readErrors: [String: Int]
    /// Seconds between poll ticks; nil when polling is off (nothing then advances
    /// `lastGoodReading`).
    package var pollInterval: Double?
    /// Lines of the followed kernel log so far, by outcome (`acted`: a cio or DASD message
    /// that triggered a re-read; `ignored`; `garbled`: a cio message that does not parse;
    /// `too_long`; `lost`: /dev/kmsg records overwritten before they were read). nil when no
    /// kernel log is followed.
    package var kernelLogLines: [String: Int]?

    package init(
        lastReadingDuration: Double? = nil, lastGoodReading: Double, readErrors: [String: Int] = [:],
        pollInterval: Double? = nil
    ) {
        self.lastReadingDuration = lastReadingDuration
        self.lastGoodReading = lastGoodReading
        self.readErrors = readErrors
        self.pollInterval = pollInterval
    }
}

extension ChannelSubsystemBackend {
    package var orphanedDevices: [OrphanedDevice] { [] }
    package var dasdPathHealth: [SubchannelID: DASDPathHealth] { [:] }
    package var dasdChannelPathSummaries: [ChannelPathID: DASDChannelPathSummary] {
        DASDChannelPathSummary.rollUp(dasdPathHealth.values)
    }
    package func planDASDPathReset(_ device: DeviceID, chpids: [ChannelPathID]?) throws(BackendError)
        -> @Sendable () -> PendingWrite.Outcome
    {
        throw .unsupported(
            operation: "dasd-path-reset", backend: name, reason: "the source has no DASD device driver")
    }
    package func addDevice(_ description: Topology.Subchannel) throws(BackendError) -> DeviceChange {
        throw .unsupported(
            operation: "add-device", backend: name, reason: "the machine's I/O configuration is not cssd's to change")
    }
    package func removeDevice(_ device: DeviceID) throws(BackendError) -> DeviceChange {
        throw .unsupported(
            operation: "remove-device", backend: name, reason: "the machine's I/O configuration is not cssd's to change"
        )
    }
    package func injectDASDPathFault(
        _ device: DeviceID, chpid: ChannelPathID, fault: DASDPathFault, count: UInt32, at time: Int64
    ) throws(BackendError) -> DASDPathFaultResult {
        throw .unsupported(
            operation: "inject-dasd-path-fault", backend: name,
            reason: "faults happen to the machine; they cannot be injected through sysfs")
    }
}

/// A device that lost its subchannel: Linux keeps its ccw device under `cssN/defunct/`
/// (drivers/s390/cio/device.c, the orphanage) until it is set offline, and lscss lists it with
/// subchannel `n/a`.
package struct OrphanedDevice: Hashable, Sendable {
    package var id: DeviceID
    /// Device and control-unit type and model (`devtype` `n/a` is 0/0).
    package var devType: UInt16
    package var devModel: UInt8
    package var cuType: UInt16
    package var cuModel: UInt8
    /// The device's `online` reads 1.
    package var online: Bool

    package init(id: DeviceID, devType: UInt16, devModel: UInt8, cuType: UInt16, cuModel: UInt8, online: Bool) {
        self.id = id
        self.devType = devType
        self.devModel = devModel
        self.cuType = cuType
        self.cuModel = cuModel
        self.online = online
    }
}

/// Facts about a channel path that only a real machine reports.
package struct ChannelPathDetails: Hashable, Sendable {
    /// Channel-measurement group; nil when unknown.
    package var cmg: Int?
    /// Whether the path is shared; nil when unknown (sysfs `unknown`).
    package var shared: Bool?
    /// Whether `pchid` is a physical channel id (else an internal one); nil without a chid.
    package var chidExternal: Bool?
    /// False when the source could not tell the configure state (Linux: the `configure` read
    /// fails or is empty, as in a KVM guest; lschp prints `-`); the path's `configure` is then
    /// the last known state, or not-recognized.
    package var configureKnown: Bool

    package init(cmg: Int? = nil, shared: Bool? = nil, chidExternal: Bool? = nil, configureKnown: Bool = true) {
        self.cmg = cmg
        self.shared = shared
        self.chidExternal = chidExternal
        self.configureKnown = configureKnown
    }
}

package enum BackendError: Error, Sendable, CustomStringConvertible {
    /// The model refused (unknown id, a state that cannot be requested, ...).
    case model(ModelError)
    /// MSCH refused the SCHIB (operand exception).
    case programInterruption(ProgramInterruption)
    /// The backend has no such operation.
    case unsupported(operation: String, backend: String, reason: String)
    /// The source refused: a file that could not be written or read, with the errno.
    case io(path: String, operation: String, errno: Int32, message: String)
    /// The model's channel-measurement facility refused (not authorized, a load that does not
    /// fit the CMG).
    case measurement(MeasurementFacilityError)

    package var description: String {
        switch self {
        case .model(let error): return error.description
        case .programInterruption(let interruption): return interruption.description
        case .unsupported(let operation, let backend, let reason):
            return "\(operation) is not supported by the \(backend) backend: \(reason)"
        case .io(let path, let operation, _, let message): return "\(operation) \(path): \(message)"
        case .measurement(let error): return error.description
        }
    }
}

/// Where an observed backend should read again.
package enum ObservationTarget: Hashable, Sendable {
    /// A channel path's attributes, and every subchannel that has it installed.
    case channelPath(ChannelPathID)
    /// One subchannel's attributes.
    case subchannel(SubchannelID)
    /// The subchannels with this number in any subchannel set (a channel report names only
    /// the number).
    case subchannelNumber(UInt16)
    /// Entries may have come or gone: list the tree and read it again if they did.
    case layout
}

/// How an observed backend follows the machine.
package struct FollowOptions: Sendable {
    /// Read every channel path's attributes this often; nil: never on a timer (the sweep
    /// is off too).
    package var pollInterval: Duration?
    /// Every subchannel is read at least once within this interval, a bounded share per
    /// poll tick.
    package var sweepInterval: Duration
    /// A kernel log to follow for channel-path messages (`/dev/kmsg`, a file or a FIFO).
    package var kernelLog: String?
    /// Messages for the server's log: (warning?, text).
    package var log: @Sendable (_ warning: Bool, _ message: String) -> Void

    package init(
        pollInterval: Duration? = .seconds(1), sweepInterval: Duration = .seconds(30), kernelLog: String? = nil,
        log: @escaping @Sendable (_ warning: Bool, _ message: String) -> Void = { _, _ in }
    ) {
        self.pollInterval = pollInterval
        self.sweepInterval = sweepInterval
        self.kernelLog = kernelLog
        self.log = log
    }
}

/// What a reading found of the host's devices beside the model's paths and masks, as of that
/// reading: one value, so that a reading's per-device findings travel (and are added to)
/// together rather than as a growing list of arguments.
package struct ObservedDevices: Hashable, Sendable {
    /// The devices without a subchannel.
    package var orphans: [OrphanedDevice]
    /// The driver bound to each subchannel's device, as of the last full reading.
    package var drivers: [SubchannelID: String]
    /// Per DASD (ccw device bound to dasd-eckd or dasd-fba): its driver's path health.
    package var dasd: [SubchannelID: DASDPathHealth]
    /// Paths the DASD driver stopped using since the previous reading (path events
    /// `driver-disabled-*`).
    package var dasdDisabled: [DASDPathDisabling]
    /// Per device whose `availability` is not `good`, as of the reading's full reading; nil
    /// when this reading read none (the last stands).
    package var availability: [SubchannelID: DeviceAvailability]?
    /// Paths the DASD driver uses again since the previous reading (path events
    /// `driver-enabled`).
    package var dasdEnabled: [DASDPathEnabling]
    /// Subchannels this reading found removed by a purge of `/proc/cio_ignore` (their device
    /// numbers on the ignore list), as the previous view had them: a `subchannels-purged`
    /// path event per chpid they used.
    package var purged: [Subchannel]

    package init(
        orphans: [OrphanedDevice] = [], drivers: [SubchannelID: String] = [:],
        dasd: [SubchannelID: DASDPathHealth] = [:], dasdDisabled: [DASDPathDisabling] = [],
        availability: [SubchannelID: DeviceAvailability]? = nil, dasdEnabled: [DASDPathEnabling] = [],
        purged: [Subchannel] = []
    ) {
        self.dasdEnabled = dasdEnabled
        self.purged = purged
        self.orphans = orphans
        self.drivers = drivers
        self.dasd = dasd
        self.dasdDisabled = dasdDisabled
        self.availability = availability
    }
}

/// A reading computed off the event loop: the new view and how it differs from the last one.
package struct ObservedUpdate: Sendable {
    /// Increases with every reading; a view is never replaced by an older one.
    package let generation: UInt64
    package let subsystem: Subsystem
    package let details: [ChannelPathID: ChannelPathDetails]
    /// The changes from the previous reading, in chpid order.
    package let changes: [PathChange]
    /// The chpid a vary or configure wrote before this reading (the reading its blocking part
    /// returns), whose change is its reply's.
    package let write: ChannelPathID?
    /// Subchannels or paths came or went (new directories to watch).
    package let layoutChanged: Bool
    /// The host's devices as of this reading.
    package let devices: ObservedDevices

    package var orphans: [OrphanedDevice] { devices.orphans }
    package var drivers: [SubchannelID: String] { devices.drivers }
    package var dasd: [SubchannelID: DASDPathHealth] { devices.dasd }
    package var dasdDisabled: [DASDPathDisabling] { devices.dasdDisabled }
    package var dasdEnabled: [DASDPathEnabling] { devices.dasdEnabled }
    package var purged: [Subchannel] { devices.purged }
    package var availability: [SubchannelID: DeviceAvailability]? { devices.availability }

    package init(
        generation: UInt64, subsystem: Subsystem, details: [ChannelPathID: ChannelPathDetails], changes: [PathChange],
        write: ChannelPathID? = nil, layoutChanged: Bool = false, devices: ObservedDevices = ObservedDevices()
    ) {
        self.generation = generation
        self.subsystem = subsystem
        self.details = details
        self.changes = changes
        self.write = write
        self.layoutChanged = layoutChanged
        self.devices = devices
    }

    /// The same reading without its write (delivered as observed: its reply was dropped).
    package func withoutWrite() -> ObservedUpdate {
        ObservedUpdate(
            generation: generation, subsystem: subsystem, details: details, changes: changes, write: nil,
            layoutChanged: layoutChanged, devices: devices)
    }
}

/// A backend that mirrors a machine others change too. It reads the machine off the event
/// loop (`startFollowing`) and hands each computed difference to `deliver`; the server applies
/// it on its loop with `apply` and publishes the changes.
package protocol ObservedBackend: ChannelSubsystemBackend {
    /// Starts the reading threads. `deliver` is called from them, in generation order.
    func startFollowing(_ options: FollowOptions, deliver: @escaping @Sendable (ObservedUpdate) -> Void)
    /// Stops them (a read in progress finishes first; a blocked kernel-log read is abandoned).
    func stopFollowing()
    /// Asks for an immediate re-read (inotify reported a write); returns at once.
    func requestReread(_ targets: [ObservationTarget])
    /// Takes an update as the view (one older than the view is not): the view before it and
    /// the changes to publish as observed, all of the update's but the written chpid's
    /// (`update.write`), which `completeWrite` returns for its command's reply and events.
    func apply(_ update: ObservedUpdate) -> (before: Subsystem, changes: [PathChange])
    /// Directories whose files others write (for inotify), with what to re-read for each.
    var watchedDirectories: [(path: String, target: ObservationTarget)] { get }
}

/// A vary or configure of a channel path, the one shape every backend writes in: planned on
/// the event loop, `perform`ed (a sysfs `configure` write returns when the kernel's SCLP
/// request has completed, so the server runs it off its event loop), then completed back on
/// the loop. The model has nothing that blocks: its `perform` is nil and `completeWrite` makes
/// the change.
package struct PendingWrite: Sendable {
    package enum Change: Sendable, Equatable {
        case vary(VaryState)
        case configure(ConfigureState)
    }

    /// What the blocking part returns: its error, or the backend's reading of its source made
    /// right after the write (an observed backend re-reads the chpid and its subchannels; nil
    /// when nothing was read).
    package typealias Outcome = Result<ObservedUpdate?, BackendError>

    package let chpid: ChannelPathID
    package let change: Change
    /// The blocking part, on any thread: the write, then the reading of what it changed. It
    /// touches nothing but the source (the file) and the backend's reading side, never the
    /// view the event loop holds. Nil when nothing blocks.
    package let perform: (@Sendable () -> Outcome)?

    package init(
        chpid: ChannelPathID, change: Change, perform: (@Sendable () -> Outcome)?
    ) {
        self.chpid = chpid
        self.change = change
        self.perform = perform
    }
}

extension ChannelSubsystemBackend {
    /// Plans, performs and completes a vary here and now (blocking, for a real machine).
    package func varyPath(_ id: ChannelPathID, to state: VaryState) throws(BackendError) -> PathChange {
        let write = try planVary(id, to: state)
        return try completeWrite(write, write.perform?() ?? .success(nil))
    }

    /// Plans, performs and completes a configure here and now (blocking, for a real machine).
    package func configurePath(_ id: ChannelPathID, to state: ConfigureState) throws(BackendError) -> PathChange {
        let write = try planConfigure(id, to: state)
        return try completeWrite(write, write.perform?() ?? .success(nil))
    }
}
