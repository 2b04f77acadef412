// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import Foundation
import Synchronization
import TestSupport
import Testing

@testable import LinuxSysfs

/// DASD path health on linux-sysfs (issue 22): `path_masks` of every kind and the knobs, read
/// at start, re-read when the kernel log, the sweep or a write says they may have changed;
/// bad files give "unknown" with the reason; `path_reset` writes the slot mask.
@Suite struct DASDPathHealthTests {
    /// Four paths on 0.0.0004 (DASD 0.0.1004), one of each kind the driver takes out of use;
    /// 0.0.0005 has a hole in its PIM (slots 0 and 2); 0.0.0006 is a ccw device of another
    /// driver; 0.0.0007 a DASD without knob files (an old kernel).
    static func tree() -> SysfsTree {
        let tree = SysfsTree()
        for id in ["40", "41", "42", "43"] { tree.chp(id) }
        tree.sch("0.0.0004", chpids: "40 41 42 43 00 00 00 00", pimpampom: "f0 f0 ff", device: "0.0.1004", vpm: "f0")
        // slot 0 (0.40) in use without zHPF; 1 (0.41) IFCC-disabled; 2 (0.42) miscabled;
        // 3 (0.43) CUIR-quiesced and non-preferred.
        tree.dasd(
            "0.0.0004", device: "0.0.1004", pathMasks: "80 10 20 10 80 40", fcSecurity: "Inconsistent",
            pathSecurity: ["0.40": "Encryption", "0.41": "Unsupported"])
        tree.sch("0.0.0005", chpids: "40 00 42 00 00 00 00 00", pimpampom: "a0 a0 ff", device: "0.0.1005", vpm: "a0")
        tree.dasd("0.0.0005", device: "0.0.1005", driver: "dasd-fba", pathMasks: "a0 00 20 00 00 00")
        tree.sch("0.0.0006", chpids: "41 00 00 00 00 00 00 00", pimpampom: "80 80 ff", device: "0.0.1006")
        tree.write("bus/ccw/drivers/qeth/.keep", "")
        try! FileManager.default.createSymbolicLink(
            atPath: tree.root + "/devices/css0/0.0.0006/0.0.1006/driver",
            withDestinationPath: "../../../../bus/ccw/drivers/qeth")
        tree.sch("0.0.0007", chpids: "43 00 00 00 00 00 00 00", pimpampom: "80 80 ff", device: "0.0.1007", vpm: "80")
        tree.dasd(
            "0.0.0007", device: "0.0.1007", pathMasks: "80 00 00 00 00 00", autodisable: nil, threshold: nil,
            interval: nil, hpf: nil, fcSecurity: nil)
        return tree
    }

    @Test func everyMaskKindIsReadPerPathAndRolledUpPerChpid() throws {
        let tree = Self.tree()
        let backend = try SysfsBackend(root: tree.root)
        let health = backend.dasdPathHealth
        #expect(Set(health.keys) == [sch("0.0.0004"), sch("0.0.0005"), sch("0.0.0007")])  // not the qeth device
        let dasd = try #require(health[sch("0.0.0004")])
        #expect(dasd.driver == "dasd-eckd" && dasd.online)
        #expect(
            dasd.masks == DASDPathMasks(opm: 0x80, nppm: 0x10, cablepm: 0x20, cuirpm: 0x10, hpfpm: 0x80, ifccpm: 0x40))
        #expect(dasd.paths.map(\.chpid) == [chp("0.40"), chp("0.41"), chp("0.42"), chp("0.43")])
        #expect(dasd.paths.map(\.inUse) == [true, false, false, false])
        #expect(dasd.paths.map(\.noHPF) == [true, false, false, false])
        #expect(dasd.paths.map(\.disabledBecause) == [[], [.ifccThreshold], [.miscabled], [.cuirQuiesced]])
        #expect(dasd.paths.map(\.nonPreferred) == [false, false, false, true])
        #expect(dasd.autodisable == true && dasd.threshold == 256 && dasd.interval == 300 && dasd.hpf == true)
        #expect(dasd.fcSecurity == "Inconsistent")
        #expect(dasd.pathFCSecurity == [chp("0.40"): "Encryption", chp("0.41"): "Unsupported"])
        #expect(dasd.problems.isEmpty)

        // A PIM with a hole: slot 2 is 0.42 (bit 0x20), as Linux numbers slots.
        let fba = try #require(health[sch("0.0.0005")])
        #expect(fba.driver == "dasd-fba")
        #expect(fba.paths.map(\.chpid) == [chp("0.40"), chp("0.42")])
        #expect(fba.paths.map(\.disabledBecause) == [[], [.miscabled]])
        #expect(fba.slotMask(of: [chp("0.42")]) == 0x20)

