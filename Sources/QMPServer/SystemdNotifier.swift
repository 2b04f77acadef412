// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

#if canImport(Glibc)
import Glibc
#endif

/// sd_notify(3): state changes sent as datagrams to the unix socket named by `NOTIFY_SOCKET`
/// (a leading `@` is the abstract namespace). Without the variable it does nothing.
///
/// cssd sends `READY=1` once every listener is up, `RELOADING=1` with `MONOTONIC_USEC` (which
/// systemd 253 and later require for Type=notify-reload) before a SIGHUP reload and `READY=1`
/// after it, and `STOPPING=1` when shutdown begins.
package struct SystemdNotifier: Sendable {
    private let address: [UInt8]?

    /// Reads `NOTIFY_SOCKET` (and leaves it set: systemd's own sd_notify does by default).
    package init() {
        guard let value = getenv("NOTIFY_SOCKET"), value.pointee != 0 else {
            address = nil
            return
        }
        var bytes = Array(String(cString: value).utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        address = bytes.count < 108 ? bytes : nil
    }

    package var isEnabled: Bool { address != nil }

    /// Sends one message (lines `KEY=VALUE`); failures are ignored, as sd_notify's callers do.
    @discardableResult
    package func notify(_ message: String) -> Bool {
        guard let address else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var target = sockaddr_un()
        target.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &target.sun_path) { $0.copyBytes(from: address) }
        // An abstract name's length counts exactly; a path's includes no more than its bytes.
        let length = socklen_t(MemoryLayout<sa_family_t>.size + address.count)
        let bytes = Array(message.utf8)
        let sent = bytes.withUnsafeBytes { buffer in
            withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL), $0, length)
                }
            }
        }
        return sent == bytes.count
    }

    /// `RELOADING=1` with the monotonic clock in microseconds.
    package func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        notify("RELOADING=1\nMONOTONIC_USEC=\(UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000)")
    }
}
