// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import NIOCore
import PathEvents
import QMPCommands
import QMPWire

/// One QMP connection's protocol state, independent of any socket: bytes in, reply lines out.
///
/// It frames the input (`JSONScanner`, driven one value at a time so that it can stop between
/// values), parses each value (jansson, or the QEMU-grammar parser),
/// runs negotiation and dispatch, and writes replies in request order. It keeps at most one
/// partial value of input (bounded by `WireLimits`) and stops between values when the output
/// it produced reaches the caller's budget, so a client that floods requests without reading
/// cannot make it produce unbounded output.
public final class QMPSession: SessionControl {
    public let server: ServerState
    public let isReadOnly: Bool
    public let connectionID: Int
    public private(set) var isNegotiated = false
    public private(set) var isOOBEnabled = false
    /// Set once the server is shutting down: remaining input is ignored.
    public private(set) var isStopped = false

    private var scanner: JSONScanner
    private var eventEncoder = PathEventEncoder()
    /// Input not yet consumed: the tail of a partial value and/or unscanned bytes.
    private var pending: ByteBuffer?

    /// Counters, for logs and tests.
    public private(set) var requestsHandled = 0

    public enum Progress: Equatable {
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

    /// Set by the network layer: commands may hand blocking work off the event loop.
    public var deferralEnabled = false
    /// A command's deferred reply: the request's id and the work.
    private var awaiting: (id: QMPReplyID, work: DeferredWork, started: Bool)?
    /// Set by `deferReply` during a dispatch.
    private var deferredByHandler: DeferredWork?

    /// Whether a reply waits for deferred work.
    public var isWaiting: Bool { awaiting != nil }

    public init(server: ServerState, readOnly: Bool = false) {
        self.server = server
        self.isReadOnly = readOnly
        self.connectionID = server.makeConnectionID()
        self.scanner = JSONScanner(limits: server.options.limits)
    }

    /// Bytes of input held (a partial value, or input not yet processed).
    public var bufferedInputBytes: Int { pending?.readableBytes ?? 0 }

    public func writeGreeting(into output: inout ByteBuffer) {
        ReplyEncoder.writeLine(server.greeting(), to: &output)
    }

    /// Adds input and processes as much as the output budget allows.
    public func receive(_ input: inout ByteBuffer, into output: inout ByteBuffer, budget: Int) -> Progress {
        append(&input)
        return process(into: &output, budget: budget)
    }

    /// Adds input to process later.
    public func append(_ input: inout ByteBuffer) {
        guard !isStopped else { return }
        if pending == nil {
            pending = input
        } else {
            pending!.writeBuffer(&input)
        }
    }

    /// Writes this connection's queued path events, then processes buffered input, until both
    /// are used up or `output` holds `budget` bytes. The events a command publishes follow its
    /// reply.
    public func process(into output: inout ByteBuffer, budget: Int) -> Progress {
        guard !isStopped else { return .stopped }
        guard writeEvents(into: &output, budget: budget) else { return .outputFull }
        if awaiting != nil { return .waiting }
        guard var buffer = pending else { return .needInput }
        pending = nil  // keep the buffer uniquely referenced: no copy on write
        var progress = Progress.needInput
        while true {
            if output.readableBytes >= budget {
                progress = .outputFull
                break
            }
            guard let frame = scanner.decode(buffer: &buffer) else { break }
            switch frame {
            case .value(let bytes, let careful):
                switch bytes.withUnsafeReadableBytes({ JSONValueParser.parse($0, careful: careful) }) {
                case .success(let value): handle(value, into: &output)
                case .failure(let error):
                    ReplyEncoder.writeError(class: "GenericError", desc: error.description, id: .none, to: &output)
                }
            case .error(let error):
                ReplyEncoder.writeError(class: "GenericError", desc: error.description, id: .none, to: &output)
            }
            if awaiting != nil {
                progress = .waiting
                break
            }
            if !writeEvents(into: &output, budget: budget) {
                progress = .outputFull
                break
            }
            if isStopped {
                progress = .stopped
                break
            }
        }
        // The scanner consumed what it no longer needs; keep the rest for the next call.
        if buffer.readableBytes > 0 {
            if buffer.readerIndex > 64 * 1024 && buffer.readerIndex > buffer.capacity / 2 {
                buffer.discardReadBytes()
            }
            pending = buffer
        }
        return progress
    }

