// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import NIOCore
import QMPCommands
import QMPWire

/// Adapts a `QMPSession` to a channel: greeting on connect, replies written once per read
/// batch, and back-pressure like QEMU's monitor: while the socket's output backlog is above
/// the high watermark, the handler stops processing and stops reading that client's input
/// (other clients are unaffected), and resumes when the backlog drains.
final class QMPConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let session: QMPSession
    private let core: ServerCore
    private var output: ByteBuffer
    /// Processing is suspended until the channel becomes writable.
    private var suspended = false
    /// A read was requested while suspended.
    private var readDeferred = false
    /// `pump` is running; `repump`: run it once more.
    private var pumping = false
    private var repump = false
    /// A pump is scheduled on the event loop.
    private var turnScheduled = false
    private var context: ChannelHandlerContext?

    /// Output produced between writes; larger batches are written and checked for back-pressure.
    static let outputChunk = 64 * 1024
    /// Most output one pump writes before it lets other connections have the event loop.
    static let turnBytes = 256 * 1024

    init(session: QMPSession, core: ServerCore) {
        self.session = session
        self.core = core
        self.output = ByteBuffer()
        session.deferralEnabled = true
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        output = context.channel.allocator.buffer(capacity: 4096)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        core.connectionOpened(self)
        try! session.writeGreeting(into: &output)  // a new session is negotiating: it cannot refuse
        writeOutput(context: context)
        context.flush()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        core.connectionClosed(self)
        session.close()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = unwrapInboundIn(data)
        // A stopped session (the connection is closing) takes no more input: it is dropped.
        guard (try? session.append(&input)) != nil else { return }
        pump(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func read(context: ChannelHandlerContext) {
        // While a reply waits for blocking work, input is not processed: stop reading it too,
        // so that what a client sends meanwhile stays bounded (in the socket).
        if suspended || session.isWaiting {
            readDeferred = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if suspended && context.channel.isWritable {
            suspended = false
            pump(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        core.logger.debug("connection error: \(error)")
        context.close(promise: nil)
    }

    /// Path events were queued for this connection by another one's command. They are written
    /// in a turn of their own, after that command's reply has gone out.
    func eventsQueued() {
        scheduleTurn()
    }

    private func scheduleTurn() {
        guard !turnScheduled, let context else { return }
        turnScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.turnScheduled = false
            guard let context = self.context, !self.suspended else { return }
            self.pump(context: context)
        }
    }

    /// Writes queued events and replies to buffered input while the socket keeps up; stops
    /// (and stops reading) when its backlog passes the high watermark, and yields the event
    /// loop after `turnBytes` so that a fast reader of a large burst does not hold up every
    /// other connection. Re-entrant calls (a flush that makes the channel writable again,
    /// events queued by a command this pump runs) only ask the running pump for another round.
    private func pump(context: ChannelHandlerContext) {
        if pumping {
            repump = true
            return
        }
        pumping = true
        defer { pumping = false }
        var written = 0
        var yielded = false
        repeat {
            repump = false
            if !context.channel.isWritable { suspended = true }
            while !suspended {
                let progress = session.process(into: &output, budget: Self.outputChunk)
                written += output.readableBytes
                writeOutput(context: context)
                if progress == .waiting { startDeferredWork(context: context) }
                // Checked after every write, not only when the budget ran out: events for a
                // client that does not read must stay in its bounded queue, not pile up here.
                if !context.channel.isWritable { suspended = true }
                guard progress == .outputFull else { break }
                if written >= Self.turnBytes && !suspended {
                    yielded = true
                    scheduleTurn()
                    break
                }
            }
            context.flush()
        } while repump && !suspended && !yielded
        if !suspended && !session.isWaiting && readDeferred {
            readDeferred = false
            context.read()
        }
    }

    /// Runs a command's blocking part on the server's thread pool; its reply is written, and
    /// processing resumes, back on the event loop.
    private func startDeferredWork(context: ChannelHandlerContext) {
        // Every `.waiting` round comes here; the work is taken (and started) once.
        guard session.state.name == .waitingToStart, let work = try? session.takeDeferredWork() else { return }
        core.blockingPool.runIfActive(eventLoop: context.eventLoop) { work() }
            .assumeIsolated()
            .whenComplete { result in
                let outcome: Result<Void, BackendError>
                switch result {
                case .success(let value): outcome = value
                case .failure(let error):
                    outcome = .failure(.io(path: "(thread pool)", operation: "running on", errno: 0, message: "\(error)"))
                }
                // A session stopped meanwhile (shutdown) has dropped the reply: the outcome goes too.
                try? self.session.completeDeferred(outcome, into: &self.output)
                guard let context = self.context else { return }
                self.pump(context: context)
            }
    }

    private func writeOutput(context: ChannelHandlerContext) {
        guard output.readableBytes > 0 else { return }
        context.write(wrapOutboundOut(output), promise: nil)
        output = context.channel.allocator.buffer(capacity: 4096)
    }

    /// Sends an event to this connection if it is in command mode.
    func sendEvent(_ name: String, data: JSON?, seconds: Int, microseconds: Int) {
        guard let context else { return }
        if session.writeEvent(name, data: data, seconds: seconds, microseconds: microseconds, into: &output) {
            writeOutput(context: context)
            context.flush()
        }
    }

    /// Stops the session, sends what is pending, and closes.
    func closeAfterFlush() {
        session.stop()
        guard let context else { return }
        writeOutput(context: context)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(capacity: 0)))
            .whenComplete { _ in channel.close(promise: nil) }
    }
}
