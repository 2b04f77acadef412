// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import PathEvents
import Testing

@testable import MetricsExporter

/// The status page's snapshot: the device list walks the subchannels only as far as the model's
/// redundancy counts say it must (nothing on a healthy machine, however large), and lists the
/// same devices a full walk finds.
struct StatusSnapshotTests {
    static func snapshot(_ subsystem: Subsystem) -> StatusSnapshot {
        StatusSnapshot(
            version: "test", backend: "model", subsystem: subsystem, cssids: subsystem.cssids,
            journal: PathEventJournal(capacity: 16, epoch: "e"))
    }

    /// What a walk of every subchannel finds: devices in use on one operational path or none.
    static func degraded(_ subsystem: Subsystem) -> [String] {
        subsystem.subchannels.filter { $0.operationalPaths.inUse && $0.operationalPaths.count <= 1 }.map {
            $0.id.description
        }
    }

    @Test func aHealthyMachineIsNotWalked() throws {
        let subsystem = try Subsystem(topology: .synthetic(subchannels: 65_536, chpids: 8, paths: 2))
        let snapshot = Self.snapshot(subsystem)
        #expect(snapshot.devices.isEmpty && !snapshot.moreDevices)
        #expect(snapshot.subchannelsScanned == 0)
    }

    @Test func theWalkStopsAtTheLastDegradedDevice() throws {
        // 4 chpids, 2 paths each: even subchannels use 0.00 and 0.01, odd ones 0.02 and 0.03.
        // Varying 0.00 offline leaves every even one on one path; the last of them is 0.0.0012.
        var subsystem = try Subsystem(topology: .synthetic(subchannels: 20, chpids: 4, paths: 2))
        _ = try subsystem.varyPath(ChannelPathID(cssid: 0, chpid: 0), to: .offline)
        let snapshot = Self.snapshot(subsystem)
        #expect(snapshot.devices.map(\.subchannel) == Self.degraded(subsystem))
        #expect(snapshot.devices.count == 10 && snapshot.devices.allSatisfy { $0.operational == 1 })
        #expect(snapshot.subchannelsScanned == 19)  // the last one (0.0.0013) is healthy: not read
        #expect(!snapshot.moreDevices)
    }

    @Test func moreThanTheLimitIsSaid() throws {
        var subsystem = try Subsystem(topology: .synthetic(subchannels: 1000, chpids: 2, paths: 2))
        _ = try subsystem.varyPath(ChannelPathID(cssid: 0, chpid: 1), to: .offline)
        let snapshot = Self.snapshot(subsystem)
        #expect(snapshot.devices.count == StatusSnapshot.deviceLimit && snapshot.moreDevices)
        #expect(
            snapshot.devices.map(\.subchannel) == Array(Self.degraded(subsystem).prefix(StatusSnapshot.deviceLimit)))
        #expect(snapshot.subchannelsScanned == StatusSnapshot.deviceLimit + 1)
    }
}
