// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import NIOPosix
import QMPCommands

/// The server's threads for work that blocks, one per kind, so that no kind waits behind
/// another: a sysfs write the kernel takes seconds to complete (SCLP) holds neither the durable
/// replies of other connections (their commit waits) nor a reload of the TLS credentials or the
/// authorization policy, which must take effect within its stated time (a revoked client is
/// refused within a second of the policy file changing, whatever else is pending).
///
/// Within a kind, work runs one at a time in order: backend writes keep the order in which
/// they were sent, and commit waits are answered in the order of their records.
final class BlockingThreads: Sendable {
    /// Backend writes (`DeferredWork.Wait.backendWrite`).
    let backendWrites = NIOThreadPool(numberOfThreads: 1)
    /// Waits for a record in the state dir to be durable (`DeferredWork.Wait.durableRecord`).
    let durableRecords = NIOThreadPool(numberOfThreads: 1)
    /// TLS credential and authorization-policy reloads (SIGHUP, the policy file changing).
    let security = NIOThreadPool(numberOfThreads: 1)

    init() {
        for pool in [backendWrites, durableRecords, security] { pool.start() }
    }

    func pool(for wait: DeferredWork.Wait) -> NIOThreadPool {
        switch wait {
        case .backendWrite: return backendWrites
        case .durableRecord: return durableRecords
        }
    }

    /// Shuts every thread down without waiting: a write the kernel never completes must not
    /// hold the server's stop.
    func shutdown() {
        for pool in [backendWrites, durableRecords, security] { pool.shutdownGracefully { _ in } }
    }

    /// Shuts every thread down and waits (tests).
    func syncShutdown() throws {
        for pool in [backendWrites, durableRecords, security] { try pool.syncShutdownGracefully() }
    }
}
