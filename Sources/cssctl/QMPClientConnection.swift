// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import JSONValues
import QMPTransport
import QMPWire
import X509Credentials

#if canImport(Glibc)
import Glibc
#endif

/// A failure to talk to the server at all (as opposed to an error reply): exit status 2.
struct ClientFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }

    /// `what: strerror(errno)`, read at once before anything else can change errno.
    static func system(_ what: String) -> ClientFailure {
        let code = errno
        return ClientFailure("\(what): \(String(cString: strerror(code)))")
    }
}

extension QMPAddress {
    /// cssctl's `--socket`: QMPAddress's grammar for connecting (a bare path is `unix:PATH`);
    /// nil is `defaultServerText`.
    static func server(_ text: String?) throws(ClientFailure) -> QMPAddress {
        do throws(QMPTransportError) {
            return try QMPAddress(parsing: text ?? defaultServerText, for: .connecting)
        } catch {
            throw ClientFailure(error.description)
        }
    }

    /// The socket of the installed service (systemd/cssd.socket).
    static let installedSocket = "/run/cssd/qmp.sock"

    /// The --socket default: $CSSD_SOCKET; else the installed service's socket when it exists
    /// (an operator on a host types no --socket); else ./cssd.sock (where cssd listens when
    /// started by hand without --qmp).
    static var defaultServerText: String {
        if let value = getenv("CSSD_SOCKET"), value.pointee != 0 { return String(cString: value) }
        var info = stat()
        if stat(installedSocket, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK { return installedSocket }
        return "cssd.sock"
    }

    /// What a failed connection adds: how to point cssctl elsewhere.
    static let connectionHint =
        " (name the server with --socket unix:PATH or tcp:HOST:PORT, or set CSSD_SOCKET; the default is \(installedSocket) when it exists, else ./cssd.sock)"

}

/// A blocking QMP client connection over a plain POSIX socket.
///
/// Replies from a QMP server are single CRLF-terminated lines, so the reader only needs to split
/// on "\n". Lines are handed out as views into the receive buffer (no copy, no allocation), which
/// is what keeps the benchmark loop cheap; a view is valid until the next `fill`.
final class QMPClientConnection {
    let address: QMPAddress
    let fd: Int32

    private var storage: UnsafeMutableRawPointer
    private var capacity: Int
    private var start = 0  // first byte not yet handed out
    private var end = 0  // one past the last byte received
    private var scanned = 0  // bytes before this contain no "\n" after `start`

    /// A reply larger than this is treated as a broken stream (qemu.qmp's default is 10 MiB).
    static let maxLineLength = 1 << 30
    private static let minimumRead = 64 * 1024

    /// How long a blocking read waits for the server (< 0: forever). Set as SO_RCVTIMEO rather
    /// than polled before each read, so a round trip costs one read system call, not two.
    let replyTimeoutMilliseconds: Int32

    /// TLS over the socket (tcp with --tls-creds), or nil.
    private var tls: TLSClientSession?
    /// Ciphertext received, before decryption into `storage`.
    private var tlsScratch: UnsafeMutableRawPointer?
    private var tlsScratchCapacity = 0

