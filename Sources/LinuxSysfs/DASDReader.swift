// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel

#if canImport(Glibc)
import Glibc
#endif

/// Reads what the DASD device driver says about a device's paths (host-paths.md §4;
/// drivers/s390/block/dasd_devmap.c): `path_masks`, `path_autodisable`, `path_threshold`,
/// `path_interval`, `hpf`, `fc_security` and `paths_info/<cssid>.<chpid>/fc_security`, with the
/// subchannel's `chpids` and `pimpampom` to name the slots, as `lsdasd -l` does.
///
/// A ccw device is a DASD when its `driver` link names `dasd-eckd` or `dasd-fba`. A file that
/// cannot be read or understood leaves its value nil and says why in `problems`; a device
/// directory that vanishes while it is read is `.gone` (the caller reads the tree's layout
/// again), never a half-read value.
enum DASDReader {
    /// The ccw drivers whose devices have path masks.
    static let drivers: Set<String> = ["dasd-eckd", "dasd-fba"]

    enum Outcome: Equatable {
        /// The device is not bound to a DASD driver.
        case notDASD
        /// The device's directory went while it was read.
        case gone
        case health(DASDPathHealth)
    }

    /// The driver the ccw device at `device` is bound to (the `driver` link's last
    /// component); nil without one.
    static func driver(_ device: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink(device + "/driver", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        let target = String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return target.split(separator: "/").last.map(String.init)
    }

    /// Reads device `name` of the subchannel at `subchannel` (`…/css0/0.0.0004`, `0.0.1000`).
    static func read(subchannel: String, device name: String, cssid: UInt8) -> Outcome {
        let device = subchannel + "/" + name
        guard let driver = driver(device), drivers.contains(driver) else {
            return SysfsFiles.isDirectory(device) ? .notDASD : .gone
        }
        var problems: [String] = []
        func line(_ path: String) -> String? {
            do throws(BackendError) {
                guard let text = try SysfsFiles.line(path) else {
                    problems.append("\(path): missing")
                    return nil
                }
                return text
            } catch {
                problems.append(error.description)
                return nil
            }
        }
        // The slots: Linux's `chpids` names the chpid of every slot whose PIM bit is set.
        var slots = [ChannelPathID?](repeating: nil, count: 8)
        let chpids = line(subchannel + "/chpids")?.split(separator: " ").compactMap { Hex.number($0, maxDigits: 2) }
        let pim = line(subchannel + "/pimpampom")?.split(separator: " ").first.flatMap { Hex.number($0, maxDigits: 2) }
        if let chpids, chpids.count == 8, let pim {
            for slot in 0..<8 where pim & (0x80 >> slot) != 0 {
                slots[slot] = ChannelPathID(cssid: cssid, chpid: UInt8(chpids[slot]))
            }
        } else {
            problems.append("\(subchannel): chpids or pimpampom not understood, the paths cannot be named")
        }
        var masks: DASDPathMasks?
        if let text = line(device + "/path_masks") {
            masks = DASDPathMasks(parsing: text[...])
            if masks == nil {
                problems.append("\(device)/path_masks: '\(text.prefix(64))' is not six two-digit hex bytes")
            }
        }
        if slots.allSatisfy({ $0 == nil }) { masks = nil }  // masks whose paths cannot be named say nothing
        let health = DASDPathHealth(
            driver: driver, online: line(device + "/online") == "1", slots: slots, masks: masks,
            autodisable: flag(line(device + "/path_autodisable"), device + "/path_autodisable", &problems),
            threshold: count(line(device + "/path_threshold"), device + "/path_threshold", &problems),
            interval: count(line(device + "/path_interval"), device + "/path_interval", &problems),
            hpf: flag(line(device + "/hpf"), device + "/hpf", &problems),
            fcSecurity: security(line(device + "/fc_security"), device + "/fc_security", &problems),
            pathFCSecurity: pathSecurity(device + "/paths_info", &problems), problems: problems)
        // A directory that went mid-read made every file after it "missing": not a value.
        guard SysfsFiles.isDirectory(device) else { return .gone }
        return .health(health)
    }

    /// `path_masks` alone (the sweep's check): nil, with the reason, when it cannot be read.
    static func masks(_ device: String) -> Result<DASDPathMasks, DASDReadFailure> {
        do throws(BackendError) {
            guard let text = try SysfsFiles.line(device + "/path_masks") else { return .failure(.missing) }
            guard let masks = DASDPathMasks(parsing: text[...]) else { return .failure(.malformed(text)) }
            return .success(masks)
        } catch {
            return .failure(.unreadable(error.description))
        }
    }

    /// `masks(_:)` relative to an open css directory (`0.0.0004/0.0.1004/path_masks`) into a
    /// caller's buffer: the sweep's check, without a String per file or a lookup of the root.
    static func masks(at directory: Int32, _ relative: String, into buffer: UnsafeMutableRawBufferPointer)
        -> Result<DASDPathMasks, DASDReadFailure>
    {
        switch SysfsFiles.read(at: directory, relative, into: buffer, checkType: false) {
        case .missing: return .failure(.missing)
        case .failed(let code): return .failure(.unreadable(SysfsFiles.describe(code)))
        case .bytes(let n):
            guard let masks = DASDPathMasks(bytes: UnsafeRawBufferPointer(rebasing: buffer[..<n])) else {
                return .failure(
                    .malformed(String(decoding: UnsafeRawBufferPointer(rebasing: buffer[..<n]), as: UTF8.self)))
            }
            return .success(masks)
        }
    }

    enum DASDReadFailure: Error, Equatable {
        case missing
        case malformed(String)
        case unreadable(String)
    }

    /// `0`/`1`.
    private static func flag(_ text: String?, _ path: String, _ problems: inout [String]) -> Bool? {
        guard let text else { return nil }
        switch text {
        case "0": return false
        case "1": return true
        default:
            problems.append("\(path): '\(text.prefix(64))' is not 0 or 1")
            return nil
        }
    }

    /// A decimal unsigned 32-bit count (`DASD_THRHLD_MAX` 4294967295).
    private static func count(_ text: String?, _ path: String, _ problems: inout [String]) -> UInt32? {
        guard let text else { return nil }
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = UInt32(text) else {
            problems.append("\(path): '\(text.prefix(64))' is not a decimal count up to 4294967295")
            return nil
        }
        return value
    }

    /// The kernel's fc_security strings (drivers/s390/cio/chsc.h / dasd_devmap.c
    /// `dasd_path_fcs_show`).
    static let securityValues: Set<String> = ["Unsupported", "Authentication", "Encryption", "Inconsistent"]

    private static func security(_ text: String?, _ path: String, _ problems: inout [String]) -> String? {
        guard let text else { return nil }
        guard securityValues.contains(text) else {
            problems.append("\(path): '\(text.prefix(64))' is not a known fc_security value")
            return nil
        }
        return text
    }

    /// `paths_info/<cssid>.<chpid>/fc_security` (kset `paths_info`, Linux 5.10): per chpid.
    /// Absent on older kernels: nothing, and no problem.
    private static func pathSecurity(_ dir: String, _ problems: inout [String]) -> [ChannelPathID: String] {
        var out: [ChannelPathID: String] = [:]
        let names: [String]
        do throws(BackendError) {
            guard let listed = try SysfsFiles.entries(dir) else { return [:] }
            names = listed
        } catch {
            problems.append(error.description)
            return [:]
        }
        for name in names {
            let parts = name.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 2, let css = Hex.number(parts[0], maxDigits: 2), parts[1].count == 2,
                let chpid = Hex.number(parts[1], maxDigits: 2)
            else {
                problems.append("\(dir)/\(name): not named <cssid>.<chpid>")
                continue
            }
            let path = dir + "/" + name + "/fc_security"
            var text: String?
            do throws(BackendError) {
                text = try SysfsFiles.line(path)
            } catch {
                problems.append(error.description)
            }
            if let value = security(text, path, &problems) {
                out[ChannelPathID(cssid: UInt8(css), chpid: UInt8(chpid))] = value
            }
        }
        return out
    }
}
