// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend

#if canImport(Glibc)
import Glibc
#endif

/// Reading and writing sysfs attribute files, with errors that name the file and the errno.
enum SysfsFiles {
    /// A file's content; nil when it does not exist. Attributes are small: 4 KiB is a page.
    static func read(_ path: String) throws(BackendError) -> String? {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)  // never wait on a special file
        guard fd >= 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw failure(path, "reading")
        }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 4096)
        var count = 0
        while count < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure(path, "reading")
            }
            if n == 0 { break }
            count += n
        }
        return String(decoding: bytes[..<count], as: UTF8.self)
    }

    /// The first line without its newline, as lschp and lscss take an attribute.
    static func line(_ path: String) throws(BackendError) -> String? {
        guard let text = try read(path) else { return nil }
        return String(text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
    }

    /// Writes `value` in one write(2), as echo does: the kernel's store method sees it whole
    /// and its refusal comes back as the write's errno.
    static func write(_ value: String, to path: String) throws(BackendError) {
        let operation = "writing '\(value)' to"
        let fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)  // sysfs ignores O_TRUNC; a fixture file needs it
        guard fd >= 0 else { throw failure(path, operation) }
        defer { close(fd) }
        var text = value
        let written = text.withUTF8 { bytes in
            var n: Int
            repeat { n = Glibc.write(fd, bytes.baseAddress, bytes.count) } while n < 0 && errno == EINTR
            return n
        }
        guard written >= 0 else { throw failure(path, operation) }
        guard written == value.utf8.count else {
            throw .io(path: path, operation: operation, errno: EIO, message: "short write (\(written) of \(value.utf8.count) bytes)")
        }
    }

    /// Directory entries (without . and ..), sorted; nil when the directory does not exist.
    static func entries(_ path: String) throws(BackendError) -> [String]? {
        guard let dir = opendir(path) else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw failure(path, "listing")
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    /// The error for the current errno: `EINVAL (Invalid argument)`.
    static func failure(_ path: String, _ operation: String) -> BackendError {
        let code = errno
        return .io(path: path, operation: operation, errno: code, message: describe(code))
    }

    static func describe(_ code: Int32) -> String {
        let names: [Int32: String] = [
            EPERM: "EPERM", ENOENT: "ENOENT", EIO: "EIO", ENXIO: "ENXIO", EAGAIN: "EAGAIN", EACCES: "EACCES",
            EBUSY: "EBUSY", ENODEV: "ENODEV", ENOTDIR: "ENOTDIR", EISDIR: "EISDIR", EINVAL: "EINVAL",
            ENOSPC: "ENOSPC", EROFS: "EROFS", ERANGE: "ERANGE", EOPNOTSUPP: "EOPNOTSUPP", ETIMEDOUT: "ETIMEDOUT",
        ]
        let text = String(cString: strerror(code))
        return "\(names[code] ?? "errno \(code)") (\(text))"
    }
}