    init(
        connectingTo address: QMPAddress, replyTimeoutMilliseconds: Int32 = -1, tls credentials: TLSCredentials? = nil
    ) throws(ClientFailure) {
        self.address = address
        do throws(QMPTransportError) {
            self.fd = try address.connect()
        } catch {
            throw ClientFailure(error.description + QMPAddress.connectionHint)
        }
        if let credentials, case .tcp(let host, let port) = address {
            do throws(ClientFailure) {
                tls = try TLSClientSession(credentials: credentials, host: host, port: port)
            } catch {
                Glibc.close(fd)
                throw error
            }
        }
        self.replyTimeoutMilliseconds = replyTimeoutMilliseconds
        self.capacity = 256 * 1024
        self.storage = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        if replyTimeoutMilliseconds > 0 {
            var limit = timeval(
                tv_sec: Int(replyTimeoutMilliseconds / 1000),
                tv_usec: Int(replyTimeoutMilliseconds % 1000) * 1000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        }
    }

    deinit {
        Glibc.close(fd)
        storage.deallocate()
        tlsScratch?.deallocate()
    }

    // MARK: Writing

    /// Writes everything, waiting for the socket to accept it.
    func writeAll(_ bytes: UnsafeRawBufferPointer) throws(ClientFailure) {
        if let tls {
            try tls.encrypt(bytes)
            try flushTLS(blocking: true)
            return
        }
        try writeRaw(bytes)
    }

    /// Sends ciphertext waiting in the TLS session; `blocking`: all of it.
    private func flushTLS(blocking: Bool) throws(ClientFailure) {
        guard let tls else { return }
        while tls.pending.readableBytes > 0 {
            // withUnsafeReadableBytes rethrows untyped errors; the body throws only ClientFailure.
            let n: Int
            do {
                n = try tls.pending.withUnsafeReadableBytes { raw in
                    if blocking {
                        try writeRaw(raw)
                        return raw.count
                    }
                    return try sendRaw(raw.baseAddress!, count: raw.count)
                }
            } catch {
                throw error as! ClientFailure
            }
            if n == 0 { return }
            tls.sent(n)
        }
    }

    /// Writes everything to the socket, waiting for it to accept it.
    private func writeRaw(_ bytes: UnsafeRawBufferPointer) throws(ClientFailure) {
        var offset = 0
        while offset < bytes.count {
            // MSG_NOSIGNAL: a server that hangs up must give EPIPE, not kill us with SIGPIPE.
            let n = send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if n >= 0 {
                offset += n
            } else if errno == EINTR {
                continue
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                try waitFor(Int16(POLLOUT), timeoutMilliseconds: -1)
            } else {
                throw .system("write to \(address)")
            }
        }
    }

    func writeAll(_ text: String) throws(ClientFailure) {
        var text = text
        // withUTF8 rethrows untyped errors; the only one the body throws is a ClientFailure.
        do {
            try text.withUTF8 { try writeAll(UnsafeRawBufferPointer($0)) }
        } catch {
            throw error as! ClientFailure
        }
    }

    /// Sends without blocking; returns the bytes accepted (0 when the socket buffer is full).
    func sendSome(_ pointer: UnsafeRawPointer, count: Int) throws(ClientFailure) -> Int {
        if let tls {
            // Plaintext is taken only once the previous ciphertext went out, so that what waits
            // stays bounded (and the caller keeps the rest).
            try flushTLS(blocking: false)
            guard tls.pending.readableBytes == 0 else { return 0 }
            try tls.encrypt(UnsafeRawBufferPointer(start: pointer, count: count))
            try flushTLS(blocking: false)
            return count
        }
        return try sendRaw(pointer, count: count)
    }

    private func sendRaw(_ pointer: UnsafeRawPointer, count: Int) throws(ClientFailure) -> Int {
        while true {
            let n = send(fd, pointer, count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
            if n >= 0 { return n }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { return 0 }
            throw .system("write to \(address)")
        }
    }

    // MARK: Reading

    /// The next complete line already received, without its CRLF; no I/O.
    @inline(__always)
    func takeLine() -> UnsafeRawBufferPointer? {
        guard scanned < end,
            let newline = memchr(storage + scanned, Int32(UInt8(ascii: "\n")), end - scanned)
        else {
            scanned = end
            return nil
        }
        let lineEnd = storage.distance(to: newline)
        var length = lineEnd - start
        if length > 0 && storage.load(fromByteOffset: lineEnd - 1, as: UInt8.self) == UInt8(ascii: "\r") {
            length -= 1
        }
        let line = UnsafeRawBufferPointer(start: storage + start, count: length)
        start = lineEnd + 1
        scanned = start
        return line
    }

    /// Reads what is available. Returns the number of bytes read; 0 only when `blocking` is false
    /// and nothing was there. The server closing the connection is a failure: a QMP client never
    /// expects that while it waits for a reply.
    func fill(blocking: Bool) throws(ClientFailure) -> Int {
        makeRoom()
        guard let tls else {
            return try fillRaw(blocking: blocking, into: storage + end, capacity: capacity - end, count: true)
        }
        if tlsScratchCapacity < capacity - end {
            tlsScratch?.deallocate()
            tlsScratchCapacity = capacity - end
            tlsScratch = UnsafeMutableRawPointer.allocate(byteCount: tlsScratchCapacity, alignment: 16)
        }
        let scratch = tlsScratch!
        while true {
            let taken = tls.take(into: storage + end, limit: capacity - end)
            if taken > 0 {
                end += taken
                return taken
            }
            try flushTLS(blocking: false)
            if blocking && tls.pending.readableBytes > 0 {
                // The server may wait for the rest of our request before it answers.
                try waitFor(Int16(POLLIN) | Int16(POLLOUT), timeoutMilliseconds: replyTimeoutMilliseconds)
                var probe = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                if poll(&probe, 1, 0) <= 0 { continue }
            }
            let received = try fillRaw(blocking: blocking, into: scratch, capacity: capacity - end, count: false)
            if received == 0 { return 0 }
            try tls.decrypt(UnsafeRawBufferPointer(start: scratch, count: received))
            try flushTLS(blocking: false)
        }
    }

    /// One recv(2) into `destination`; `count`: add to the buffered bytes.
    private func fillRaw(blocking: Bool, into destination: UnsafeMutableRawPointer, capacity room: Int, count: Bool)
        throws(ClientFailure) -> Int
    {
        while true {
            let n = recv(fd, destination, room, blocking ? 0 : Int32(MSG_DONTWAIT))
            if n > 0 {
                if count { end += n }
                return n
            }
            if n == 0 { throw ClientFailure("\(address): the server closed the connection") }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK {
                if !blocking { return 0 }
                throw ClientFailure("\(address): no answer within \(Self.seconds(replyTimeoutMilliseconds))")
            }
            throw .system("read from \(address)")
        }
    }

    /// Drops consumed bytes and grows the buffer when a partial line fills it.
    private func makeRoom() {
        if start == end {
            start = 0
            end = 0
            scanned = 0
        }
        guard capacity - end < Self.minimumRead else { return }
        if start > 0 {
            (storage + 0).copyMemory(from: storage + start, byteCount: end - start)
            end -= start
            scanned -= start
            start = 0
        }
        if capacity - end < Self.minimumRead {
            let bigger = UnsafeMutableRawPointer.allocate(byteCount: capacity * 2, alignment: 16)
            bigger.copyMemory(from: storage, byteCount: end)
            storage.deallocate()
            storage = bigger
            capacity *= 2
        }
    }

    /// Waits until the socket is ready; `timeoutMilliseconds` < 0 waits forever.
    func waitFor(_ events: Int16, timeoutMilliseconds: Int32) throws(ClientFailure) {
        var events = events
        if let tls, tls.pending.readableBytes > 0 { events |= Int16(POLLOUT) }
        var pfd = pollfd(fd: fd, events: events, revents: 0)
        while true {
            let n = poll(&pfd, 1, timeoutMilliseconds)
            if n > 0 { return }
            if n == 0 { throw ClientFailure("\(address): no answer within \(Self.seconds(timeoutMilliseconds))") }
            if errno != EINTR { throw .system("poll") }
        }
    }

    static func seconds(_ milliseconds: Int32) -> String {
        milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(milliseconds) ms"
    }

    /// The next line, waiting for it; the view is valid until the next read.
    func nextLine() throws(ClientFailure) -> UnsafeRawBufferPointer {
        while true {
            if let line = takeLine() { return line }
            guard end - start < Self.maxLineLength else {
                throw ClientFailure("\(address): reply line longer than \(Self.maxLineLength) bytes")
            }
            _ = try fill(blocking: true)
        }
    }

    /// The next line parsed as JSON (for the slow paths: greeting, negotiation, exec).
    func nextJSONLine() throws(ClientFailure) -> (text: String, value: JSON) {
        let line = try nextLine()
        let text = String(decoding: line, as: UTF8.self)
        // QMPWire's parser, not bare jansson: QEMU echoes ids beyond int64 (uint64) exactly.
        guard case .success(let value) = JSONValueParser.parse(line, careful: false), value.isObject else {
            throw ClientFailure("\(address): the server sent something that is not a JSON object: \(text.prefix(200))")
        }
        return (text, value)
    }

    // MARK: QMP session

    /// Reads the greeting and returns it; anything else means this is not a QMP server.
    @discardableResult
    func readGreeting() throws(ClientFailure) -> JSON {
        let (text, greeting) = try nextJSONLine()
        guard let qmp = greeting["QMP"], qmp.isObject else {
            throw ClientFailure("\(address): expected a QMP greeting, got: \(text.prefix(200))")
        }
        return qmp
    }

    /// Leaves capabilities negotiation mode, so that every command is accepted.
    func negotiate() throws(ClientFailure) {
        let id = "cssctl-negotiate"
        try writeAll(#"{"execute": "qmp_capabilities", "id": "\#(id)"}"#)
        while true {
            let (text, reply) = try nextJSONLine()
            if reply["event"] != nil { continue }
            guard reply["id"]?.stringValue == id else {
                throw ClientFailure("\(address): unexpected reply during negotiation: \(text.prefix(200))")
            }
            if let error = reply["error"] {
                throw ClientFailure("\(address): capabilities negotiation failed: \(qmpErrorText(error))")
            }
            return
        }
    }
}

/// `CLASS: desc` for an error reply's `error` member.
func qmpErrorText(_ error: JSON) -> String {
    let errorClass = error["class"]?.stringValue ?? "?"
    let desc = error["desc"]?.stringValue ?? error.serialized()
    return "\(errorClass): \(desc)"
}
