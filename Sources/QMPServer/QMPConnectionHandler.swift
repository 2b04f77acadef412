// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

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
    private var context: ChannelHandlerContext?

    /// Output produced between writes; larger batches are written and checked for back-pressure.
    static let outputChunk = 64 * 1024

    init(session: QMPSession, core: ServerCore) {
        self.session = session
        self.core = core
        self.output = ByteBuffer()
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
        session.writeGreeting(into: &output)
        writeOutput(context: context)
        context.flush()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        core.connectionClosed(self)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = unwrapInboundIn(data)
        let progress = session.receive(&input, into: &output, budget: Self.outputChunk)
        drive(progress, context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func read(context: ChannelHandlerContext) {
        if suspended {
            readDeferred = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if suspended && context.channel.isWritable {
            suspended = false
            drive(session.process(into: &output, budget: Self.outputChunk), context: context)
            context.flush()
            if !suspended && readDeferred {
                readDeferred = false
                context.read()
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        core.logger.debug("connection error: \(error)")
        context.close(promise: nil)
    }

    /// Writes what the session produced and keeps processing while the socket keeps up.
    private func drive(_ first: QMPSession.Progress, context: ChannelHandlerContext) {
        var progress = first
        while true {
            writeOutput(context: context)
            guard progress == .outputFull else { return }
            if !context.channel.isWritable {
                suspended = true
                context.flush()
                return
            }
            progress = session.process(into: &output, budget: Self.outputChunk)
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
