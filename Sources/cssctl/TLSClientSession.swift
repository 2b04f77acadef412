// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import NIOCore
import NIOEmbedded
import NIOSSL
import X509Credentials

/// TLS for the blocking client, without a second thread: swift-nio-ssl's client handler runs
/// in an `EmbeddedChannel` as a pure transformer. Plaintext written is encrypted into
/// `pending` (ciphertext the caller sends on its socket); ciphertext the caller received is fed
/// in and decrypted. The handshake is driven by the same traffic: the ClientHello is pending
/// from the start, and the greeting arrives only after the handshake completed.
final class TLSClientSession {
    private let channel: EmbeddedChannel
    /// Ciphertext not yet sent.
    private(set) var pending: ByteBuffer
    /// Decrypted text not yet taken.
    private var plaintext: ByteBuffer

    /// - Parameters:
    ///   - credentials: the client layout (ca-cert.pem, client-cert.pem, client-key.pem).
    ///   - host, port: the server; its certificate must name the host (DNS or IP SAN).
    init(credentials: TLSCredentials, host: String, port: Int) throws(ClientFailure) {
        do {
            let isIP = (try? SocketAddress(ipAddress: host, port: port)) != nil
            let context = try credentials.makeClientContext()
            // An IP address is checked against the certificate's IP SANs through the channel's
            // remote address; a name is also sent as SNI.
            let handler = try NIOSSLClientHandler(context: context, serverHostname: isIP ? nil : host)
            channel = EmbeddedChannel(handler: handler)
            let remote =
                isIP
                ? try SocketAddress(ipAddress: host, port: port) : try SocketAddress(ipAddress: "127.0.0.1", port: port)
            pending = channel.allocator.buffer(capacity: 16384)
            plaintext = channel.allocator.buffer(capacity: 16384)
            channel.connect(to: remote, promise: nil)
            try channel.throwIfErrorCaught()
            try collect()
        } catch let failure as ClientFailure {
            throw failure
        } catch {
            throw ClientFailure("TLS to \(host):\(port): \(error)")
        }
    }

    /// The socket is closed by its owner; here only the TLS state ends. A clean TLS close would
    /// wait for the server's close_notify (NIOSSL's shutdown timer): let the embedded loop's
    /// clock pass that timer instead of waiting.
    deinit {
        channel.close(promise: nil)
        channel.embeddedEventLoop.advanceTime(by: .seconds(60))
    }

    /// Encrypts plaintext into `pending`.
    func encrypt(_ bytes: UnsafeRawBufferPointer) throws(ClientFailure) {
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        do {
            try channel.writeOutbound(buffer)
            try collect()
        } catch {
            throw ClientFailure("TLS: \(error)")
        }
    }

    /// Decrypts received ciphertext into `plaintext`. (One read may complete a record begun
    /// by earlier ones, so it can yield more plaintext than its own length.)
    func decrypt(_ bytes: UnsafeRawBufferPointer) throws(ClientFailure) {
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        do {
            try channel.writeInbound(buffer)
            channel.embeddedEventLoop.run()
            while var plain = try channel.readInbound(as: ByteBuffer.self) { plaintext.writeBuffer(&plain) }
            try collect()
        } catch {
            throw ClientFailure("TLS: \(error)")
        }
    }

    /// Moves up to `limit` bytes of decrypted text to `destination`; returns how many.
    func take(into destination: UnsafeMutableRawPointer, limit: Int) -> Int {
        let count = min(limit, plaintext.readableBytes)
        guard count > 0 else { return 0 }
        plaintext.withUnsafeReadableBytes { destination.copyMemory(from: $0.baseAddress!, byteCount: count) }
        plaintext.moveReaderIndex(forwardBy: count)
        if plaintext.readableBytes == 0 { plaintext.clear() }
        return count
    }

    /// Marks `count` bytes of `pending` as sent.
    func sent(_ count: Int) {
        pending.moveReaderIndex(forwardBy: count)
        if pending.readableBytes == 0 { pending.clear() }
    }

    private func collect() throws {
        // Work the handler scheduled on its loop (EmbeddedEventLoop runs it only when asked).
        channel.embeddedEventLoop.run()
        try channel.throwIfErrorCaught()
        while var out = try channel.readOutbound(as: ByteBuffer.self) { pending.writeBuffer(&out) }
    }
}
