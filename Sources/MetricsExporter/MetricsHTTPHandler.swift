// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import NIOCore
import NIOHTTP1

/// Serves one HTTP/1 connection of the metrics endpoint, after NIOHTTP1's decoder:
/// `GET /metrics` (and `HEAD`) answers the exposition in the format the `Accept` header asks
/// for; `GET /` a landing page, `/status` the status page and `/status.json` its data
/// (`SitePage`, answered by `page`); another path is 404, another method 405 (with `Allow`), a header over the decoder's
/// limits 431, any other malformed request 400; each closes the connection after the answer.
///
/// Request targets and Host follow RFC 9112 section 3.2: the origin form (`/metrics?...`) and
/// the absolute form (`http://host:port/metrics`, scheme http or https in any case) are
/// served; another form is 400. An HTTP/1.1 request without a Host field, or any request with
/// more than one, is 400 (HTTP/1.0 needs none).
///
/// Pipelined requests are answered one at a time, in order, with back-pressure (as Go's
/// net/http serves a connection): an answer is made only once the previous one has been
/// written to the socket, and the connection is not read meanwhile. Requests already read
/// wait here (what one read brings: at most `MetricsEndpoint`'s receive buffer); each next
/// answer is made in a later turn of the event loop, so QMP connections are served between
/// two answers. A client that never reads thus holds one answer and the socket's own buffers.
///
/// Time: a request must be complete within `requestTimeout` of the connection opening or of
/// the previous answer being written (else 408 and close: an idle keep-alive connection or a
/// client that trickles its headers holds a descriptor that long at most), and an answer must
/// be written within `requestTimeout` of its request (else the connection closes: a client
/// that stops reading).
///
/// Runs on the server's event loop: the answer is made synchronously from `scrape`.
/// `progressed` is told of each request received whole and each answer written
/// (`MetricsConnections`).
final class MetricsHTTPHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        /// Waiting for a request head.
        case idle
        /// A head arrived; answer with this when its end does.
        case receiving(HTTPRequestHead, Answer)
        /// An answer was written and is not on the socket yet; nothing more is read or
        /// answered until it is.
        case answering
        /// The last answer was written or is being written; the connection is closing.
        case closing
    }

    private enum Answer {
        case metrics(head: Bool)
        case page(SitePage, head: Bool)
        case status(HTTPResponseStatus, extraHeaders: [(String, String)])
    }

    /// What the decoder delivered while an answer was being written.
    private enum Input {
        case part(HTTPServerRequestPart)
        case malformed(HTTPParserError)
    }

    private var state = State.idle
    private var waiting = CircularBuffer<Input>()
    /// A read(2) asked for while answering, done once the answer is written.
    private var readHeld = false
    private var drainScheduled = false
    /// Answers made, to tell whether handling an input made one.
    private var answers = 0
    private var timeout: Scheduled<Void>?
    private let requestTimeout: TimeAmount
    private let scrape: (ExpositionFormat) -> ByteBuffer
    private let page: (SitePage) -> ByteBuffer
    private let progressed: () -> Void

    /// - Parameters:
    ///   - requestTimeout: how long a client has to send a whole request, and to read an answer.
    ///   - progressed: told of each request received whole and each answer written.
    ///   - page: renders a page of the site (called on the loop).
    ///   - scrape: renders the metrics in a format (called on the loop).
    init(
        requestTimeout: TimeAmount, progressed: @escaping () -> Void = {},
        page: @escaping (SitePage) -> ByteBuffer = { _ in ByteBuffer() },
        scrape: @escaping (ExpositionFormat) -> ByteBuffer
    ) {
        self.requestTimeout = requestTimeout
        self.progressed = progressed
        self.page = page
        self.scrape = scrape
    }

    func handlerAdded(context: ChannelHandlerContext) {
        armTimeout(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
        timeout = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        waiting.removeAll()
        timeout?.cancel()
        timeout = nil
        context.fireChannelInactive()
    }

    /// Whether input must wait: an answer is being written, or earlier input waits already
    /// (or is to be handled in the next turn of the loop).
    private var busy: Bool {
        if case .answering = state { return true }
        return !waiting.isEmpty || drainScheduled
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if busy { waiting.append(.part(part)) } else { handle(part, context: context) }
    }

    /// NIOHTTP1's decoder reports a malformed request here (and decodes nothing after it); the
    /// client gets the status that names its mistake, after the answers to its earlier requests.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let error = error as? HTTPParserError else {
            context.close(promise: nil)
            return
        }
        if case .closing = state { return }
        if busy { waiting.append(.malformed(error)) } else { malformed(error, context: context) }
    }

    func read(context: ChannelHandlerContext) {
        if busy { readHeld = true } else { context.read() }
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch (part, state) {
        case (.head(let head), .idle):
            state = .receiving(head, Self.answer(to: head))
        case (.body, .receiving):
            break  // a body is not used; the timeout bounds how long it may take
        case (.end, .receiving(let head, let answer)):
            progressed()
            respond(context: context, request: head, answer: answer)
        case (_, .closing):
            break
        default:
            // The decoder never sends parts out of order; treat it as a malformed request.
            fail(context: context, status: .badRequest)
        }
    }

    private func malformed(_ error: HTTPParserError, context: ChannelHandlerContext) {
        fail(context: context, status: error == .headerOverflow ? .requestHeaderFieldsTooLarge : .badRequest)
    }

    /// Handles what waited while an answer was written, until it makes another answer (one
    /// per turn of the loop) or is used up; then lets the connection be read again.
    private func drain(context: ChannelHandlerContext) {
        let before = answers
        while let input = waiting.first {
            switch state {
            case .answering, .closing: return
            case .idle, .receiving: break
            }
            waiting.removeFirst()
            switch input {
            case .part(let part): handle(part, context: context)
            case .malformed(let error): malformed(error, context: context)
            }
            if answers != before { return }  // its answerWritten goes on, in a later turn
        }
        if readHeld, !busy {
            readHeld = false
            context.read()
        }
    }

    /// The answer was written to the socket: the connection may go on, in a later turn of the
    /// loop (so that other channels are served between two answers of a pipelined series).
    private func answerWritten(context: ChannelHandlerContext, keepAlive: Bool) {
        progressed()
        guard keepAlive else {
            state = .closing
            context.close(promise: nil)
            return
        }
        state = .idle
        armTimeout(context: context)
        guard !drainScheduled else { return }
        drainScheduled = true
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let (handler, context) = loopBound.value
            handler.drainScheduled = false
            guard context.channel.isActive else { return }
            handler.drain(context: context)
        }
    }

    private static func answer(to head: HTTPRequestHead) -> Answer {
        let hosts = head.headers["Host"].count
        let http11 = head.version.major > 1 || (head.version.major == 1 && head.version.minor >= 1)
        if hosts > 1 || (hosts == 0 && http11) {
            return .status(.badRequest, extraHeaders: [])
        }
        guard let target = requestPath(head.uri) else { return .status(.badRequest, extraHeaders: []) }
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let site = SitePage(path: path)
        guard path == "/metrics" || site != nil else { return .status(.notFound, extraHeaders: []) }
        switch head.method {
        case .GET: return site.map { .page($0, head: false) } ?? .metrics(head: false)
        case .HEAD: return site.map { .page($0, head: true) } ?? .metrics(head: true)
        default: return .status(.methodNotAllowed, extraHeaders: [("Allow", "GET, HEAD")])
        }
    }

    /// The path and query of a request target (RFC 9112 section 3.2): the origin form as it
    /// is, the absolute form (`http://authority/path?query`, scheme http or https in any
    /// case) without its scheme and authority (`/` when it has no path); nil for another form.
    static func requestPath(_ target: String) -> Substring? {
        if target.hasPrefix("/") { return target[...] }
        guard let colon = target.firstIndex(of: ":") else { return nil }
        let scheme = target[..<colon].lowercased()
        let afterColon = target[target.index(after: colon)...]
        guard scheme == "http" || scheme == "https", afterColon.hasPrefix("//") else { return nil }
        let rest = afterColon.dropFirst(2)
        guard let pathStart = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) else { return "/" }
        return rest[pathStart] == "/" ? rest[pathStart...] : Substring("/" + rest[pathStart...])
    }

    private func respond(context: ChannelHandlerContext, request: HTTPRequestHead, answer: Answer) {
        var headers = HTTPHeaders()
        headers.add(name: "Connection", value: request.isKeepAlive ? "keep-alive" : "close")
        let body: ByteBuffer
        let status: HTTPResponseStatus
        var sendBody = true
        switch answer {
        case .metrics(let headOnly):
            let format = ExpositionFormat(accept: request.headers["Accept"])
            body = scrape(format)
            status = .ok
            headers.add(name: "Content-Type", value: format.contentType)
            sendBody = !headOnly
        case .page(let site, let headOnly):
            body = page(site)
            status = .ok
            headers.add(name: "Content-Type", value: site.contentType)
            headers.add(name: "Cache-Control", value: "no-store")
            sendBody = !headOnly
        case .status(let code, let extra):
            body = context.channel.allocator.buffer(string: "\(code.code) \(code.reasonPhrase)\n")
            status = code
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            for (name, value) in extra { headers.add(name: name, value: value) }
        }
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        let head = HTTPResponseHead(version: request.version, status: status, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if sendBody { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        state = .answering
        answers += 1
        armTimeout(context: context)
        let written = context.writeAndFlushPromise()
        let keepAlive = request.isKeepAlive
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        written.futureResult.whenComplete { result in
            let (handler, context) = loopBound.value
            switch result {
            case .success: handler.answerWritten(context: context, keepAlive: keepAlive)
            case .failure: context.close(promise: nil)
            }
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
    }

    /// Answers with an error status and closes.
    private func fail(context: ChannelHandlerContext, status: HTTPResponseStatus) {
        state = .closing
        waiting.removeAll()
        armTimeout(context: context)  // a client that does not read its error answer
        let body = context.channel.allocator.buffer(string: "\(status.code) \(status.reasonPhrase)\n")
        let headers = HTTPHeaders([
            ("Connection", "close"), ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", String(body.readableBytes)),
        ])
        let head = HTTPResponseHead(version: .http1_1, status: status, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let written = context.writeAndFlushPromise()
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        written.futureResult.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
    }

    /// The connection's deadline: for a request (408 when it passes), for an answer to be
    /// written (the connection closes), for an error answer before the close.
    private func armTimeout(context: ChannelHandlerContext) {
        timeout?.cancel()
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timeout = context.eventLoop.scheduleTask(in: requestTimeout) {
            let (handler, context) = loopBound.value
            handler.timeout = nil
            guard context.channel.isActive else { return }
            switch handler.state {
            case .idle, .receiving: handler.fail(context: context, status: .requestTimeout)
            case .answering, .closing: context.close(promise: nil)
            }
        }
    }
}

extension ChannelHandlerContext {
    fileprivate func writeAndFlushPromise() -> EventLoopPromise<Void> { eventLoop.makePromise() }
}

/// The pages the metrics endpoint serves besides `/metrics`.
enum SitePage: Equatable {
    /// `/`: what is here.
    case landing
    /// `/status`: the status page (`StatusSnapshot.html`).
    case status
    /// `/status.json`: its data (`StatusSnapshot.json`).
    case statusData

    init?(path: Substring) {
        switch path {
        case "/": self = .landing
        case "/status", "/status/": self = .status
        case "/status.json": self = .statusData
        default: return nil
        }
    }

    var contentType: String {
        self == .statusData ? "application/json" : "text/html; charset=utf-8"
    }
}