        // No knob files: unknown, each with its reason, and the masks still served.
        let old = try #require(health[sch("0.0.0007")])
        #expect(old.masks != nil && old.autodisable == nil && old.threshold == nil && old.fcSecurity == nil)
        #expect(old.problems.contains { $0.hasSuffix("path_threshold: missing") })

        let rollUp = DASDChannelPathSummary.rollUp(health.values)
        #expect(rollUp[chp("0.40")]?.devices == 2 && rollUp[chp("0.40")]?.inUse == 2 && rollUp[chp("0.40")]?.noHPF == 1)
        #expect(rollUp[chp("0.41")]?.ifccDisabled == 1 && rollUp[chp("0.41")]?.devices == 1)  // qeth not counted
        #expect(rollUp[chp("0.42")]?.miscabled == 2)
        #expect(rollUp[chp("0.43")]?.cuirQuiesced == 1 && rollUp[chp("0.43")]?.nonPreferred == 1)
        #expect(rollUp[chp("0.43")]?.devices == 2 && rollUp[chp("0.43")]?.inUse == 1)
    }

    /// Bad input: a `path_masks` of the wrong format, knobs that are not numbers or known
    /// values give nil with the reason, never a guessed value; the other DASDs are served.
    @Test func malformedFilesAreUnknownWithTheirReason() throws {
        for bad in [
            "ff ff ff", "zz 00 00 00 00 00", "f0 00 00 00 00 00 00", "f0  00 00 00 00 00", "0f0 00 00 00 00 0", "",
        ] {
            #expect(DASDPathMasks(parsing: bad[...]) == nil, "\(bad)")
            #expect(Array(bad.utf8).withUnsafeBytes { DASDPathMasks(bytes: $0) } == nil, "\(bad)")  // the sweep's
        }
        #expect(DASDPathMasks(parsing: "f0 00 00 00 00 00\n") != nil)
        for good in ["80 10 20 10 80 40\n", "FF 0a 00 00 00 01"] {
            #expect(Array(good.utf8).withUnsafeBytes { DASDPathMasks(bytes: $0) } == DASDPathMasks(parsing: good[...]))
            #expect(DASDPathMasks(parsing: good[...]) != nil)
        }
        let tree = Self.tree()
        tree.write("devices/css0/0.0.0004/0.0.1004/path_masks", "f0 00 00\n")
        tree.write("devices/css0/0.0.0004/0.0.1004/path_threshold", "lots\n")
        tree.write("devices/css0/0.0.0004/0.0.1004/path_autodisable", "2\n")
        tree.write("devices/css0/0.0.0004/0.0.1004/fc_security", "Bogus\n")
        let backend = try SysfsBackend(root: tree.root)
        let dasd = try #require(backend.dasdPathHealth[sch("0.0.0004")])
        #expect(dasd.masks == nil && dasd.paths.isEmpty)
        #expect(dasd.threshold == nil && dasd.autodisable == nil && dasd.fcSecurity == nil)
        #expect(dasd.interval == 300)  // what could be read is served
        #expect(dasd.problems.contains { $0.contains("path_masks: 'f0 00 00' is not six two-digit hex bytes") })
        #expect(dasd.problems.contains { $0.contains("path_threshold: 'lots' is not a decimal count") })
        #expect(dasd.problems.contains { $0.contains("path_autodisable: '2' is not 0 or 1") })
        #expect(dasd.problems.contains { $0.contains("fc_security: 'Bogus' is not a known fc_security value") })
        #expect(backend.dasdPathHealth[sch("0.0.0005")]?.masks != nil)
        // Unknown masks count as unknown for every installed path, not as any state.
        let rollUp = DASDChannelPathSummary.rollUp(backend.dasdPathHealth.values)
        #expect(rollUp[chp("0.41")]?.unknown == 1 && rollUp[chp("0.41")]?.devices == 0)
    }

    /// A device directory that vanishes is "gone", not a half-read value; the mirror reads the
    /// tree's layout again and the rest is served.
    @Test func aVanishingDeviceDirectoryIsNotAValue() throws {
        let tree = Self.tree()
        let backend = try SysfsBackend(root: tree.root)
        try FileManager.default.removeItem(atPath: tree.root + "/devices/css0/0.0.0004/0.0.1004")
        #expect(
            DASDReader.read(subchannel: tree.root + "/devices/css0/0.0.0004", device: "0.0.1004", cssid: 0) == .gone)
        let update = try #require(
            backend.follower.withMirror { $0.reread(paths: [], subchannels: [sch("0.0.0004")]) })
        // The full reading that followed has the subchannel without its device, and no DASD.
        #expect(update.subsystem.subchannel(sch("0.0.0004"))?.hasDevice == false)
        #expect(update.dasd[sch("0.0.0004")] == nil && update.dasd[sch("0.0.0005")] != nil)
    }

    /// The sweep reads `path_masks` of the DASDs in its share (one file each), and every
    /// file of a device whose masks changed.
    @Test func theSweepSeesAMaskChangeNothingElseAnnounces() throws {
        let tree = Self.tree()
        let backend = try SysfsBackend(root: tree.root)
        let before = backend.follower.inspect { ($0.dasdMaskReads, $0.dasdDeviceReads) }
        #expect(backend.follower.withMirror { $0.sweep(count: 16) } == nil)  // nothing changed
        let idle = backend.follower.inspect { ($0.dasdMaskReads, $0.dasdDeviceReads) }
        #expect(idle.0 - before.0 == 3 && idle.1 == before.1)  // three DASDs: one file each
        tree.write("devices/css0/0.0.0005/0.0.1005/path_masks", "80 00 20 00 00 20\n")
        let update = try #require(backend.follower.withMirror { $0.sweep(count: 16) })
        #expect(update.dasd[sch("0.0.0005")]?.paths.map(\.disabledBecause) == [[], [.ifccThreshold, .miscabled]])
        // What is new is the IFCC disabling of 0.42 (it was miscabled already): one path event.
        #expect(
            update.dasdDisabled == [
                DASDPathDisabling(chpid: chp("0.42"), subchannel: sch("0.0.0005"), reason: .ifccThreshold)
            ])
        #expect(backend.follower.inspect { $0.dasdDeviceReads } == idle.1 + 1)
    }

    @Test func dasdKernelLogLinesNameTheDevice() {
        let device = try! DeviceID(parsing: "0.0.1004")
        let cases: [(String, KernelLogLine.Parsed)] = [
            (
                "3,812,1234567,-;dasd-eckd 0.0.1004: Path 0.41 (pathmask 40) is disabled - IFCC threshold exceeded",
                .trigger(.device(device))
            ),
            (
                "[ 12.5] dasd-eckd 0.0.1004: Last path 0.40 (pathmask 80) is operational despite excessive IFCCs",
                .trigger(.device(device))
            ),
            ("dasd-eckd 0.0.1004: No operational channel path is left for the device", .trigger(.device(device))),
            ("dasd-fba 0.0.1004: No verified channel paths remain for the device", .trigger(.device(device))),
            (
                "dasd-eckd 0.0.1004: Not all channel paths lead to the same device, path 42 leads to device IBM.3990.x instead of IBM.3990.y",
                .trigger(.device(device))
            ),
            ("dasd-eckd 0.0.1004: A channel path to the device has become operational", .trigger(.device(device))),
            ("dasd-eckd 0.0.zz04: No operational channel path is left for the device", .garbled),
            ("dasd-eckd 0.0.1004: New DASD 3390/0C (CU 3990/01) with 10017 cylinders", .ignored),
        ]
        for (line, expected) in cases { #expect(KernelLogLine.parse(line[...]) == expected, "\(line)") }
    }

    /// The kernel-log line of a path disabled for IFCCs makes the follower read that device
    /// at once (the tree changed before the line, as the driver changes the mask, then logs).
    @Test func anIFCCLineRereadsTheDeviceAtOnce() throws {
        let tree = Self.tree()
        let log = tree.root + "/kmsg.log"
        tree.write("kmsg.log", "")
        let backend = try SysfsBackend(root: tree.root)
        let delivered = Mutex<[ObservedUpdate]>([])
        backend.startFollowing(FollowOptions(pollInterval: nil, kernelLog: log)) { update in
            delivered.withLock { $0.append(update) }
        }
        defer { backend.stopFollowing() }
        tree.write("devices/css0/0.0.0005/0.0.1005/path_masks", "80 00 20 00 00 20\n")
        let handle = try #require(FileHandle(forWritingAtPath: log))
        handle.seekToEndOfFile()
        handle.write(
            "dasd-fba 0.0.1005: Path 0.42 (pathmask 20) is disabled - IFCC threshold exceeded\n".data(using: .ascii)!)
        try handle.close()
        let deadline = Date().addingTimeInterval(60)
        var seen: DASDPathHealth?
        while Date() < deadline {
            seen = delivered.withLock { $0.last?.dasd[sch("0.0.0005")] }
            if seen?.masks?.ifccpm == 0x20 { break }
            Thread.sleep(forTimeInterval: 0.01)
        }
        #expect(seen?.paths.last?.disabledBecause == [.ifccThreshold, .miscabled])
        #expect(backend.follower.kernelLogCounts?.acted == 1)
    }

    /// `path_reset` gets the slot mask in hex; by default every path the driver disabled.
    @Test func pathResetWritesTheSlotMask() throws {
        let tree = Self.tree()
        let backend = try SysfsBackend(root: tree.root)
        let device = try DeviceID(parsing: "0.0.1004")
        let reset = "devices/css0/0.0.0004/0.0.1004/path_reset"
        let perform = try backend.planDASDPathReset(device, chpids: nil)
        tree.write("devices/css0/0.0.0004/0.0.1004/path_masks", "f0 10 00 00 80 00\n")  // as the kernel would
        let outcome = perform()
        #expect(tree.read(reset) == "70")  // ifcc 0x40 | cable 0x20 | cuir 0x10
        let reading = try #require(try outcome.get())
        _ = backend.apply(reading)
        #expect(backend.dasdPathHealth[sch("0.0.0004")]?.paths.allSatisfy(\.inUse) == true)
        _ = try backend.planDASDPathReset(device, chpids: [chp("0.42")])()
        #expect(tree.read(reset) == "20")
    }

    /// Refusals: a device no subchannel has, one that is not a DASD, a chpid that is not its
    /// path, nothing to reset, and the kernel's own refusal of the write.
    @Test func pathResetRefusalsAreClear() throws {
        struct Refusing: SysfsAttributeWriter {
            func write(_ value: String, to path: String) throws(BackendError) {
                throw .io(
                    path: path, operation: "writing '\(value)' to", errno: EINVAL, message: SysfsFiles.describe(EINVAL))
            }
        }
        let tree = Self.tree()
        let backend = try SysfsBackend(root: tree.root)
        func refusal(_ device: String, _ chpids: [ChannelPathID]?) -> String {
            let id = try! DeviceID(parsing: device)
            do throws(BackendError) {
                _ = try backend.planDASDPathReset(id, chpids: chpids)
                return "accepted"
            } catch {
                return error.description
            }
        }
        #expect(refusal("0.0.9999", nil) == "no subchannel has device number 0.0.9999")
        #expect(
            refusal("0.0.1006", nil).hasSuffix(
                "device 0.0.1006 (subchannel 0.0.0006) is not bound to dasd-eckd or dasd-fba"))
        #expect(refusal("0.0.1005", [chp("0.41")]).hasSuffix("0.41: not a path of device 0.0.1005"))
        #expect(refusal("0.0.1007", nil).hasSuffix("the driver has disabled no path of device 0.0.1007"))
        let refusing = try SysfsBackend(root: tree.root, writer: Refusing())
        let outcome = try refusing.planDASDPathReset(try DeviceID(parsing: "0.0.1004"), chpids: nil)()
        guard case .failure(let error) = outcome else {
            Issue.record("the kernel's refusal was not returned")
            return
        }
        #expect(error.description.contains("path_reset: EINVAL (Invalid argument)"))
    }

    /// lscss --vpm: a usable path missing from vpm, or PIM and PAM that differ.
    @Test func pathVerificationIsDueWhereLscssVPMShowsIt() throws {
        let tree = Self.tree()
        tree.write("devices/css0/0.0.0005/vpm", "80\n")  // 0.42 usable but not verified
        tree.sch("0.0.0008", chpids: "40 41 00 00 00 00 00 00", pimpampom: "c0 80 ff", device: "0.0.1008", vpm: "80")
        tree.sch(
            "0.0.0009", chpids: "40 41 00 00 00 00 00 00", pimpampom: "c0 c0 ff", device: "0.0.1009", online: "0",
            vpm: "00")
        let model = try SysfsBackend(root: tree.root).subsystem
        #expect(model.subchannel(sch("0.0.0004"))?.needsPathVerification == false)
        #expect(model.subchannel(sch("0.0.0005"))?.needsPathVerification == true)
        #expect(model.subchannel(sch("0.0.0008"))?.needsPathVerification == true)  // PIM c0, PAM 80
        #expect(model.subchannel(sch("0.0.0009"))?.needsPathVerification == nil)  // not online
    }
}
