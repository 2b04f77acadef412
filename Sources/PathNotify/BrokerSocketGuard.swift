// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// The socket of the publisher's broker connection, for the two times the publishing thread
/// must be freed from a rabbitmq-c call by someone else:
///
/// - a **stop**, which must end within a bound whatever the broker does (`interrupt`);
/// - a **write that overruns its deadline** (`during`, enforced by `watch` on a thread of its
///   own): rabbitmq-c 0.11 sends with no deadline of its own (`amqp_basic_publish` and
///   `amqp_send_method` pass `amqp_time_infinite()`, amqp_api.c and amqp_connection.c), so a
///   broker that stops reading blocks a publish until twice the heartbeat; everything else the
///   library bounds itself (connect, handshake and RPC timeouts, `amqp_simple_wait_frame_noblock`).
///
/// Freeing it is `shutdown(2)` (`SHUT_RDWR`): the poll, recv or send it blocks in returns at
/// once, rabbitmq-c reports the connection closed, and the thread goes on to its cleanup. The
/// descriptor itself is closed only by its owner, the publishing thread
/// (`amqp_destroy_connection`), after `detach` under the same lock: a number that was closed
/// and handed to another file is never shut down.
///
/// Thread safety: every method takes one lock for O(1); `watch` wakes every 50 ms.
final class BrokerSocketGuard: Sendable {
    private struct State {
        var socket: Int32 = -1
        /// The write in progress and when it must have ended.
        var step: String?
        var deadline = ContinuousClock.now
        /// The step whose deadline `watch` enforced, until `takeOverrun`.
        var overran: String?
    }

    private let state = NIOLockedValueBox(State())

    /// The connection's socket is `socket` (open, owned by the calling thread) from now on.
    func attach(_ socket: Int32) {
        state.withLockedValue { $0.socket = socket }
    }

    /// Forgets the socket; call before closing it.
    func detach() {
        state.withLockedValue {
            $0.socket = -1
            $0.step = nil
        }
    }

    /// Shuts the attached socket down, if any: the call blocked on it fails at once.
    /// - Returns: whether there was a socket.
    @discardableResult
    func interrupt() -> Bool {
        state.withLockedValue { state in
            guard state.socket >= 0 else { return false }
            shutdown(state.socket, Int32(SHUT_RDWR))
            return true
        }
    }

    /// Runs `body` (a write on the attached socket) with a deadline: past it, `watch` shuts the
    /// socket down and `takeOverrun` names `step`.
    func during<Result>(_ step: String, seconds: Double, _ body: () -> Result) -> Result {
        state.withLockedValue {
            $0.step = step
            $0.deadline = .now + .milliseconds(Int64(seconds * 1000))
        }
        defer { state.withLockedValue { $0.step = nil } }
        return body()
    }

    /// The step whose deadline was enforced since the last call, if any.
    func takeOverrun() -> String? {
        state.withLockedValue { state in
            defer { state.overran = nil }
            return state.overran
        }
    }

    /// Enforces `during`'s deadlines until `stopped` is true (checked every 50 ms).
    func watch(until stopped: () -> Bool) {
        while !stopped() {
            usleep(50_000)
            state.withLockedValue { state in
                guard let step = state.step, state.socket >= 0, ContinuousClock.now >= state.deadline else { return }
                state.overran = step
                state.step = nil
                shutdown(state.socket, Int32(SHUT_RDWR))
            }
        }
    }
}
