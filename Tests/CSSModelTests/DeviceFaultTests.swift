// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Testing

@testable import CSSModel

/// Issue 26's model faults: one device's path, several chpids as one incident.
@Suite struct DeviceFaultTests {
    typealias F = Fixtures

    @Test func aDevicePathFaultChangesThatDeviceOnly() throws {
        var model = F.small()
        let device = try DeviceID(parsing: "0.0.1001")  // 0.0.0001 [41 42 40]
        let change = try model.injectDevicePathFault(device, F.chp("0.42"), .permanentError)
        #expect(change.affected.map(\.id) == [F.sch("0.0.0001")])
        #expect(change.crws.isEmpty)
        #expect(!change.pathChanged)
        let pmcw = try #require(model.storeSubchannel(F.sch("0.0.0001")).schib).pmcw
        #expect(pmcw.pam == 0xe0 & ~0x40)
        #expect(pmcw.pom == 0xff & ~0x40)
        #expect(pmcw.pnom == 0x40)
        #expect(model.storeSubchannel(F.sch("0.0.0001")).schib?.scsw.pathNotOperational == true)
        // The neighbour on 0.42 keeps it.
        let neighbour = try #require(model.storeSubchannel(F.sch("0.0.0002")).schib).pmcw
        #expect(neighbour.pam == 0x80 && neighbour.pom == 0xff && neighbour.pnom == 0)
        #expect(F.drain(&model).isEmpty)

        let back = try model.injectDevicePathFault(device, F.chp("0.42"), .recovered)
        #expect(back.affected.count == 1)
        let restored = try #require(model.storeSubchannel(F.sch("0.0.0001")).schib).pmcw
        #expect(restored.pam == 0xe0 && restored.pom == 0xff && restored.pnom == 0)
        // Repeating the recovery changes nothing.
        #expect(try model.injectDevicePathFault(device, F.chp("0.42"), .recovered).altersNothing)
    }

    @Test func aDevicePathFaultNamesWhatIsWrong() {
        var model = F.small()
        #expect(throws: ModelError.unknownDevice(try! DeviceID(parsing: "0.0.9999"))) {
            try model.injectDevicePathFault(try! DeviceID(parsing: "0.0.9999"), F.chp("0.40"), .temporaryError)
        }
        #expect(throws: ModelError.pathNotInstalled(F.chp("0.40"), F.sch("0.0.0002"))) {
            try model.injectDevicePathFault(try! DeviceID(parsing: "0.0.1002"), F.chp("0.40"), .temporaryError)
        }
    }

    @Test func aDevicePathFaultCountsALastPathLost() throws {
        var model = F.small()
        // 0.0.0002 has 0.42 only: its last path goes.
        let change = try model.injectDevicePathFault(try DeviceID(parsing: "0.0.1002"), F.chp("0.42"), .temporaryError)
        #expect(!change.losses.isEmpty)
    }

    @Test func severalChpidsAreOneReportEach() throws {
        var model = F.small()
        let changes = try model.injectPathFaults([F.chp("0.40"), F.chp("0.41")], .permanentError)
        #expect(changes.map(\.chpid) == [F.chp("0.40"), F.chp("0.41")])
        #expect(F.drain(&model) == [0x0406_0040, 0x0406_0041])
    }

    @Test func anUnknownChpidChangesNothing() throws {
        var model = F.small()
        #expect(throws: ModelError.unknownChannelPath(F.chp("0.7f"))) {
            try model.injectPathFaults([F.chp("0.40"), F.chp("0.7f")], .permanentError)
        }
        #expect(F.drain(&model).isEmpty)
    }
}
