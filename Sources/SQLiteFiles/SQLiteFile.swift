// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SQLiteNIO

#if canImport(Glibc)
import Glibc
#endif

/// A failure to open one of cssd's SQLite files; `description` names the file and the cause.
package struct SQLiteFileError: Error, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
}

/// One of cssd's own SQLite files (the state, the notification outbox) opened the way both
/// need: an existing file is checked through a read-only connection first, so that a file
/// that is refused is never written (not even the checkpoint SQLite makes when a writer
/// closes); then it is opened for writing in WAL mode. The connection has a thread and an
/// event loop of its own, never the server's: every call here waits.
package struct SQLiteFile {
    package let connection: SQLiteConnection
    package let group: MultiThreadedEventLoopGroup
    package let pool: NIOThreadPool

    /// How much a commit waits for the disk (`PRAGMA synchronous`).
    package enum Synchronous: String {
        /// Every commit is on disk before it returns.
        case full = "FULL"
        /// A commit may be lost in a power failure, never corrupted (WAL).
        case normal = "NORMAL"
    }

    /// Opens `path`. When `existed`, `check` is run on a read-only connection first; what it
    /// throws is rethrown unchanged, after the file was closed and its threads stopped.
    /// - Throws: `SQLiteFileError` "cannot open PATH: …" or "cannot open PATH for writing: …";
    ///   what `check` throws; the error of a pragma.
    package static func open(
        _ path: String, existed: Bool, synchronous: Synchronous, check: (SQLiteConnection) throws -> Void
    ) throws -> SQLiteFile {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        func stop() {
            try? pool.syncShutdownGracefully()
            try? group.syncShutdownGracefully()
        }
        var connection: SQLiteConnection
        do {
            let storage: SQLiteConnection.Storage = .file(path: existed ? readOnlyURI(path) : path)
            connection = try SQLiteConnection.open(storage: storage, threadPool: pool, on: group.next()).wait()
        } catch {
            stop()
            throw SQLiteFileError("cannot open \(path): \(error)")
        }
        do {
            if existed {
                try check(connection)
                try connection.close().wait()
                do {
                    connection = try SQLiteConnection.open(
                        storage: .file(path: path), threadPool: pool, on: group.next()
                    )
                    .wait()
                } catch {
                    stop()
                    throw SQLiteFileError("cannot open \(path) for writing: \(error)")
                }
            }
            _ = try rows(connection, "PRAGMA journal_mode=WAL")
            _ = try rows(connection, "PRAGMA synchronous=" + synchronous.rawValue)
        } catch let error as SQLiteFileError {
            throw error
        } catch {
            try? connection.close().wait()
            stop()
            throw error
        }
        return SQLiteFile(connection: connection, group: group, pool: pool)
    }

    /// Creates the database `path` so that a crash or a full disk at any moment leaves either
    /// no file at `path` or a whole one (SQLite's transactions alone cannot: the file exists,
    /// empty, from the moment a connection opens it). The database is built in `path.new`
    /// under a rollback journal with `synchronous=FULL` (the commit is on disk when it
    /// returns), switched to WAL mode there (so that opening `path` writes no journal of its
    /// own: a crash then would leave a hot rollback journal that a read-only check cannot
    /// replay), closed, synced, then renamed to `path`, and the directory is synced, as
    /// etcd and PostgreSQL make their files appear. A `path.new` left by an interrupted
    /// creation, with its journal, is removed first; so are a `-wal` and a `-shm` beside
    /// `path`: they belong to the file being replaced. The caller holds the directory (no
    /// other process creates or opens `path` meanwhile). Open the result with `open`.
    /// - Parameters:
    ///   - path: where the database appears.
    ///   - build: the schema and first rows, run inside one transaction.
    /// - Throws: `SQLiteFileError` "cannot create PATH: …" (a full disk among the causes), or
    ///   what `build` throws; `path.new` is removed then and `path` is untouched.
    package static func create(_ path: String, build: (SQLiteConnection) throws -> Void) throws {
        let temporary = path + ".new"
        for leftover in [temporary, temporary + "-journal", temporary + "-wal", temporary + "-shm"] {
            unlink(leftover)
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        defer {
            try? pool.syncShutdownGracefully()
            try? group.syncShutdownGracefully()
        }
        func fail(_ error: Error) -> Error {
            unlink(temporary)
            unlink(temporary + "-journal")
            if error is SQLiteFileError { return error }
            return SQLiteFileError("cannot create \(path): \(error)")
        }
        do {
            let connection = try SQLiteConnection.open(
                storage: .file(path: temporary), threadPool: pool, on: group.next()
            )
            .wait()
            do {
                _ = try rows(connection, "PRAGMA journal_mode=DELETE")
                _ = try rows(connection, "PRAGMA synchronous=FULL")
                _ = try rows(connection, "BEGIN")
                try build(connection)
                _ = try rows(connection, "COMMIT")
                _ = try rows(connection, "PRAGMA journal_mode=WAL")
            } catch {
                try? connection.close().wait()
                throw error
            }
            try connection.close().wait()
            // Closing the last connection writes the log into the file and removes it; a log
            // left (the write failed) would not follow the rename.
            for journal in [temporary + "-wal", temporary + "-journal"] where access(journal, F_OK) == 0 {
                throw SQLiteFileError("cannot create \(path): \(journal) was left behind (disk full?)")
            }
            try syncFile(temporary)
            unlink(path + "-wal")
            unlink(path + "-shm")
            guard rename(temporary, path) == 0 else { throw SQLiteFileError("cannot create \(path): \(errorText())") }
            try syncFile(path.lastIndex(of: "/").map { String(path[..<$0]) } ?? ".", directory: true)
        } catch {
            throw fail(error)
        }
    }

    /// fsync(2) of a file or a directory (a rename is durable once its directory is).
    private static func syncFile(_ path: String, directory: Bool = false) throws {
        let fd = Glibc.open(path.isEmpty ? "/" : path, O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0))
        guard fd >= 0 else { throw SQLiteFileError("cannot open \(path) to sync it: \(errorText())") }
        defer { Glibc.close(fd) }
        guard fsync(fd) == 0 else { throw SQLiteFileError("cannot sync \(path): \(errorText())") }
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }

    /// Closes the connection and stops its threads (the last commit is already written).
    package func close() {
        try? connection.close().wait()
        try? pool.syncShutdownGracefully()
        try? group.syncShutdownGracefully()
    }

    /// Runs one statement and collects its rows (off the event loop: it waits).
    package static func rows(_ connection: SQLiteConnection, _ sql: String, _ binds: [SQLiteData] = []) throws
        -> [SQLiteRow]
    {
        let collected = NIOLockedValueBox<[SQLiteRow]>([])
        try connection.query(sql, binds, logger: connection.logger) { row in
            collected.withLockedValue { $0.append(row) }
        }.wait()
        return collected.withLockedValue { $0 }
    }

    /// `file:PATH?mode=ro` with the characters a URI reserves escaped.
    static func readOnlyURI(_ path: String) -> String {
        var escaped = ""
        for scalar in path.unicodeScalars {
            switch scalar {
            case "%", "?", "#": escaped += "%" + String(scalar.value, radix: 16, uppercase: true)
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return "file:" + escaped + "?mode=ro"
    }
}
