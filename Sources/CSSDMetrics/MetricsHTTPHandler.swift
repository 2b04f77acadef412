// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import NIOCore
import NIOHTTP1

/// Serves one HTTP/1 connection of the metrics endpoint, after NIOHTTP1's decoder:
/// `GET /metrics` (and `HEAD`) answers the exposition in the format the `Accept` header asks
/// for; another path is 404, another method 405 (with `Allow`), a header over the decoder's
/// limits 431, any other malformed request 400; each closes the connection after the answer.
/// A request must be complete within `requestTimeout` of the connection opening or of the
/// previous answer (so an idle keep-alive connection or a client that trickles its headers
/// holds a descriptor that long at most); then it gets 408 and the connection closes.
///
/// Runs on the server's event loop: the answer is made synchronously from `scrape`.
final class MetricsHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        /// Waiting for a request head.
        case idle
        /// A head arrived; answer with this when its end does.
        case receiving(HTTPRequestHead, Answer)
        /// An error answer was written; the connection is closing.
        case closing
    }

    private enum Answer {
        case metrics(head: Bool)
        case status(HTTPResponseStatus, extraHeaders: [(String, String)])
    }

    private var state = State.idle
    private var timeout: Scheduled<Void>?
    private let requestTimeout: TimeAmount
    private let scrape: (ExpositionFormat) -> ByteBuffer

    /// - Parameters:
    ///   - requestTimeout: how long a client has to send a whole request.
    ///   - scrape: renders the metrics in a format (called on the loop).
    init(requestTimeout: TimeAmount, scrape: @escaping (ExpositionFormat) -> ByteBuffer) {
        self.requestTimeout = requestTimeout
        self.scrape = scrape
    }

    func handlerAdded(context: ChannelHandlerContext) {
        armTimeout(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
        timeout = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
        case (.head(let head), .idle):
            state = .receiving(head, Self.answer(to: head))
        case (.body, .receiving):
            break  // a body is not used; the timeout bounds how long it may take
        case (.end, .receiving(let head, let answer)):
            timeout?.cancel()
            timeout = nil
            state = .idle
            respond(context: context, request: head, answer: answer)
            if head.isKeepAlive, context.channel.isActive { armTimeout(context: context) }
        case (_, .closing):
            break
        default:
            // The decoder never sends parts out of order; treat it as a malformed request.
            fail(context: context, status: .badRequest)
        }
    }

    /// NIOHTTP1's decoder reports a malformed request here (and closes the connection after);
    /// the client gets the status that names its mistake first.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if case .closing = state { return }
        if let error = error as? HTTPParserError {
            fail(context: context, status: error == .headerOverflow ? .requestHeaderFieldsTooLarge : .badRequest)
        } else {
            context.close(promise: nil)
        }
    }

    private static func answer(to head: HTTPRequestHead) -> Answer {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard path == "/metrics" else { return .status(.notFound, extraHeaders: []) }
        switch head.method {
        case .GET: return .metrics(head: false)
        case .HEAD: return .metrics(head: true)
        default: return .status(.methodNotAllowed, extraHeaders: [("Allow", "GET, HEAD")])
        }
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
        let written = context.writeAndFlushPromise()
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        if !request.isKeepAlive {
            written.futureResult.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
        }
    }

    /// Answers with an error status and closes.
    private func fail(context: ChannelHandlerContext, status: HTTPResponseStatus) {
        state = .closing
        timeout?.cancel()
        timeout = nil
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

    private func armTimeout(context: ChannelHandlerContext) {
        timeout?.cancel()
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timeout = context.eventLoop.scheduleTask(in: requestTimeout) {
            let (handler, context) = loopBound.value
            handler.timeout = nil
            guard context.channel.isActive else { return }
            handler.fail(context: context, status: .requestTimeout)
        }
    }
}

extension ChannelHandlerContext {
    fileprivate func writeAndFlushPromise() -> EventLoopPromise<Void> { eventLoop.makePromise() }
}
