// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import Foundation
import Synchronization
import TestSupport
import Testing

@testable import LinuxSysfs

/// Enabling and disabling the facility through `cm_enable`, the kernel's EIO for a partition
/// without the authorization, the pass per poll tick, and what `/proc` says.
@Suite struct MeasurementFacilityTests {
    /// The kernel's answer to enabling the facility in a partition that is not authorized:
    /// the one thing a file in a temporary directory cannot do, so a test stands in for it.
    struct UnauthorizedPartition: SysfsAttributeWriter {
        func write(_ value: String, to path: String) throws(BackendError) {
            guard path.hasSuffix("/cm_enable") else { return try KernelAttributeWriter().write(value, to: path) }
            throw .io(path: path, operation: "writing '\(value)' to", errno: EIO, message: SysfsFiles.describe(EIO))
        }
    }

    /// Writing `cm_enable` reaches the file, and the pass after it (on the writing thread)
    /// sees what the kernel then shows.
    @Test func enablingWritesCMEnableAndReadsAPass() throws {
        let tree = MeasurementSysfsTests.tree()
        tree.cmEnable(0)
        let backend = try SysfsBackend(root: tree.root, procRoot: tree.procRoot)
        #expect(backend.measureNow().facility == .disabled)
        let enabled = try backend.setMeasurementFacility(enabled: true)
        #expect(tree.read("devices/css0/cm_enable") == "1")
        #expect(enabled.facility == .enabled)
        #expect(backend.lastMeasurement?.facility == .enabled)
        let disabled = try backend.setMeasurementFacility(enabled: false)
        #expect(tree.read("devices/css0/cm_enable") == "0")
        #expect(disabled.facility == .disabled)
    }

    /// EIO on enabling names the missing authorization and where an administrator grants
    /// it, for both kinds of partition; the backend goes on serving.
    @Test func eioOnEnablingNamesTheAuthorization() throws {
        let tree = MeasurementSysfsTests.tree()
        tree.cmEnable(0)
        let backend = try SysfsBackend(root: tree.root, procRoot: tree.procRoot, writer: UnauthorizedPartition())
        do {
            try backend.setMeasurementFacility(enabled: true)
            Issue.record("enabling succeeded in an unauthorized partition")
        } catch {
            let text = error.description
            #expect(text.contains("EIO"))
            #expect(text.contains("Global performance data control"))  // classic LPAR: activation profile
            #expect(text.contains("activation profile"))
            #expect(text.contains("Access global performance data"))  // DPM: Partition Details
            #expect(text.contains("Partition Details"))
            #expect(text.contains(tree.root + "/devices/css0/cm_enable"))
        }
        #expect(tree.read("devices/css0/cm_enable") == "0\n")
        #expect(backend.measureNow().facility == .disabled)
        // The other writes still go to the kernel's files.
        _ = try backend.varyPath(MeasurementSysfsTests.chp40, to: .offline)
        #expect(tree.read("devices/css0/chp0.40/status") == "offline")
    }

    /// Another errno (or EIO on disabling) is not about authorization.
    @Test func otherFailuresAreNotExplainedAsAuthorization() {
        let error = BackendError.io(path: "/sys/x", operation: "writing '1' to", errno: EACCES, message: "EACCES")
        #expect(SysfsBackend.explained(error, enabling: true).description == error.description)
        let eio = BackendError.io(path: "/sys/x", operation: "writing '0' to", errno: EIO, message: "EIO")
        #expect(SysfsBackend.explained(eio, enabling: false).description == eio.description)
    }

