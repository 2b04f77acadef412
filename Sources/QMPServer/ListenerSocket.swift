// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Listening sockets cssd makes itself (unix) or is handed (systemd socket activation).
enum ListenerSocket {
    /// A listening unix stream socket at `path`, owned by `group` with mode 0660, else mode
    /// 0600; the mode is set before listen(2), so nobody can connect before it is right.
    ///
    /// Made here rather than by NIO because NIO refuses paths over 103 bytes, while Linux and
    /// QEMU accept up to 107 (sun_path is 108 bytes with the NUL). Binding by the full path
    /// works for any length that fits sun_path.
    static func bindUnix(path: String, group: gid_t?) throws -> CInt {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            throw ServerStartError("cannot create a unix socket: \(String(cString: strerror(errno)))")
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            throw ServerStartError("unix:\(path): a unix socket path must be shorter than 108 bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw ServerStartError("cannot listen on unix:\(path): \(reason)")
        }
        func fail(_ what: String) -> ServerStartError {
            let reason = String(cString: strerror(errno))
            close(fd)
            unlink(path)
            return ServerStartError("\(what): \(reason)")
        }
        if let group {
            guard chown(path, uid_t.max, group) == 0 else { throw fail("cannot give \(path) to group \(group)") }
            guard chmod(path, 0o660) == 0 else { throw fail("cannot set mode 0660 on \(path)") }
        } else {
            // Only the owner may talk to the monitor; umask already applied, chmod makes sure.
            guard chmod(path, 0o600) == 0 else { throw fail("cannot set mode 0600 on \(path)") }
        }
        // Listen now (NIO listens again when it adopts the socket, and so does QMPServer after
        // it): a client that sees the file never finds it refusing connections meanwhile.
        guard Glibc.listen(fd, QMPServer.listenBacklog) == 0 else { throw fail("cannot listen on unix:\(path)") }
        return fd
    }

    /// listen(2) again on a listening socket: Linux sets the new backlog and keeps the
    /// connections already queued.
    /// - Throws: `ServerStartError` with the reason listen(2) gives.
    static func listen(_ fd: CInt, backlog: CInt) throws {
        guard Glibc.listen(fd, backlog) == 0 else {
            throw ServerStartError("cannot listen on descriptor \(fd): \(String(cString: strerror(errno)))")
        }
    }

    /// Whether a tcp host is a loopback address (127.0.0.0/8, ::1, localhost), where a plain
    /// listener is reachable only from this machine.
    static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" || host == "0:0:0:0:0:0:0:1" { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
        return false
    }
}

/// systemd socket activation (sd_listen_fds(3)): `LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`;
/// descriptors from 3 on. Names: `qmp` (a read-write listener) and `qmp-readonly`; with no
/// names given, every socket is `qmp`.
package enum SocketActivation {
    /// The listeners handed to this process, or none when it was not socket-activated. The
    /// variables are removed from the environment (as sd_listen_fds(1) does), so no child
    /// inherits them, and the descriptors get close-on-exec.
    /// - Throws: `ServerStartError` for a name other than qmp/qmp-readonly, a descriptor that is
    ///   not a listening stream socket, or malformed variables.
    package static func takeListeners() throws -> [Listener] {
        defer {
            unsetenv("LISTEN_PID")
            unsetenv("LISTEN_FDS")
            unsetenv("LISTEN_FDNAMES")
        }
        guard let countText = getenv("LISTEN_FDS").map({ String(cString: $0) }) else { return [] }
        if let pidText = getenv("LISTEN_PID").map({ String(cString: $0) }) {
            guard let pid = Int32(pidText) else {
                throw ServerStartError("LISTEN_PID='\(pidText)' is not a process id")
            }
            guard pid == getpid() else { return [] }  // meant for another process
        }
        guard let count = Int(countText), count >= 0, count < 1024 else {
            throw ServerStartError("LISTEN_FDS='\(countText)' is not a count of descriptors")
        }
        let names = getenv("LISTEN_FDNAMES").map {
            String(cString: $0).split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        }
        if let names, names.count != count {
            throw ServerStartError("LISTEN_FDNAMES names \(names.count) sockets, LISTEN_FDS says \(count)")
        }
        var listeners: [Listener] = []
        for index in 0..<count {
            let fd = CInt(3 + index)
            let name = names?[index] ?? "qmp"
            let readOnly: Bool
            switch name {
            case "qmp", "unknown", "": readOnly = false
            case "qmp-readonly": readOnly = true
            default:
                throw ServerStartError(
                    "socket activation: descriptor \(fd) is named '\(name)'; cssd serves 'qmp' and 'qmp-readonly' (FileDescriptorName=)"
                )
            }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            var listening: CInt = 0
            var size = socklen_t(MemoryLayout<CInt>.size)
            var type: CInt = 0
            var typeSize = socklen_t(MemoryLayout<CInt>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &typeSize) == 0, type == CInt(SOCK_STREAM.rawValue),
                getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) == 0, listening != 0
            else {
                throw ServerStartError(
                    "socket activation: descriptor \(fd) ('\(name)') is not a listening stream socket (ListenStream=)")
            }
            listeners.append(Listener(try address(of: fd), readOnly: readOnly, descriptor: fd))
        }
        return listeners
    }

    /// The address a socket is bound to.
    static func address(of fd: CInt) throws -> ListenAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let status = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard status == 0 else {
            throw ServerStartError("socket activation: descriptor \(fd): \(String(cString: strerror(errno)))")
        }
        switch Int32(storage.ss_family) {
        case AF_UNIX:
            let path = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_un.self, capacity: 1) { pointer in
                    withUnsafeBytes(of: pointer.pointee.sun_path) {
                        String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
                    }
                }
            }
            return .unix(path: path)
        case AF_INET, AF_INET6:
            let address = try withUnsafePointer(to: &storage) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { try SocketAddress(rawPointer: $0) }
            }
            return .tcp(host: address.ipAddress ?? "?", port: address.port ?? 0)
        default:
            throw ServerStartError("socket activation: descriptor \(fd) is neither a unix nor a tcp socket")
        }
    }
}

extension SocketAddress {
    init(rawPointer pointer: UnsafePointer<sockaddr>) throws {
        switch Int32(pointer.pointee.sa_family) {
        case AF_INET:
            self = pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee, host: "") }
        case AF_INET6:
            self = pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee, host: "") }
        default:
            throw ServerStartError("unsupported address family \(pointer.pointee.sa_family)")
        }
    }
}