    private func handle(_ value: JSON, into output: inout ByteBuffer) {
        requestsHandled += 1
        let request: QMPRequest
        switch QMPRequest.check(value, oobEnabled: isOOBEnabled) {
        case .success(let checked): request = checked
        case .failure(let rejection):
            reply(.failure(.generic(rejection.desc)), id: rejection.replyID, into: &output)
            return
        }
        let result = Dispatcher.dispatch(request, server: server, session: self)
        if let work = deferredByHandler {
            deferredByHandler = nil
            if case .success = result {
                awaiting = (request.replyID, work, false)
                return
            }
        }
        reply(result, id: request.replyID, into: &output)
    }

    /// Writes a command's reply, then tells other connections of the events it queued.
    private func reply(_ result: Result<JSON, QMPError>, id: QMPReplyID, into output: inout ByteBuffer) {
        switch result {
        case .success(let value):
            ReplyEncoder.writeReturn(value, id: id, to: &output)
        case .failure(let error):
            ReplyEncoder.writeError(class: error.errorClass.rawValue, desc: error.desc, id: id, to: &output)
        }
        server.announcePathEvents(except: connectionID)
    }

    /// Writes queued path events until none is left (true) or the budget is used (false).
    private func writeEvents(into output: inout ByteBuffer, budget: Int) -> Bool {
        guard isNegotiated, output.readableBytes < budget else { return output.readableBytes < budget }
        var full = false
        let clock = server.clock
        server.pathEvents.drain(for: connectionID) { subscription, delivery in
            eventEncoder.write(delivery, subscription: subscription, clock: clock, to: &output)
            full = output.readableBytes >= budget
            return !full
        }
        return !full
    }

    /// The blocking part of a deferred reply, once: the caller runs it off the loop.
    public func takeDeferredWork() -> (@Sendable () -> Result<Void, BackendError>)? {
        guard let pending = awaiting, !pending.started else { return nil }
        awaiting!.started = true
        return pending.work.blocking
    }

    /// Finishes a deferred reply with the outcome of its blocking part, and writes the reply.
    public func completeDeferred(_ outcome: Result<Void, BackendError>, into output: inout ByteBuffer) {
        guard let pending = awaiting else { return }
        awaiting = nil
        guard !isStopped else { return }
        let result: Result<JSON, QMPError>
        do throws(QMPError) { result = .success(try pending.work.finish(outcome)) } catch { result = .failure(error) }
        reply(result, id: pending.id, into: &output)
    }

    /// The client sent its last byte (it half-closed): drops a value or token it left
    /// unfinished, as QEMU does (its parser is reset on close without a reply). Call once
    /// `process` returned `.needInput`, so that every complete value was answered.
    /// - Returns: the number of bytes dropped.
    public func discardIncompleteInput() -> Int {
        guard var buffer = pending else { return 0 }
        pending = nil
        do {
            while try scanner.decodeLast(buffer: &buffer, seenEOF: true) != nil {}
        } catch let incomplete as JSONScanner.IncompleteInput {
            return incomplete.byteCount
        } catch {}
        return 0
    }

    /// Ends the connection's subscriptions (it closed).
    public func close() {
        server.pathEvents.removeOwner(connectionID)
        stop()
    }

    /// Writes an event if the connection is in command mode (QEMU sends none before).
    public func writeEvent(_ name: String, data: JSON?, seconds: Int, microseconds: Int, into output: inout ByteBuffer)
        -> Bool
    {
        guard isNegotiated else { return false }
        ReplyEncoder.writeEvent(name, data: data, seconds: seconds, microseconds: microseconds, to: &output)
        return true
    }

    /// Stops processing input (shutdown).
    public func stop() {
        isStopped = true
        pending = nil
    }

    // MARK: SessionControl

    public var canDefer: Bool { deferralEnabled }

    public func deferReply(_ work: DeferredWork) {
        precondition(deferralEnabled && deferredByHandler == nil, "deferReply outside a deferring dispatch")
        deferredByHandler = work
    }

    public func enterCommandMode(oob: Bool) {
        isNegotiated = true
        isOOBEnabled = oob
    }
}
