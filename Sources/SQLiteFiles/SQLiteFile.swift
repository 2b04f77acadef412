// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SQLiteNIO

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
