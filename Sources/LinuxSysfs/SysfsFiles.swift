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
        // sysfs attributes are regular files; reading a FIFO or device standing in for one
        // would take data meant for someone else.
        guard isRegularFile(fd) else {
            throw .io(path: path, operation: "reading", errno: EINVAL, message: "not a regular file")
        }
        // Not an array: a zero-filled 4 KiB per file is most of a full reading's cost.
        return try withUnsafeTemporaryAllocation(byteCount: 4096, alignment: 16) {
            (bytes) throws(BackendError) -> String in
            var count = 0
            while count < bytes.count {
                let n = Glibc.read(fd, bytes.baseAddress! + count, bytes.count - count)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw failure(path, "reading")
                }
                if n == 0 { break }
                count += n
            }
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[..<count]), as: UTF8.self)
        }
    }

    /// `line(_:)` of the attribute `name` relative to the open directory `directory` (a
    /// subchannel's, at start-up): the directory's path is walked once, not once per file, and
    /// the attribute is read in one read(2) (`readAll`'s rule: sysfs hands an attribute out
    /// whole). `path` names the file in errors. For sysfs attributes only: a /proc file of
    /// several records may come in several short reads (`read(_:)` reads those to the end).
    /// Like the sweep's reads it does not fstat the file to refuse a special one: opened
    /// non-blocking it cannot hang, sysfs has none, and the check was a fifth of the system
    /// calls of a start-up reading 2.4 million files at 262,144 subchannels (issue 25).
    static func line(at directory: Int32, _ name: String, path: @autoclosure () -> String) throws(BackendError)
        -> String?
    {
        let fd = openat(directory, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC)  // never wait on a special file
        guard fd >= 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw failure(path(), "reading")
        }
        defer { close(fd) }
        return try withUnsafeTemporaryAllocation(byteCount: 4096, alignment: 16) {
            (bytes) throws(BackendError) -> String in
            guard case .bytes(let count) = readAll(fd, into: UnsafeMutableRawBufferPointer(bytes)) else {
                throw failure(path(), "reading")
            }
            var end = 0
            while end < count && bytes[end] != 0x0a { end += 1 }
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[..<end]), as: UTF8.self)
        }
    }

    /// The last component of the symbolic link `name` relative to `directory` (`linkBasename`
    /// without walking the directory's path again).
    static func linkBasename(at directory: Int32, _ name: String) -> String? {
        withUnsafeTemporaryAllocation(byteCount: 4096, alignment: 1) { buffer in
            let count = readlinkat(directory, name, buffer.baseAddress!.assumingMemoryBound(to: CChar.self), 4095)
            var end = count
            while end > 0 && buffer[end - 1] == 0x2f { end -= 1 }  // as split(separator:) drops a trailing "/"
            guard end > 0 else { return nil }
            var start = end
            while start > 0 && buffer[start - 1] != 0x2f { start -= 1 }
            return String(decoding: UnsafeRawBufferPointer(rebasing: buffer[start..<end]), as: UTF8.self)
        }
    }

    /// Whether `name` relative to `directory` is a directory (`isDirectory` without walking the
    /// directory's path again).
    static func isDirectory(at directory: Int32, _ name: String) -> Bool {
        var info = stat()
        return fstatat(directory, name, &info, 0) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    /// What reading a small attribute into a caller's buffer gave.
    enum Reading: Equatable {
        /// This many bytes (the buffer's size at most).
        case bytes(Int)
        /// ENOENT or ENOTDIR.
        case missing
        /// Any other errno.
        case failed(Int32)
    }

    /// Reads an attribute into `buffer` without allocating: the sweep reads tens of
    /// thousands of them, and a String per file would cost more than the read.
    static func read(_ path: String, into buffer: UnsafeMutableRawBufferPointer) -> Reading {
        read(at: AT_FDCWD, path, into: buffer)
    }

    /// Reads `fd` until end of file or until `buffer` is full, retrying on EINTR. A read that
    /// returns less than it asked for has the whole attribute: sysfs produces an attribute in
    /// one `show` call and hands it out whole (fs/kernfs/file.c, seq_file), and a small regular
    /// file (a fixture) is read whole too; so no second read to see end of file, a quarter of
    /// the system calls of a sweep's file.
    private static func readAll(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Reading {
        var count = 0
        while count < buffer.count {
            let n = Glibc.read(fd, buffer.baseAddress! + count, buffer.count - count)
            if n < 0 {
                if errno == EINTR { continue }
                return .failed(errno)
            }
            if n == 0 { break }
            count += n
            if n < buffer.count - (count - n) { break }
        }
        return .bytes(count)
    }

    /// `read(at:_:into:)` with the name as a C string the caller built (no String at all).
    static func read(at directory: Int32, cName: UnsafePointer<CChar>, into buffer: UnsafeMutableRawBufferPointer)
        -> Reading
    {
        let fd = openat(directory, cName, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return errno == ENOENT || errno == ENOTDIR ? .missing : .failed(errno) }
        defer { close(fd) }
        return readAll(fd, into: buffer)
    }

    /// `checkType` false skips the fstat that refuses special files (a sweep's attributes are
    /// opened non-blocking anyway; the check costs a quarter of a read).
    static func read(
        at directory: Int32, _ path: String, into buffer: UnsafeMutableRawBufferPointer, checkType: Bool = true
    ) -> Reading {
        let fd = openat(directory, path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return errno == ENOENT || errno == ENOTDIR ? .missing : .failed(errno) }
        defer { close(fd) }
        guard !checkType || isRegularFile(fd) else { return .failed(EINVAL) }
        return readAll(fd, into: buffer)
    }

    /// Hex numbers separated by blanks on the first line of `bytes` (`40 41 00 …`, `f0 d0 ff`),
    /// each at most two digits; nil when a field is malformed or there are more than `into.count`.
    static func hexBytes(_ bytes: UnsafeRawBufferPointer, count: Int, into fields: inout [Int]) -> Int? {
        var n = 0
        var value = -1
        var digits = 0
        for index in 0..<count {
            let c = bytes[index]
            if c == 0x0a { break }
            if c == 0x20 || c == 0x09 {
                if value >= 0 {
                    guard n < fields.count else { return nil }
                    fields[n] = value
                    n += 1
                }
                value = -1
                digits = 0
                continue
            }
            let digit: Int
            switch c {
            case 0x30...0x39: digit = Int(c) - 0x30
            case 0x61...0x66: digit = Int(c) - 0x61 + 10
            case 0x41...0x46: digit = Int(c) - 0x41 + 10
            default: return nil
            }
            digits += 1
            guard digits <= 2 else { return nil }
            value = (value < 0 ? 0 : value) * 16 + digit
        }
        if value >= 0 {
            guard n < fields.count else { return nil }
            fields[n] = value
            n += 1
        }
        return n
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
            throw .io(
                path: path, operation: operation, errno: EIO,
                message: "short write (\(written) of \(value.utf8.count) bytes)")
        }
    }

    /// Directory entries (without . and ..), sorted (else in the order readdir gave them); nil
    /// when the directory does not exist.
    static func entries(_ path: String, sorted: Bool = true) throws(BackendError) -> [String]? {
        guard let dir = opendir(path) else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw failure(path, "listing")
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            // The name's own bytes, read in place: `entry.pointee` copied a whole `struct
            // dirent` (280 bytes), but a record in glibc's readdir buffer is only `d_reclen`
            // long, and one at the end of the buffer may end just before an unmapped page:
            // cssd crashed so (SIGSEGV in `listing`, once in ~80 runs of test_sysfs_follow).
            let name = String(cString: (UnsafeRawPointer(entry) + direntNameOffset).assumingMemoryBound(to: CChar.self))
            if name != "." && name != ".." { names.append(name) }
        }
        return sorted ? names.sorted() : names
    }

    /// Where `d_name` starts in a `struct dirent`.
    private static let direntNameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!

    static func isRegularFile(_ fd: Int32) -> Bool {
        var info = stat()
        return fstat(fd, &info) == 0 && info.st_mode & S_IFMT == S_IFREG
    }

    /// The last component of a symbolic link's target (a `driver` link: `dasd-eckd`); nil when
    /// there is no link (no driver bound) or it cannot be read.
    static func linkBasename(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        let target = String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return target.split(separator: "/").last.map(String.init)
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    /// The error for the current errno: `EINVAL (Invalid argument)`.
    static func failure(_ path: String, _ operation: String) -> BackendError {
        failure(path, operation, errno: errno)
    }

    /// The same for an errno the caller kept (a `Reading.failed`).
    static func failure(_ path: String, _ operation: String, errno code: Int32) -> BackendError {
        .io(path: path, operation: operation, errno: code, message: describe(code))
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

/// One directory's attribute files read into one caller's buffer, each handed out as its first
/// line's bytes (no newline) until the next read: a full reading takes 2.4 million files at
/// 262,144 subchannels, and a String per file cost more than reading it. Relative to the open
/// `directory`, or by path under `path` where it is -1 (the directory could not be opened).
struct AttributeFiles {
    let directory: Int32
    let path: String
    let buffer: UnsafeMutableRawBufferPointer

    /// `name`'s first line; nil when it does not exist, or cannot be read (then `problems`
    /// says which file and why, in `SysfsFiles.failure`'s words).
    func line(_ name: String, _ problems: inout [String]) -> UnsafeBufferPointer<UInt8>? {
        let reading =
            directory >= 0
            ? SysfsFiles.read(at: directory, name, into: buffer, checkType: false)
            : SysfsFiles.read(at: AT_FDCWD, path + "/" + name, into: buffer, checkType: false)
        switch reading {
        case .missing:
            return nil
        case .failed(let code):
            problems.append(SysfsFiles.failure(path + "/" + name, "reading", errno: code).description)
            return nil
        case .bytes(let count):
            var end = 0
            while end < count && buffer[end] != 0x0a { end += 1 }
            return UnsafeBufferPointer(start: buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), count: end)
        }
    }

    /// `child/name`'s first line (a ccw device's attribute).
    func line(_ child: String, _ name: String, _ problems: inout [String]) -> UnsafeBufferPointer<UInt8>? {
        line(child + "/" + name, &problems)
    }

    /// The last component of the link `child/name` (a device's `driver`).
    func linkBasename(_ child: String, _ name: String) -> String? {
        directory >= 0
            ? SysfsFiles.linkBasename(at: directory, child + "/" + name)
            : SysfsFiles.linkBasename(path + "/" + child + "/" + name)
    }
}
