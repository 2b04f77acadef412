// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

#if canImport(Glibc)
import Glibc
#endif

/// Reads a subchannel's `pimpampom` and `vpm` relative to its css directory, allocating
/// nothing: the names are built in place in buffers of its own, so that one reader per thread
/// can read a path's members side by side (`SysfsMirror.readQueuedMembers`). Not thread-safe:
/// one thread each.
final class MaskReader {
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
    /// `0.S.XXXX/pimpampom` and `0.S.XXXX/vpm`, NUL-terminated; the digits are rewritten per read.
    private let masksName: UnsafeMutablePointer<CChar>
    private let vpmName: UnsafeMutablePointer<CChar>
    /// `0.S.XXXX/0.S.DDDD/online`: the ccw device's, beside the subchannel's.
    private let onlineName: UnsafeMutablePointer<CChar>
    private var fields = [Int](repeating: 0, count: 9)
    private static let hex = Array("0123456789abcdef".utf8)

    init() {
        masksName = Self.template("0.0.0000/pimpampom")
        vpmName = Self.template("0.0.0000/vpm")
        onlineName = Self.template("0.0.0000/0.0.0000/online")
    }

    deinit {
        buffer.deallocate()
        masksName.deallocate()
        vpmName.deallocate()
        onlineName.deallocate()
    }

    private static func template(_ text: String) -> UnsafeMutablePointer<CChar> {
        let bytes = Array(text.utf8)
        let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
        for (index, byte) in bytes.enumerated() { pointer[index] = CChar(bitPattern: byte) }
        pointer[bytes.count] = 0
        return pointer
    }

    private static func name(_ pointer: UnsafeMutablePointer<CChar>, _ id: SubchannelID) {
        busID(pointer, ssid: id.ssid, number: id.schno)
    }

    /// Writes `0.S.XXXX` at `pointer`.
    private static func busID(_ pointer: UnsafeMutablePointer<CChar>, ssid: UInt8, number: UInt16) {
        pointer[2] = CChar(bitPattern: hex[Int(ssid & 0xf)])
        for digit in 0..<4 {
            pointer[4 + digit] = CChar(bitPattern: hex[Int(number >> (12 - 4 * UInt16(digit))) & 0xf])
        }
    }

    /// The ccw device `device`'s `online` under subchannel `id`: true for `1`; nil when it
    /// cannot be read (the caller reads the subchannel whole, which says why).
    func online(_ id: SubchannelID, device: DeviceID, at css: Int32) -> Bool? {
        Self.name(onlineName, id)
        Self.busID(onlineName + 9, ssid: device.ssid, number: device.devno)
        guard case .bytes(let n) = SysfsFiles.read(at: css, cName: onlineName, into: buffer), n > 0 else { return nil }
        return buffer[0] == 0x31
    }

    /// `pimpampom` (three hex bytes) of subchannel `id` in the css directory `css`; nil when
    /// it cannot be read or parsed (the caller reads it again the slow way, which says why).
    func masks(_ id: SubchannelID, at css: Int32) -> (pim: Int, pam: Int, pom: Int)? {
        Self.name(masksName, id)
        guard case .bytes(let n) = SysfsFiles.read(at: css, cName: masksName, into: buffer),
            SysfsFiles.hexBytes(UnsafeRawBufferPointer(buffer), count: n, into: &fields) == 3
        else { return nil }
        return (fields[0], fields[1], fields[2])
    }

    /// `vpm` (one hex byte) of subchannel `id`; nil when it cannot be read or parsed.
    func vpm(_ id: SubchannelID, at css: Int32) -> Int? {
        Self.name(vpmName, id)
        guard case .bytes(let n) = SysfsFiles.read(at: css, cName: vpmName, into: buffer),
            SysfsFiles.hexBytes(UnsafeRawBufferPointer(buffer), count: n, into: &fields) == 1
        else { return nil }
        return fields[0]
    }

    /// Both, as `SysfsMirror.LinuxMasks`; nil when `pimpampom` cannot be read. A `vpm` that
    /// cannot be read is left nil (the mirror then reads it again when the masks moved).
    func read(_ id: SubchannelID, at css: Int32, vpm wanted: Bool) -> SysfsMirror.LinuxMasks? {
        guard let masks = masks(id, at: css) else { return nil }
        return SysfsMirror.LinuxMasks(
            pim: masks.pim, pam: masks.pam, pom: masks.pom, vpm: wanted ? vpm(id, at: css) : nil)
    }
}
