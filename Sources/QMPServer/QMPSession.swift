// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import JSONValues
import NIOCore
import PathChangePipeline
import PathEvents
import QMPCommands
import QMPWire

/// One QMP connection's protocol state, independent of any socket: bytes in, reply lines out.
///
/// It frames the input (JSONScanner), parses each value (jansson, or the QEMU-grammar parser),
/// runs negotiation and dispatch, and writes replies in request order. It keeps at most one
/// partial value of input (bounded by `WireLimits`) and stops between values when the output
/// it produced reaches the caller's budget, so a client that floods requests without reading
/// cannot make it produce unbounded output.
///
/// Its state is one `State`; each call says in which states it may be made, and a call made
/// in another state throws `SessionStateError` and changes nothing (qemu.qmp's `Runstate` and
/// `StateError`):
///
/// | call                | negotiating | commandMode | waiting, work not taken | waiting, work taken | stopped |
/// |---------------------|-------------|-------------|-------------------------|---------------------|---------|
/// | `writeGreeting`     | writes      | error       | error                   | error               | error   |
/// | `append`            | buffers     | buffers     | buffers                 | buffers             | error   |
/// | `process`/`receive` | runs        | runs        | events, `.waiting`      | events, `.waiting`  | `.stopped` |
/// | `takeDeferredWork`  | error       | error       | the work; taken         | error               | error   |
/// | `completeDeferred`  | error       | error       | error                   | reply; commandMode  | error   |
/// | `writeEvent`        | false (QEMU sends no event before negotiation) | writes | writes | writes | false |
/// | `enterCommandMode`  | commandMode | trap        | trap                    | trap                | trap    |
/// | `stop`, `close`     | stopped     | stopped     | stopped (reply dropped) | stopped (reply dropped) | stopped |
///
/// `enterCommandMode` (not in the table: negotiating, during a dispatch) is a `SessionControl`
/// requirement, which cannot throw. Its caller makes it only in the right state
/// (qmp_capabilities checks `isNegotiated` first), so a wrong call is a defect: it traps with
/// the state error's text. A command's `.deferred` outcome enters `waiting` (from command mode,
/// where dispatch runs) when deferral is enabled and the work has a blocking part; otherwise
/// the session runs the work inline and replies at once.
///
/// Group commit per connection (`--state-dir`): work that only waits for a durable record
/// (`DeferredWork.record`) does not enter `waiting`. Its reply is queued and the session keeps
/// running the requests behind it that are read-only or recorded (at most
/// `maxQueuedReplies`), queueing their replies in order; `takeDurableWait` hands out one wait
/// for every record queued so far (one commit), while the records of later requests gather
/// for the next. A reply is written once its record is durable and every reply before it was
/// written; a change's events follow its reply, as without a state dir. A commit that fails
/// fails every reply it was for with that command's error (except a record another
/// connection's commit took meanwhile: that one is durable). Any other request waits, unrun,
/// until the queue is empty (`quit`, a subscription, a backend write keep their place).
/// While replies are queued the session stays in command mode; `isWaiting` is true.
package final class QMPSession: SessionControl {
    /// Where the session is in the protocol.
    package enum State {
        /// Greeting sent; only negotiation commands (qmp_capabilities) until it succeeds.
        case negotiating
        /// Capabilities negotiated; `oob`: exec-oob is enabled.
        case commandMode(oob: Bool)
        /// A command's reply waits for work run off the event loop; input is not processed.
        case waiting(PendingReply)
        /// The server is shutting down or the connection closed: nothing more is processed.
        case stopped

        /// The state without its details, for errors and tests.
        package var name: StateName {
            switch self {
            case .negotiating: return .negotiating
            case .commandMode: return .commandMode
            case .waiting(let pending): return pending.workTaken ? .waitingForWork : .waitingToStart
            case .stopped: return .stopped
            }
        }
    }

    /// `State` without its details.
    package enum StateName: String, CaseIterable, Hashable, Sendable {
        case negotiating
        case commandMode = "command mode"
        /// Waiting for deferred work that has not been taken (`takeDeferredWork`) yet.
        case waitingToStart = "waiting for deferred work to start"
        /// Waiting for deferred work that runs (`completeDeferred` ends it).
        case waitingForWork = "waiting for deferred work"
        case stopped
    }

    /// A reply that waits for deferred work.
    package struct PendingReply {
        /// The request's id, echoed on the reply.
        let id: QMPReplyID
        let work: DeferredWork
        /// `work.blocking`, which a waiting reply always has.
        let blocking: @Sendable () -> DeferredWork.Outcome
        /// Whether exec-oob was enabled: the command mode to return to.
        package let oob: Bool
        /// Whether the work was handed to the caller to run.
        package internal(set) var workTaken = false
    }

    package let server: ServerState
    package let isReadOnly: Bool
    package let connectionID: ConnectionID
    /// The commands run here come from this client's connection.
    package var origin: CommandOrigin { .connection(connectionID) }
    package private(set) var state: State = .negotiating

    private var scanner: JSONScanner
    private var eventEncoder: PathEventEncoder
    /// Events to write once the path events before them are (`queueEventAfterPathEvents`),
    /// with the newest sequence number published when each was queued.
    private var afterPathEvents: [(name: String, data: JSON?, seconds: Int, microseconds: Int, through: UInt64)] = []
    /// While a reply waits for its changes to become durable: the first of them
    /// (`DeferredWork.holdsEventsFrom`). Its events (and later ones) follow the reply.
    private var heldFrom: UInt64?

    /// A reply queued behind a durable record's commit (group commit, see the type).
    private struct QueuedReply {
        enum Content {
            /// Made: written once every reply before it is.
            case ready(Result<JSON, QMPError>)
            /// Waits for `record` to be durable, then `work.finish` makes it.
            case durable(DeferredWork, DurableRecord)
            /// Waits for work that blocks on its own (a recorded command whose wait is not a
            /// plain record): once first in line, the session waits for it as without a queue.
            case blocking(DeferredWork)
        }

        let id: QMPReplyID
        var content: Content
        /// The first sequence number of the changes whose events follow this reply.
        let holdsEventsFrom: UInt64?
    }

    /// Replies in request order, oldest first; the first `committing` wait for a commit that runs.
    private var queued = CircularBuffer<QueuedReply>()
    /// A wait from `takeDurableWait` runs.
    private var durableWaitRuns = false
    /// How many replies at the front of `queued` the running wait covers.
    private var committing = 0
    /// Replies of `queued` whose wait was not handed out yet.
    private var uncommitted = 0
    /// The first sequence number whose events wait with a queued reply: its events follow it.
    private var queuedHeldFrom: UInt64?
    /// A request that may not run while replies are queued; it runs once they are written.
    private var stalled: QMPRequest?
    /// Most replies queued behind commits: beyond it input waits (bounds memory per client).
    package static let maxQueuedReplies = 1024
    /// Input not yet consumed: the tail of a partial value and/or unscanned bytes.
    private var pending: ByteBuffer?

    package enum Progress: Equatable {
        /// All input consumed; read more.
        case needInput
        /// The output budget is used up; call `process` again once the output drained.
        case outputFull
        /// The session stopped (server shutting down).
        case stopped
        /// A command's reply waits for work run off the loop (`takeDeferredWork`, then
        /// `completeDeferred`); input is not processed meanwhile.
        case waiting
    }

    /// Set by the network layer: a command's deferred work runs off the event loop. Without
    /// it (tests, the fuzzer) the session runs deferred work inline and replies at once.
    /// Configuration, not state: it does not change while the session runs.
    package var deferralEnabled = false

    /// In command mode (capabilities negotiated), including while a reply waits.
    package var isNegotiated: Bool {
        switch state {
        case .commandMode, .waiting: return true
        case .negotiating, .stopped: return false
        }
    }

    /// exec-oob is enabled.
    package var isOOBEnabled: Bool {
        switch state {
        case .commandMode(let oob): return oob
        case .waiting(let pending): return pending.oob
        case .negotiating, .stopped: return false
        }
    }

    /// The session stopped (shutdown or closed): remaining input is ignored.
    package var isStopped: Bool {
        if case .stopped = state { return true }
        return false
    }

    /// Called with each request for a command that may change state (not read-only: not
    /// `query-*`, not negotiation; unknown names included) and its outcome, once the reply is
    /// known (the audit log). Requests refused before dispatch (no command) are not passed.
    package var audit: ((QMPRequest, Result<JSON, QMPError>) -> Void)? {
        didSet { pipeline = Self.pipeline(audit: audit, observer: commandObserver) }
    }
    /// Told of every dispatched command (metrics); nil: nothing is measured.
    package var commandObserver: CommandObserver? {
        didSet { pipeline = Self.pipeline(audit: audit, observer: commandObserver) }
    }
    /// What runs around the dispatch of every command.
    private var pipeline = QMPSession.pipeline(audit: nil, observer: nil)

    /// The command pipeline, outermost first: the audit (outside the timing, which it is not
    /// part of, and of the durable record, whose failure it logs), metrics (timing the
    /// dispatch and the record's append), durability. The audit and the metrics are there
    /// only when set: a request pays for no concern it does not have (reading the clock, and
    /// an optional instant, cost 1-2 % per request).
    private static func pipeline(
        audit: ((QMPRequest, Result<JSON, QMPError>) -> Void)?, observer: CommandObserver?
    ) -> CommandPipeline {
        var middlewares: [CommandMiddleware] = []
        if let audit { middlewares.append(AuditMiddleware(audit: audit)) }
        if let observer { middlewares.append(MetricsMiddleware(observer: observer)) }
        middlewares.append(DurabilityMiddleware())
        return CommandPipeline(middlewares)
    }

    /// Whether a reply waits for deferred work (or for a commit: group commit).
    package var isWaiting: Bool {
        if case .waiting = state { return true }
        return !queued.isEmpty || stalled != nil
    }

    package init(server: ServerState, readOnly: Bool = false) {
        self.server = server
        self.isReadOnly = readOnly
        self.connectionID = server.makeConnectionID()
        self.scanner = JSONScanner(limits: server.options.limits)
        self.eventEncoder = PathEventEncoder(epoch: server.journal.epoch)
    }

    /// Bytes of input held (a partial value, or input not yet processed).
    package var bufferedInputBytes: Int { pending?.readableBytes ?? 0 }

    /// Throws unless the session is in one of `allowed`.
    private func require(_ call: String, _ allowed: [StateName]) throws(SessionStateError) {
        let current = state.name
        guard allowed.contains(current) else { throw SessionStateError(call: call, state: current, allowed: allowed) }
    }

    /// Writes the greeting (QEMU's, with the oob capability offered).
    /// - Throws: `SessionStateError` unless negotiating: the greeting opens negotiation.
    package func writeGreeting(into output: inout ByteBuffer) throws(SessionStateError) {
        try require("writeGreeting", [.negotiating])
        ReplyEncoder.writeLine(server.greeting(), to: &output)
    }

    /// Adds input and processes as much as the output budget allows. A stopped session takes
    /// no input and reports `.stopped`.
    package func receive(_ input: inout ByteBuffer, into output: inout ByteBuffer, budget: Int) -> Progress {
        guard !isStopped else { return .stopped }
        buffer(&input)
        return process(into: &output, budget: budget)
    }

    /// Adds input to process later (while a reply waits too: it is processed after the reply).
    /// - Throws: `SessionStateError` when stopped: nothing will process it.
    package func append(_ input: inout ByteBuffer) throws(SessionStateError) {
        try require("append", [.negotiating, .commandMode, .waitingToStart, .waitingForWork])
        buffer(&input)
    }

    private func buffer(_ input: inout ByteBuffer) {
        if pending == nil {
            pending = input
        } else {
            pending!.writeBuffer(&input)
        }
    }

    /// Writes this connection's queued path events, then processes buffered input, until both
    /// are used up or `output` holds `budget` bytes. The events a command publishes follow its
    /// reply. While a reply waits, only events are written (`.waiting`); when stopped, nothing
    /// (`.stopped`): the result reports the state, so this is never an error.
    package func process(into output: inout ByteBuffer, budget: Int) -> Progress {
        switch state {
        case .stopped: return .stopped
        case .waiting: return writeEvents(into: &output, budget: budget) ? .waiting : .outputFull
        case .negotiating, .commandMode: break
        }
        guard writeEvents(into: &output, budget: budget) else { return .outputFull }
        guard writeQueuedReplies(into: &output, budget: budget) else { return .outputFull }
        if case .waiting = state { return .waiting }  // the queue's head blocks on its own
        if let request = stalled {
            guard queued.isEmpty else { return .waiting }
            stalled = nil
            handle(request, into: &output)
            if case .waiting = state { return .waiting }
            guard writeEvents(into: &output, budget: budget) else { return .outputFull }
        }
        guard var buffer = pending else { return .needInput }
        pending = nil  // keep the buffer uniquely referenced: no copy on write
        var progress = Progress.needInput
        loop: while true {
            if output.readableBytes >= budget {
                progress = .outputFull
                break
            }
            // Replies wait for a commit: input waits too once the queue is full or ends in
            // work that blocks (nothing behind it may run before it).
            if queued.count >= Self.maxQueuedReplies || queuedEndsInBlockingWork {
                progress = .waiting
                break
            }
            // After `quit` (on any connection) nothing more runs: input behind it is dropped.
            if server.quitRequested {
                buffer.moveReaderIndex(to: buffer.writerIndex)
                break
            }
            guard let frame = scanner.decode(buffer: &buffer) else { break }
            switch frame {
            case .value(let bytes, let careful):
                switch bytes.withUnsafeReadableBytes({ JSONValueParser.parse($0, careful: careful) }) {
                case .success(let value): handle(value, into: &output)
                case .failure(let error): reply(.failure(.generic(error.description)), id: .none, into: &output)
                }
            case .error(let error):
                reply(.failure(.generic(error.description)), id: .none, into: &output)
            }
            switch state {
            case .waiting:
                progress = .waiting
                break loop
            case .stopped:
                progress = .stopped
                break loop
            case .negotiating, .commandMode:
                break
            }
            if stalled != nil {
                progress = .waiting
                break
            }
            if !writeEvents(into: &output, budget: budget) {
                progress = .outputFull
                break
            }
        }
        // The scanner consumed what it no longer needs; keep the rest for the next call.
        if buffer.readableBytes > 0 && !isStopped {
            if buffer.readerIndex > 64 * 1024 && buffer.readerIndex > buffer.capacity / 2 {
                buffer.discardReadBytes()
            }
            pending = buffer
        }
        return progress
    }

    private func handle(_ value: JSON, into output: inout ByteBuffer) {
        switch QMPRequest.check(value, oobEnabled: isOOBEnabled) {
        case .success(let request): handle(request, into: &output)
        case .failure(let rejection): reply(.failure(.generic(rejection.desc)), id: rejection.replyID, into: &output)
        }
    }

    private func handle(_ request: QMPRequest, into output: inout ByteBuffer) {
        let id = request.replyID
        let call = CommandCall(request, server: server)
        // Behind queued replies only what neither depends on nor changes anything but the
        // state a commit records runs: queries and recorded commands. Anything else waits.
        if !queued.isEmpty && !call.isReadOnly && server.durability?.records(request.command) != true {
            stalled = request
            return
        }
        switch pipeline.handle(call, context: CommandContext(server: server, session: self)) {
        case .done(let result):
            reply(result, id: id, into: &output)
        case .waits(let work):
            // Off the loop only with a loop to defer to: the reply is then written by
            // `completeDeferred`. Without one (tests, the fuzzer) the work runs here.
            guard deferralEnabled, let blocking = work.blocking, case .commandMode(let oob) = state else {
                reply(work.runInline(), id: id, into: &output)
                return
            }
            if let record = work.record, work.waitsOn == .durableRecord {
                enqueue(QueuedReply(id: id, content: .durable(work, record), holdsEventsFrom: work.holdsEventsFrom))
                uncommitted += 1
            } else if !queued.isEmpty {
                enqueue(QueuedReply(id: id, content: .blocking(work), holdsEventsFrom: work.holdsEventsFrom))
            } else {
                state = .waiting(PendingReply(id: id, work: work, blocking: blocking, oob: oob))
                heldFrom = work.holdsEventsFrom
            }
        }
    }

    private func enqueue(_ entry: QueuedReply) {
        if queuedHeldFrom == nil { queuedHeldFrom = entry.holdsEventsFrom }
        queued.append(entry)
    }

    private var queuedEndsInBlockingWork: Bool {
        if case .blocking = queued.last?.content { return true }
        return false
    }

    /// Writes the replies at the head of the queue that are made, each followed by the events
    /// of its changes; the work of a blocking reply that comes first becomes the one the session
    /// waits for (`waiting`). False when the budget ran out.
    private func writeQueuedReplies(into output: inout ByteBuffer, budget: Int) -> Bool {
        while let head = queued.first {
            guard output.readableBytes < budget else { return false }
            switch head.content {
            case .durable: return true
            case .ready(let result):
                queued.removeFirst()
                if committing > 0 { committing -= 1 }
                writeReply(result, id: head.id, into: &output)
            case .blocking(let work):
                guard case .commandMode(let oob) = state, let blocking = work.blocking else { return true }
                queued.removeFirst()
                state = .waiting(PendingReply(id: head.id, work: work, blocking: blocking, oob: oob))
                heldFrom = work.holdsEventsFrom
            }
            // The events of the reply written may go now, up to those of the next that has some.
            if head.holdsEventsFrom != nil && head.holdsEventsFrom == queuedHeldFrom {
                queuedHeldFrom = queued.first { $0.holdsEventsFrom != nil }?.holdsEventsFrom
            }
            if case .waiting = state { return true }
            guard writeEvents(into: &output, budget: budget) else { return false }
        }
        return true
    }

    /// A command's reply: written now, or queued behind replies that wait for a commit.
    private func reply(_ result: Result<JSON, QMPError>, id: QMPReplyID, into output: inout ByteBuffer) {
        if queued.isEmpty {
            writeReply(result, id: id, into: &output)
        } else {
            queued.append(QueuedReply(id: id, content: .ready(result), holdsEventsFrom: nil))
        }
    }

    /// Writes a command's reply.
    private func writeReply(_ result: Result<JSON, QMPError>, id: QMPReplyID, into output: inout ByteBuffer) {
        switch result {
        case .success(let value):
            ReplyEncoder.writeReturn(value, id: id, to: &output)
        case .failure(let error):
            ReplyEncoder.writeError(class: error.errorClass.rawValue, desc: error.desc, id: id, to: &output)
        }
    }

    /// Writes queued path events until none is left (true) or the budget is used (false).
    private func writeEvents(into output: inout ByteBuffer, budget: Int) -> Bool {
        guard isNegotiated, output.readableBytes < budget else { return output.readableBytes < budget }
        var full = false
        var limit = server.deliverableThrough
        if let heldFrom { limit = min(limit, heldFrom - 1) }
        if let queuedHeldFrom { limit = min(limit, queuedHeldFrom - 1) }
        // The clock is read when an event needs it (most have their change's time), not once
        // per request: this runs after every request, and most connections have no events.
        let server = self.server
        server.pathEvents.drain(for: connectionID, through: limit) { subscription, delivery in
            eventEncoder.write(delivery, subscription: subscription, clock: { server.clock() }, to: &output)
            full = output.readableBytes >= budget
            return !full
        }
        // Every deliverable path event is written: the events queued behind them go now, each
        // once the changes made before it are deliverable (held ones wait for their commit).
        while !full, let first = afterPathEvents.first, first.through <= limit {
            afterPathEvents.removeFirst()
            ReplyEncoder.writeEvent(
                first.name, data: first.data, seconds: first.seconds, microseconds: first.microseconds, to: &output)
            full = output.readableBytes >= budget
        }
        return !full
    }

    /// What the work of a waiting reply waits for (which thread runs it); nil when no reply waits.
    package var pendingWait: DeferredWork.Wait? {
        guard case .waiting(let pending) = state else { return nil }
        return pending.work.waitsOn
    }

    /// The blocking part of a deferred reply, handed over once: the caller runs it off the
    /// loop, then calls `completeDeferred` with its outcome.
    /// - Throws: `SessionStateError` unless a reply waits for work not yet taken.
    package func takeDeferredWork() throws(SessionStateError) -> @Sendable () -> DeferredWork.Outcome {
        try require("takeDeferredWork", [.waitingToStart])
        guard case .waiting(var pending) = state else { preconditionFailure("checked above") }
        pending.workTaken = true
        state = .waiting(pending)
        return pending.blocking
    }

    /// Finishes a deferred reply with the outcome of its blocking part, writes the reply and
    /// returns to command mode.
    /// - Throws: `SessionStateError` unless the work was taken and the reply still waits (a
    ///   session stopped meanwhile has dropped it: the caller discards the outcome).
    package func completeDeferred(_ outcome: DeferredWork.Outcome, into output: inout ByteBuffer)
        throws(SessionStateError)
    {
        try require("completeDeferred", [.waitingForWork])
        guard case .waiting(let pending) = state else { preconditionFailure("checked above") }
        state = .commandMode(oob: pending.oob)
        heldFrom = nil
        let result: Result<JSON, QMPError>
        do throws(QMPError) { result = .success(try pending.work.finish(outcome)) } catch { result = .failure(error) }
        writeReply(result, id: pending.id, into: &output)
    }

    /// One wait for the records of every queued reply not yet covered by a commit (group
    /// commit): the caller runs it off the loop (it blocks on the disk), then calls
    /// `completeDurableWait` with its outcomes, one per reply, in order. nil while a wait
    /// runs (the records queued meanwhile go with the next), when none is queued, or when
    /// the session stopped.
    package func takeDurableWait() -> DurableWait? {
        guard !durableWaitRuns, uncommitted > 0, !isStopped else { return nil }
        var records: [DurableRecord] = []
        records.reserveCapacity(uncommitted)
        for entry in queued {
            if case .durable(_, let record) = entry.content { records.append(record) }
        }
        committing = queued.count
        uncommitted = 0
        durableWaitRuns = true
        let taken = records
        return DurableWait(count: taken.count) { Self.waitUntilDurable(taken) }
    }

    /// One wait for the records of several queued replies (`takeDurableWait`).
    package struct DurableWait: Sendable {
        /// The number of records, and of outcomes `run` returns.
        package let count: Int
        /// Blocks until they are durable (or their commit failed): one outcome per record.
        package let run: @Sendable () -> [DeferredWork.Outcome]
    }

    /// The outcome of each record's wait: the newest one's wait commits every one before it
    /// (records are committed in token order); when that commit fails, those another commit
    /// took before it are durable all the same.
    private static func waitUntilDurable(_ records: [DurableRecord]) -> [DeferredWork.Outcome] {
        guard let newest = records.max(by: { $0.token < $1.token }) else { return [] }
        switch newest.log.waitUntilDurable(newest.token) {
        case .success: return Array(repeating: .success(nil), count: records.count)
        case .failure(let error):
            return records.map { $0.log.isDurable($0.token) ? .success(nil) : .failure(error) }
        }
    }

    /// Makes the replies the wait from `takeDurableWait` was for (`outcomes`: one per
    /// record, in order); `process` writes them. A stopped session has dropped its replies:
    /// the outcomes go too.
    package func completeDurableWait(_ outcomes: [DeferredWork.Outcome]) {
        guard !isStopped, durableWaitRuns else { return }
        var next = outcomes.makeIterator()
        for index in queued.indices.prefix(committing) {
            guard case .durable(let work, _) = queued[index].content, let outcome = next.next() else { continue }
            let result: Result<JSON, QMPError>
            do throws(QMPError) { result = .success(try work.finish(outcome)) } catch { result = .failure(error) }
            queued[index].content = .ready(result)
        }
        committing = 0
        durableWaitRuns = false
    }

    /// The wait for the records of every reply still queued, for a connection that closed:
    /// their changes were made, so they are committed all the same; nobody gets the replies.
    /// nil when none is queued. Call before `close`.
    package func abandonQueuedReplies() -> (@Sendable () -> Void)? {
        var records: [DurableRecord] = []
        for entry in queued {
            if case .durable(_, let record) = entry.content { records.append(record) }
        }
        guard !records.isEmpty else { return nil }
        let taken = records
        return { _ = Self.waitUntilDurable(taken) }
    }

    /// The client sent its last byte (it half-closed): drops a value or token it left
    /// unfinished, as QEMU does (its parser is reset on close without a reply). Call once
    /// `process` returned `.needInput`, so that every complete value was answered.
    /// - Returns: the number of bytes dropped.
    package func discardIncompleteInput() -> Int {
        guard var buffer = pending else { return 0 }
        pending = nil
        do {
            while try scanner.decodeLast(buffer: &buffer, seenEOF: true) != nil {}
        } catch let incomplete as JSONScanner.IncompleteInput {
            return incomplete.byteCount
        } catch {}
        return 0
    }

    /// Ends the connection's subscriptions (it closed) and stops. Allowed in every state.
    package func close() {
        server.pathEvents.removeOwner(connectionID)
        stop()
    }

    /// Writes an event if the connection is in command mode (QEMU sends none before, and a
    /// stopped session writes nothing more).
    /// - Returns: whether it was written.
    /// Queues an event that ends what path events told of (SCENARIO_ENDED): written once the
    /// path events deliverable now are all written, however many turns that takes (within
    /// the output budget each). False unless negotiated (nothing is queued).
    package func queueEventAfterPathEvents(_ name: String, data: JSON?, seconds: Int, microseconds: Int) -> Bool {
        guard isNegotiated else { return false }
        afterPathEvents.append(
            (name, data, seconds, microseconds, server.pathChanges.lastSequence))
        return true
    }

    package func writeEvent(
        _ name: String, data: JSON?, seconds: Int, microseconds: Int, into output: inout ByteBuffer
    ) -> Bool {
        guard isNegotiated else { return false }
        ReplyEncoder.writeEvent(name, data: data, seconds: seconds, microseconds: microseconds, to: &output)
        return true
    }

    /// Stops processing input (shutdown): buffered input and a waiting reply are dropped.
    /// Allowed in every state.
    package func stop() {
        state = .stopped
        pending = nil
        queued.removeAll()
        (durableWaitRuns, committing, uncommitted, queuedHeldFrom, stalled) = (false, 0, 0, nil, nil)
    }

    // MARK: SessionControl

    /// Leaves negotiation mode with the given capabilities.
    package func enterCommandMode(oob: Bool) {
        guard case .negotiating = state else {
            preconditionFailure(
                SessionStateError(call: "enterCommandMode", state: state.name, allowed: [.negotiating]).description)
        }
        state = .commandMode(oob: oob)
    }
}

/// A session call made in a state that does not allow it (qemu.qmp's `StateError`). The
/// session is unchanged.
package struct SessionStateError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The call, e.g. `completeDeferred`.
    package let call: String
    /// The state the session was in.
    package let state: QMPSession.StateName
    /// The states the call is allowed in.
    package let allowed: [QMPSession.StateName]

    package var description: String {
        "\(call) is not allowed while the session is \(state.rawValue) (only while "
            + allowed.map(\.rawValue).joined(separator: " or ") + ")"
    }
}
