// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Dispatch
import NIOConcurrencyHelpers
import QMPServer
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// The QMP server as a service of the daemon's group: it was started (its listeners bound)
/// during the assembly; `run` serves until `quit`, a signal or the group's graceful shutdown.
struct QMPService: Service {
    let server: QMPServer
    let stopped: @Sendable () -> Void

    func run() async {
        await server.serve()
        stopped()
    }
}

/// A part started during the assembly that only has to be stopped: waits for the group's
/// graceful shutdown (or cancellation), then stops it.
struct StopOnShutdown: Service {
    let stop: @Sendable () async -> Void
    let done: @Sendable () -> Void

    func run() async {
        try? await gracefulShutdown()
        await stop()
        done()
    }
}

/// A value handed to another thread where only its thread-safe part is used.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// Runs `work`, which blocks (disk, a thread's join), on a thread of its own rather than on
/// Swift's cooperative pool.
func offloaded(_ work: @escaping @Sendable () -> Void) async {
    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
        DispatchQueue.global().async {
            work()
            done.resume()
        }
    }
}

/// Carries caught signals (one byte each on a pipe: cssd's C constructor, CProcessSignals) to the
/// server: SIGTERM and SIGINT stop it (at once if it serves, else as soon as it does), SIGHUP
/// reloads it (and is ignored before it serves: there is nothing loaded to reload yet).
final class SignalRouter: @unchecked Sendable {
    private let lock = NIOLock()
    private var server: QMPServer?
    private var stopRequested = false

    /// Reads the signal pipe on a thread of its own until its write end closes.
    func start(reading fd: CInt?) {
        guard let fd, fd >= 0 else { return }
        DispatchQueue(label: "cssd.signals").async { [self] in
            var byte: UInt8 = 0
            while true {
                let n = read(fd, &byte, 1)
                if n < 0 && errno == EINTR { continue }
                guard n == 1 else { return }
                route(Int32(byte))
            }
        }
    }

    func route(_ signal: Int32) {
        let server: QMPServer? = lock.withLock {
            if signal != SIGHUP { stopRequested = true }
            return self.server
        }
        guard let server else { return }
        if signal == SIGHUP {
            server.requestReload()
        } else {
            server.shutdown(cause: .hostSignal)
        }
    }

    /// From now on signals go to `server`. Returns false when a stop was already asked for.
    func attach(_ server: QMPServer) -> Bool {
        lock.withLock {
            self.server = server
            return !stopRequested
        }
    }
}
