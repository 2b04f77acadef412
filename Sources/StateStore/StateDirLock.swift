// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Foundation

/// One cssd per state dir: `DIR/lock`, locked with flock(2) for as long as the store is open
/// (the kernel drops the lock when the process ends, however it ends), holding the pid of the
/// cssd that holds it, as Prometheus (its `lock` file), etcd and PostgreSQL
/// (`postmaster.pid`) keep one daemon per data directory. A second cssd is refused with the
/// holder's pid, before it reads anything.
///
/// The holder removes the file when it lets go (a clean stop); after a crash the file stays
/// with the dead pid in it, unlocked, and the next cssd takes it. Because the holder removes it
/// while still holding the lock, a cssd that locked a file which is no longer the one at the
/// path (removed in between) lets go of it and tries again.
final class StateDirLock {
    /// `DIR/lock`.
    let path: String
    private var descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    /// Locks `directory` (which exists and is writable) for this process.
    /// - Throws: `StateStoreError` "state dir DIR is in use by cssd pid N (it holds DIR/lock)"
    ///   when another process holds it; "cannot lock …" when the file cannot be made or locked.
    static func acquire(directory: String) throws(StateStoreError) -> StateDirLock {
        let path = directory + "/lock"
        while true {
            let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { throw StateStoreError("cannot create the lock file \(path): \(errorText())") }
            guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
                let error = errno
                let holder = pid(in: descriptor)
                close(descriptor)
                guard error == EWOULDBLOCK else { throw StateStoreError("cannot lock \(path): \(errorText(error))") }
                throw StateStoreError(
                    "state dir \(directory) is in use by cssd pid \(holder ?? "unknown") (it holds the lock on \(path)): "
                        + "one cssd per state dir")
            }
            var locked = stat()
            var current = stat()
            guard fstat(descriptor, &locked) == 0, stat(path, &current) == 0, locked.st_dev == current.st_dev,
                locked.st_ino == current.st_ino
            else {
                // The holder removed the file between our open and our lock: that one is free
                // to take, but nobody looks at it any more.
                close(descriptor)
                continue
            }
            // The pid is for the message of a cssd that is refused; without room on the disk
            // for it the lock holds all the same.
            let text = Array("\(getpid())\n".utf8)
            if ftruncate(descriptor, 0) == 0 {
                _ = text.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
            }
            return StateDirLock(path: path, descriptor: descriptor)
        }
    }

    /// Removes the file and lets go of the lock (in that order: see the type). Idempotent.
    func release() {
        guard descriptor >= 0 else { return }
        unlink(path)
        close(descriptor)
        descriptor = -1
    }

    deinit { release() }

    /// The pid written in the file by its holder, if it wrote one.
    private static func pid(in descriptor: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty || !text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) ? nil : text
    }

    private static func errorText(_ error: Int32 = errno) -> String { String(cString: strerror(error)) }
}
