// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import QMPTransport

#if canImport(Glibc)
import Glibc
#endif

/// Unix socket files: a stale one (nobody listening) is replaced, a live one is refused.
enum UnixSocketFile {
    static func prepare(_ path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }  // nothing there
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw ServerStartError("\(path) exists and is not a socket; refusing to replace it")
        }
        if isLive(path) {
            throw ServerStartError("\(path) is in use by a running server; refusing to replace it")
        }
        guard unlink(path) == 0 else {
            throw ServerStartError("cannot remove stale socket \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Whether something accepts connections on the socket.
    static func isLive(_ path: String) -> Bool {
        guard let fd = try? QMPAddress.unix(path: path).connect() else { return false }
        close(fd)
        return true
    }
}
