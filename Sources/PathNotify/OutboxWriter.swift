// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Logging
import NIOConcurrencyHelpers
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Keeps the outbox in the state dir (`OutboxStore`) on a thread of its own, so that neither
/// the event loop nor the broker connection waits on the disk, and a broker outage does not
/// stop the writing.
///
/// Loop: wait for the outbox's writer signal (or 1 s; 0.1 s while something waits unwritten
/// or unconfirmed: deletions and the position are not worth a wake-up of their own), then
/// write everything there is in
/// transactions of up to 10,000 new rows, with the deletions of what the broker confirmed
/// since (batched by nature: what accumulated while the last transaction ran), the sequence
/// position and the gaps. New rows become publishable once written. A failed write (disk
/// full) is logged once per distinct error, counted and retried after 0.5 s; meanwhile the
/// publisher waits and the bounded outbox fills (then overflows into a gap, as in an outage).
final class OutboxWriter: @unchecked Sendable {
    private let outbox: NotificationOutbox
    private let store: OutboxStore
    private let logger: Logger
    private let pool = NIOThreadPool(numberOfThreads: 1)
    private let stopped = NIOLockedValueBox(false)

    init(outbox: NotificationOutbox, store: OutboxStore, logger: Logger) {
        self.outbox = outbox
        self.store = store
        self.logger = logger
    }

    func start() {
        pool.start()
        pool.submit { [self] _ in run() }
    }

    /// Stops the thread, writes what is left (here: the thread is gone), and closes the file.
    func stop() {
        stopped.withLockedValue { $0 = true }
        outbox.writerSignal.lock()
        outbox.writerSignal.unlock(withValue: 1)
        try? pool.syncShutdownGracefully()
        var lastError: String?
        _ = drain(&lastError)
        store.close()
    }

    private func run() {
        var lastError: String?
        while !stopped.withLockedValue({ $0 }) {
            // Woken for rows whose change is durable (or many rows, or many deletions); what
            // did not wake it is written within the shorter wait.
            let wait = outbox.hasDeferredWrite ? NotificationOutbox.deferredWriteDelay : 1
            if outbox.writerSignal.lock(whenValue: 1, timeoutSeconds: wait) { outbox.writerSignal.unlock(withValue: 0) }
            if !drain(&lastError) { usleep(500_000) }
        }
    }

    /// Writes until nothing is left or a write fails.
    /// - Returns: false when a write failed.
    private func drain(_ lastError: inout String?) -> Bool {
        while let write = outbox.takeWrite() {
            do {
                try store.write(write)
                outbox.written(write, ok: true)
                if lastError != nil {
                    logger.notice("notify: writing the outbox works again", metadata: ["file": "\(store.path)"])
                    lastError = nil
                }
            } catch {
                outbox.written(write, ok: false)
                let message = "\(error)"
                if message != lastError {
                    logger.error(
                        "notify: cannot write the outbox in the state dir: \(message); retrying",
                        metadata: ["file": "\(store.path)"])
                    lastError = message
                }
                return false
            }
        }
        return true
    }
}