    /// The follower makes one pass per poll tick, on its own thread; without a poll interval
    /// there is none, whatever is requested.
    @Test func aPassIsMadePerPollTickAndOnlyThen() throws {
        let tree = MeasurementSysfsTests.tree()
        tree.measurement(
            "40", cmg: 2, entry: MeasurementSysfsTests.cue(timestamp: 1, [1, 2, 3, 4, 5, 6, 7]), extended: [])
        let polled = try SysfsBackend(root: tree.root, procRoot: tree.procRoot)
        polled.startFollowing(FollowOptions(pollInterval: .milliseconds(20))) { _ in }
        defer { polled.stopFollowing() }
        let deadline = ContinuousClock.now + .seconds(60)
        while polled.lastMeasurement == nil && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.01) }
        let first = try #require(polled.lastMeasurement)
        #expect(try MeasurementSysfsTests.blocks(first, MeasurementSysfsTests.chp40).timestamp == 1)
        // A later tick picks up the firmware's next update.
        tree.writeBytes(
            "devices/css0/chp0.40/measurement", MeasurementSysfsTests.cue(timestamp: 2, [1, 2, 3, 4, 5, 6, 7]))
        while (try? polled.lastMeasurement.map { try MeasurementSysfsTests.blocks($0, MeasurementSysfsTests.chp40) })??
            .timestamp != 2 && ContinuousClock.now < deadline
        {
            Thread.sleep(forTimeInterval: 0.01)
        }
        #expect(
            try MeasurementSysfsTests.blocks(#require(polled.lastMeasurement), MeasurementSysfsTests.chp40).timestamp
                == 2)

        // Without polling, a requested re-read (inotify, the kernel log) reads the chpid, and
        // no measurement: the start-up reading's pass stays the only one.
        let unpolled = try SysfsBackend(root: tree.root, procRoot: tree.procRoot)
        let delivered = Mutex(0)
        unpolled.startFollowing(FollowOptions(pollInterval: nil)) { _ in delivered.withLock { $0 += 1 } }
        defer { unpolled.stopFollowing() }
        tree.write("devices/css0/chp0.40/status", "offline\n")
        unpolled.requestReread([.channelPath(MeasurementSysfsTests.chp40)])
        while delivered.withLock({ $0 }) == 0 && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(delivered.withLock { $0 } == 1)
        #expect(unpolled.follower.inspect { $0.measurements.passes } == 1)
    }

    // MARK: /proc

    static let sysinfo = """
        Manufacturer:         IBM
        Type:                 3931
        LIC Identifier:       0123456789abcdef
        Model:                A01              LA1
        Sequence Code:        00000000000ABC12
        Plant:                02

        LPAR Number:          47
        LPAR Characteristics: Shared
        LPAR Name:            LP47\(String(repeating: " ", count: 4))
        LPAR Adjustment:      250
        LPAR Extended Name:   production-db-partition
        LPAR UUID:            01234567-89ab-cdef-0123-456789abcdef

        VM00 Name:            GUEST01
        VM00 Control Program: z/VM    7.3.0

        """

    @Test func sysinfoGivesThePartition() {
        let info = SystemInformation(parsing: Self.sysinfo)
        #expect(info.partitionName == "LP47")
        #expect(info.partitionNumber == 47)
        #expect(info.partitionExtendedName == "production-db-partition")
        #expect(info.machineType == "3931")
        #expect(info.sequenceCode == "00000000000ABC12")
        // A blank extended name (a classic LPAR without one) is none.
        #expect(
            SystemInformation(parsing: "LPAR Name:            LP01    \nLPAR Extended Name:   \n").partitionExtendedName
                == nil)
        // A KVM guest's sysinfo (no LPAR lines) names no partition.
        #expect(
            SystemInformation(parsing: "Manufacturer:         IBM\nVM00 Name:            GUEST\n").partitionName == nil)
    }

    @Test func kernelReleasesAndTheirCMGNotation() {
        #expect(KernelRelease(parsing: "6.6.0-28-generic")?.cmgRadix == 16)
        #expect(KernelRelease(parsing: "6.7.0")?.cmgRadix == 10)
        #expect(KernelRelease(parsing: "6.13.0-rc1\n")?.cmgRadix == 10)
        #expect(KernelRelease(parsing: "5.14.0-503.el9.s390x")?.cmgRadix == 16)
        #expect(KernelRelease(parsing: "7.0") == KernelRelease(major: 7, minor: 0))
        #expect(KernelRelease(parsing: "garbage") == nil)
        #expect(KernelRelease(parsing: "6") == nil)
    }

    /// `--proc-root` moves `/proc` as the backend's root moves `/sys`.
    @Test func theBackendReadsProcUnderItsRoot() throws {
        let tree = MeasurementSysfsTests.tree(kernel: .linux6_6)
        tree.write("proc/sysinfo", Self.sysinfo)
        let backend = try SysfsBackend(root: tree.root, procRoot: tree.procRoot)
        #expect(backend.systemInformation?.partitionName == "LP47")
        #expect(backend.kernelRelease?.cmgRadix == 16)
        let bare = try SysfsBackend(root: tree.root, procRoot: tree.root + "/nowhere")
        #expect(bare.systemInformation == nil && bare.kernelRelease == nil)
    }
}
