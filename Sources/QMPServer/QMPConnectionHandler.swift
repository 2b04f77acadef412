// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import JSONValues
import NIOCore
import QMPCommands

/// Adapts a `QMPSession` to a channel: greeting on connect, replies written once per read
/// batch, bounded memory per client, and every reply delivered before the connection closes.
///
/// Flow control (docs/running.md, "Memory and fairness"):
/// - **output**: while the socket's output backlog is above the channel's high watermark, no
///   request is processed and no event written (`blocked`) until it falls below the low mark;
/// - **input**: the socket is read while the input held unprocessed is under `inputBacklog`,
///   also while output is blocked, so that a client that writes a whole batch before it reads
///   a reply (a blocking write of 40,000 requests) is served, as QEMU serves it; beyond the
///   bound reading stops, so a client that never reads holds at most that much here;
/// - **fairness**: a pump yields the event loop after `turnBytes` of output.
///
/// Half-close: with `allowRemoteHalfClosure` on the channel, a client that shuts down its
/// sending side (`nc -N`, `socat`, `shutdown(SHUT_WR)`) still gets a whole reply to every
/// complete request it sent, then the connection closes. An unfinished value at that point is
/// dropped without a reply, as QEMU drops it.
///
/// Not thread-safe: everything runs on the channel's event loop.
final class QMPConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Where the connection stands. One value instead of the flags it once was; every event
    /// handler below is a transition of it.
    enum State: Equatable {
        /// Not active yet: no greeting sent.
        case inactive
        /// Serving requests and events.
        case serving(Activity, input: Input)
        /// No more processing: waits until what was written is flushed, then closes.
        case closing
        /// The channel is gone.
        case closed
    }

    /// What processing is doing while the connection serves.
    enum Activity: Equatable {
        /// Nothing runs; input, events, writability and deferred replies start a pump.
        case idle
        /// A pump runs; `again`: something arrived meanwhile, so it runs one more round.
        case pumping(again: Bool)
        /// The output backlog is over the high watermark: nothing runs until it drains.
        case blocked
        /// A pump gave up the event loop after `turnBytes`; its next turn is scheduled.
        case yielding
    }

    /// The client's sending side, as this handler sees it.
    enum Input: Equatable {
        /// Reads pass through.
        case open
        /// A read was asked for and is held back: the input held is at its bound.
        case held
        /// The client half-closed; what it sent is answered, then the connection closes.
        case ended
    }

    /// A transition the state machine does not allow (a bug, reported through the pipeline).
    struct StateError: Error, CustomStringConvertible {
        let event: String
        let state: State
        var description: String { "QMP connection: \(event) in state \(state)" }
    }

    let session: QMPSession
    private let core: ServerCore
    /// Who is connected, through which listener.
    let peer: ConnectionPeer
    /// QMP text received and written (plaintext, whatever the transport).
    private var bytesIn = 0
    private var bytesOut = 0
    private var output: ByteBuffer
    private(set) var state = State.inactive
    private var context: ChannelHandlerContext?
    /// Most unprocessed input held before reading stops (never less than one whole pending
    /// value plus one read, so that a value of the largest allowed size can always complete).
    let inputBacklog: Int

    /// Output produced between writes; larger batches are written and checked for back-pressure.
    static let outputChunk = 64 * 1024
    /// Most output one pump writes before it lets other connections have the event loop.
    static let turnBytes = 256 * 1024
    /// Largest single read (the channel's receive allocator maximum).
    static let maxRead = 64 * 1024

    init(
        session: QMPSession, core: ServerCore,
        peer: ConnectionPeer = ConnectionPeer(listener: "(none)", transport: .unix),
        inputBacklog: Int = ServerConfiguration.defaultInputBacklog
    ) {
        self.session = session
        self.core = core
        self.peer = peer
        self.output = ByteBuffer()
        self.inputBacklog = max(inputBacklog, session.server.options.limits.maxBufferedValueBytes + Self.maxRead)
        session.deferralEnabled = true
        session.commandObserver = core.observer
        let audit = CommandAudit(logger: core.logger, peer: peer, connectionID: session.connectionID)
        session.audit = { audit.record($0, $1) }
    }

    /// This connection for query-connections.
    func report() -> ConnectionReport {
        ConnectionReport(
            id: session.connectionID, listener: peer.listener, transport: peer.transport, identity: peer.identity,
            credentials: peer.credentials, readOnly: session.isReadOnly, negotiated: session.isNegotiated,
            bytesIn: bytesIn, bytesOut: bytesOut)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        output = context.channel.allocator.buffer(capacity: 4096)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        guard state == .inactive else {
            context.fireErrorCaught(StateError(event: "channelActive", state: state))
            return
        }
        state = .serving(.idle, input: .open)
        core.connectionOpened(self)
        try! session.writeGreeting(into: &output)  // a new session is negotiating: it cannot refuse
        writeOutput(context: context)
        context.flush()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        let wasOpen = state != .inactive && state != .closed
        state = .closed
        if wasOpen { core.connectionClosed(self) }
        // Commands whose replies wait for a commit made their changes: those are committed
        // all the same (in order, after any commit that runs); nobody gets the replies.
        if let commit = session.abandonQueuedReplies() {
            core.threads.pool(for: .durableRecord).submit { _ in commit() }
        }
        session.close()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .serving(_, let input) = state, input != .ended else { return }  // closing: ignored
        var bytes = unwrapInboundIn(data)
        bytesIn += bytes.readableBytes
        // A stopped session (the connection is closing) takes no more input: it is dropped.
        guard (try? session.append(&bytes)) != nil else { return }
        pump(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            if case .serving(let activity, _) = state {
                state = .serving(activity, input: .ended)
                pump(context: context)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func read(context: ChannelHandlerContext) {
        switch state {
        case .inactive:
            context.read()
        case .serving(let activity, .open), .serving(let activity, .held):
            if session.bufferedInputBytes >= inputBacklog {
                state = .serving(activity, input: .held)
            } else {
                state = .serving(activity, input: .open)
                context.read()
            }
        case .serving(_, .ended), .closing, .closed:
            break
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            switch state {
            case .serving(.blocked, let input):
                state = .serving(.idle, input: input)
                pump(context: context)
            case .serving(.pumping, let input):
                state = .serving(.pumping(again: true), input: input)
            default:
                break
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        core.logger.debug("connection error: \(error)")
        context.close(promise: nil)
    }

    /// Path events were queued for this connection by another one's command. They are written
    /// in a turn of their own, after that command's reply has gone out. A blocked connection
    /// leaves them in its subscriptions' bounded queues; a running pump writes them.
    func eventsQueued() {
        switch state {
        case .serving(.idle, _): scheduleTurn()
        case .serving(.pumping, let input): state = .serving(.pumping(again: true), input: input)
        default: break
        }
    }

    private func scheduleTurn() {
        guard case .serving(_, let input) = state, let context else { return }
        state = .serving(.yielding, input: input)
        context.eventLoop.assumeIsolated().execute {
            guard case .serving(.yielding, let input) = self.state, let context = self.context else { return }
            self.state = .serving(.idle, input: input)
            self.pump(context: context)
        }
    }

    /// Writes queued events and replies to buffered input while the socket keeps up; stops when
    /// its backlog passes the high watermark (`blocked`), and yields the event loop after
    /// `turnBytes` so that a fast reader of a large burst does not hold up every other
    /// connection. Re-entrant calls (a flush that makes the channel writable again, events
    /// queued by a command this pump runs) only ask the running pump for another round.
    private func pump(context: ChannelHandlerContext) {
        switch state {
        case .serving(.idle, let input):
            state = .serving(.pumping(again: false), input: input)
        case .serving(.pumping, let input):
            state = .serving(.pumping(again: true), input: input)
            return
        default:
            return  // blocked or yielding: writability or the scheduled turn resumes; else nothing to do
        }
        var written = 0
        var progress = QMPSession.Progress.needInput
        while true {
            var next = Activity.idle
            if !context.channel.isWritable { next = .blocked }
            while next == .idle {
                progress = session.process(into: &output, budget: Self.outputChunk)
                written += output.readableBytes
                writeOutput(context: context)
                startDeferredWork(context: context)
                // Checked after every write, not only when the budget ran out: events for a
                // client that does not read must stay in its bounded queue, not pile up here.
                if !context.channel.isWritable {
                    next = .blocked
                } else if progress != .outputFull {
                    break
                } else if written >= Self.turnBytes {
                    next = .yielding
                }
            }
            context.flush()
            // The flush may have closed the channel, or asked for another round.
            guard case .serving(.pumping(let again), let input) = state else { return }
            if next == .blocked && context.channel.isWritable { next = .idle }
            if next == .idle && again {
                state = .serving(.pumping(again: false), input: input)
                continue
            }
            state = .serving(next == .yielding ? .idle : next, input: input)
            if next == .yielding { scheduleTurn() }
            break
        }
        afterPump(context: context, progress: progress)
    }

    /// Releases a held read once the input held is under its bound again, and closes a
    /// half-closed connection once every complete request it sent has been answered.
    private func afterPump(context: ChannelHandlerContext, progress: QMPSession.Progress) {
        guard case .serving(let activity, let input) = state else { return }
        switch input {
        case .held where session.bufferedInputBytes < inputBacklog:
            state = .serving(activity, input: .open)
            context.read()
        case .ended where activity == .idle && progress == .needInput && !session.isWaiting:
            let dropped = session.discardIncompleteInput()
            if dropped > 0 {
                core.logger.debug("client closed its side inside a JSON value", metadata: ["dropped": "\(dropped)"])
            }
            closeAfterFlush()
        default:
            break
        }
    }

    /// Runs a command's blocking part on the server's thread for its kind (`BlockingThreads`);
    /// its reply is written, and processing resumes, back on the event loop.
    private func startDeferredWork(context: ChannelHandlerContext) {
        // Records of commands queued behind a commit: one wait for all of them (group commit);
        // those queued meanwhile go with the next.
        if let wait = session.takeDurableWait() {
            core.threads.pool(for: .durableRecord).runIfActive(eventLoop: context.eventLoop) { wait.run() }
                .assumeIsolated()
                .whenComplete { result in
                    let outcomes: [DeferredWork.Outcome]
                    switch result {
                    case .success(let value): outcomes = value
                    case .failure(let error):
                        // The pool stopped (shutdown): nothing is known to be durable.
                        let failure = BackendError.io(
                            path: "(thread pool)", operation: "running on", errno: 0, message: "\(error)")
                        outcomes = Array(repeating: .failure(failure), count: wait.count)
                    }
                    self.session.completeDurableWait(outcomes)
                    guard let context = self.context, case .serving = self.state else { return }
                    self.pump(context: context)
                }
        }
        // Every `.waiting` round comes here; the work is taken (and started) once.
        guard session.state.name == .waitingToStart, let wait = session.pendingWait,
            let work = try? session.takeDeferredWork()
        else { return }
        core.threads.pool(for: wait).runIfActive(eventLoop: context.eventLoop) { work() }
            .assumeIsolated()
            .whenComplete { result in
                let outcome: DeferredWork.Outcome
                switch result {
                case .success(let value): outcome = value
                case .failure(let error):
                    outcome = .failure(
                        .io(path: "(thread pool)", operation: "running on", errno: 0, message: "\(error)"))
                }
                // A session stopped meanwhile (shutdown) has dropped the reply: the outcome goes too.
                try? self.session.completeDeferred(outcome, into: &self.output)
                guard let context = self.context, case .serving = self.state else { return }
                self.writeOutput(context: context)
                context.flush()
                self.pump(context: context)
            }
    }

    private func writeOutput(context: ChannelHandlerContext) {
        guard output.readableBytes > 0 else { return }
        bytesOut += output.readableBytes
        context.write(wrapOutboundOut(output), promise: nil)
        output = context.channel.allocator.buffer(capacity: 4096)
    }

    /// Sends an event to this connection if it is in command mode.
    func sendEvent(_ name: String, data: JSON?, seconds: Int, microseconds: Int) {
        guard let context, case .serving = state else { return }
        if session.writeEvent(name, data: data, seconds: seconds, microseconds: microseconds, into: &output) {
            writeOutput(context: context)
            context.flush()
        }
    }

    /// Sends an event to this connection, if it is in command mode, once the path events
    /// deliverable to it now are written (in a turn of its own, as queued path events).
    func sendEventAfterPathEvents(_ name: String, data: JSON?, seconds: Int, microseconds: Int) {
        guard case .serving = state else { return }
        if session.queueEventAfterPathEvents(name, data: data, seconds: seconds, microseconds: microseconds) {
            eventsQueued()
        }
    }

    /// Stops the session, sends what is pending, and closes once it is written.
    func closeAfterFlush() {
        session.stop()
        guard let context, case .serving = state else { return }
        state = .closing
        writeOutput(context: context)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(capacity: 0)))
            .whenComplete { _ in channel.close(promise: nil) }
    }
}
