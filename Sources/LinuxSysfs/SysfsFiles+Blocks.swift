// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

#if canImport(Glibc)
import Glibc
#endif

/// Binary attributes: the channel-measurement blocks the kernel copies out whole.
extension SysfsFiles {
    /// What one read of an attribute gave.
    enum BlockReading: Equatable, Sendable {
        /// The bytes of the single read at offset 0 (possibly fewer than asked for: the
        /// kernel returns 0 bytes for a block it does not have, as `ext_measurement` without
        /// extended data).
        case bytes([UInt8])
        /// ENOENT or ENOTDIR: the kernel does not have the file (older kernel, facility off).
        case missing
        /// Any other errno (EACCES for a non-root reader of the 0400 files).
        case failed(Int32)
    }

    /// Reads an attribute in one `pread` at offset 0 of up to `limit` bytes, as the kernel
    /// requires of the measurement blocks: `chp_measurement_copy_block` answers only a read at
    /// offset 0 whose count covers the whole block ("Only allow single reads"); a second read,
    /// or one at another offset, gets nothing. sysfs clamps the count to the attribute's size,
    /// so asking for one byte more than the block is harmless there, and lets a fixture file
    /// that is too long be told from a block of the right size.
    /// - Parameters:
    ///   - directory: an open directory (`AT_FDCWD` for a path from the current directory).
    ///   - name: the file's path relative to it.
    ///   - limit: the most bytes to read (1...4096).
    static func readBlock(at directory: Int32, _ name: String, limit: Int) -> BlockReading {
        precondition((1...4096).contains(limit), "an attribute is at most a page")
        let fd = openat(directory, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return errno == ENOENT || errno == ENOTDIR ? .missing : .failed(errno) }
        defer { close(fd) }
        // A FIFO standing in for the file would hand over data meant for someone else.
        guard isRegularFile(fd) else { return .failed(EINVAL) }
        return withUnsafeTemporaryAllocation(byteCount: limit, alignment: 8) { buffer in
            var n: Int
            repeat { n = pread(fd, buffer.baseAddress, limit, 0) } while n < 0 && errno == EINTR
            guard n >= 0 else { return .failed(errno) }
            return .bytes(Array(UnsafeRawBufferPointer(rebasing: buffer[..<n])))
        }
    }

    /// A text attribute's first line (`cm_enable`, `cmg`, `speed_bps`) without blanks around
    /// it, in the same `BlockReading` cases (`bytes` holds the line's UTF-8).
    static func readLine(at directory: Int32, _ name: String) -> BlockReading {
        let reading = readBlock(at: directory, name, limit: 4096)
        guard case .bytes(let bytes) = reading else { return reading }
        let line = bytes.split(separator: 0x0a, maxSplits: 1, omittingEmptySubsequences: false).first ?? []
        let blank: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0d || $0 == 0 }
        guard let first = line.firstIndex(where: { !blank($0) }), let last = line.lastIndex(where: { !blank($0) })
        else { return .bytes([]) }
        return .bytes(Array(line[first...last]))
    }
}
