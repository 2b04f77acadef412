// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// What a listener does when accept(2) fails (EMFILE and ENFILE at the descriptor limits,
/// ENOBUFS, ENOMEM): it stops accepting for a while instead of retrying at once, and says so.
///
/// Without it a listener with a connection waiting retries accept(2) in a loop, a core at 100%
/// (12,500 failures a second measured at RLIMIT_NOFILE) and no log line. The pause turns the
/// server channel's `autoRead` off and on again, as Netty's `ServerBootstrapAcceptor` does:
/// NIO's `AcceptBackoffHandler` only delays `read()` calls, and NIO 2.101's server channel
/// makes none after a failed accept (it stays registered for readable; measured with it:
/// 14,500 failed accept4 calls a second). The pause's length follows Go's net/http
/// `Server.Serve`: 5 ms after the first failure, doubled after each further one up to 1 s,
/// back to 5 ms once a connection is accepted. The log is a warning naming the listener and the
/// error at the first failure and then at most every `logInterval` with the number of failures
/// since; a notice when accepting works again.
package enum AcceptBackoff {
    /// The first pause after a failed accept.
    package static let firstDelay = TimeAmount.milliseconds(5)
    /// The longest pause.
    package static let maxDelay = TimeAmount.seconds(1)
    /// The least time between two warnings of one listener.
    package static let logInterval = TimeAmount.seconds(10)

    /// Adds the backoff and its log to a server channel's pipeline; for a bootstrap's
    /// `serverChannelInitializer` (NIO adds its accept handler after it).
    /// - Parameters:
    ///   - listener: the listener's name for the log (read on the channel's loop at each
    ///     warning, so a tcp port 0 can be resolved after the bind).
    /// - Throws: what adding a handler throws (the channel closed).
    package static func install(
        on channel: Channel, logger: Logger, listener: @escaping @Sendable () -> String
    ) throws {
        try channel.pipeline.syncOperations.addHandler(AcceptBackoffPause(logger: logger, listener: listener))
    }
}

/// A listener's failures: pauses accepting, and logs. Confined to the listener's loop.
final class AcceptBackoffPause: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Channel
    typealias InboundOut = Channel

    private let logger: Logger
    private let listener: () -> String
    private var delay: TimeAmount?
    private var failures = 0
    private var lastWarning: NIODeadline?
    private var resume: Scheduled<Void>?

    init(logger: Logger, listener: @escaping () -> String) {
        self.logger = logger
        self.listener = listener
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        accepted()
        context.fireChannelRead(data)
    }

    /// A failed accept: no accept(2) until the pause is over. Other errors go on.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let error = error as? IOError else {
            context.fireErrorCaught(error)
            return
        }
        let pause = failed(error)
        guard resume == nil, let options = context.channel.syncOptions else { return }
        try? options.setOption(.autoRead, value: false)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        resume = context.eventLoop.scheduleTask(in: pause) {
            let (handler, context) = loopBound.value
            handler.resume = nil
            guard context.channel.isActive else { return }
            try? context.channel.syncOptions?.setOption(.autoRead, value: true)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        resume?.cancel()
        resume = nil
    }

    /// Counts a failure and logs it (rate limited); returns the pause before the next accept.
    func failed(_ error: IOError) -> TimeAmount {
        let next = delay.map { min($0 * 2, AcceptBackoff.maxDelay) } ?? AcceptBackoff.firstDelay
        delay = next
        failures += 1
        let now = NIODeadline.now()
        if let last = lastWarning, now - last < AcceptBackoff.logInterval { return next }
        lastWarning = now
        logger.warning(
            "accept failed; pausing the listener",
            metadata: [
                "listener": "\(listener())",
                "error": "\(Self.name(of: error.errnoCode)) (\(String(cString: strerror(error.errnoCode))))",
                "failures": "\(failures)", "pause-ms": "\(next.nanoseconds / 1_000_000)",
            ])
        failures = 0
        return next
    }

    /// A connection was accepted: the pauses start again from the first.
    private func accepted() {
        guard delay != nil else { return }
        delay = nil
        logger.notice(
            "accepting again", metadata: ["listener": "\(listener())", "failures-since-warning": "\(failures)"])
        failures = 0
        lastWarning = nil
    }

    /// The symbolic name of the errors accept(2) reports when resources run out.
    static func name(of code: CInt) -> String {
        switch code {
        case EMFILE: return "EMFILE"
        case ENFILE: return "ENFILE"
        case ENOBUFS: return "ENOBUFS"
        case ENOMEM: return "ENOMEM"
        case ECONNABORTED: return "ECONNABORTED"
        default: return "errno \(code)"
        }
    }
}
