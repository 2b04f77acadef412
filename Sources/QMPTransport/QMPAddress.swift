// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

#if canImport(Glibc)
import Glibc
#endif

/// A QMP socket address in QEMU's spelling (`-qmp unix:PATH`, `-qmp tcp:HOST:PORT`): one
/// grammar for cssd's `--qmp` listeners and cssctl's `--socket`, which differ only in what
/// `Use` allows. An IPv6 host goes in brackets, `tcp:[::1]:4444` (a bare `tcp:::1:4444` also
/// works: the port is after the last colon).
package enum QMPAddress: Sendable, Hashable, CustomStringConvertible {
    case unix(path: String)
    case tcp(host: String, port: Int)

    /// Which side of a connection the address is for.
    package enum Use: Sendable {
        /// A listener (cssd `--qmp`): `unix:` or `tcp:` is required; port 0 asks the kernel for
        /// a free port.
        case listening
        /// A client (cssctl `--socket`): a bare path means `unix:PATH`; the port is 1...65535.
        case connecting
    }

    /// Parses `text`.
    ///
    /// - Throws: `QMPTransportError` quoting the text and what was expected: `'x': expected
    ///   unix:PATH or tcp:HOST:PORT`, `empty socket path`, `a unix socket path must be shorter
    ///   than 108 bytes` (Linux's `sun_path`, NUL included), `expected tcp:HOST:PORT`, `empty
    ///   host`, `expected tcp:HOST:PORT with a port in 0...65535` (1...65535 when connecting).
    package init(parsing text: String, for use: Use) throws(QMPTransportError) {
        if text.hasPrefix("tcp:") {
            let rest = text.dropFirst(4)
            guard let colon = rest.lastIndex(of: ":") else {
                throw QMPTransportError("'\(text)': expected tcp:HOST:PORT")
            }
            let ports = use == .listening ? 0...65535 : 1...65535
            guard let port = Int(rest[rest.index(after: colon)...]), ports.contains(port) else {
                throw QMPTransportError(
                    "'\(text)': expected tcp:HOST:PORT with a port in \(ports.lowerBound)...\(ports.upperBound)")
            }
            var host = String(rest[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !host.isEmpty else { throw QMPTransportError("'\(text)': empty host") }
            self = .tcp(host: host, port: port)
        } else if text.hasPrefix("unix:") || use == .connecting {
            let path = text.hasPrefix("unix:") ? String(text.dropFirst(5)) : text
            guard !path.isEmpty else { throw QMPTransportError("'\(text)': empty socket path") }
            guard path.utf8.count < MemoryLayout.size(ofValue: sockaddr_un().sun_path) else {
                throw QMPTransportError("'\(text)': a unix socket path must be shorter than 108 bytes")
            }
            self = .unix(path: path)
        } else {
            throw QMPTransportError("'\(text)': expected unix:PATH or tcp:HOST:PORT")
        }
    }

    /// The address as it parses back: `unix:PATH`, `tcp:HOST:PORT`, `tcp:[V6HOST]:PORT`.
    package var description: String {
        switch self {
        case .unix(let path): return "unix:\(path)"
        case .tcp(let host, let port): return host.contains(":") ? "tcp:[\(host)]:\(port)" : "tcp:\(host):\(port)"
        }
    }
}

/// A refused address text or a failed connect; the description is the message to print.
package struct QMPTransportError: Error, CustomStringConvertible, Sendable, Equatable {
    package let description: String
    package init(_ description: String) { self.description = description }

    /// `what: strerror(errno)`, read at once before anything else can change errno.
    static func system(_ what: String) -> QMPTransportError {
        let code = errno
        return QMPTransportError("\(what): \(String(cString: strerror(code)))")
    }
}

extension QMPAddress {
    /// Opens a blocking, close-on-exec stream socket connected to this address; the caller owns
    /// (and closes) the descriptor. A tcp host is resolved with getaddrinfo(3) and each of its
    /// addresses tried in turn; a tcp socket gets TCP_NODELAY, since QMP requests are small
    /// writes that Nagle's algorithm would hold back for tens of milliseconds.
    ///
    /// - Throws: `QMPTransportError`: `cannot connect to ADDRESS: strerror`, `socket: strerror`,
    ///   `cannot resolve HOST: gai_strerror`, or a unix path too long for `sun_path`.
    package func connect() throws(QMPTransportError) -> Int32 {
        switch self {
        case .unix(let path):
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            guard path.utf8.count < MemoryLayout.size(ofValue: address.sun_path) else {
                throw QMPTransportError("cannot connect to \(self): the path is longer than 107 bytes")
            }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                raw.copyBytes(from: path.utf8)
                raw[path.utf8.count] = 0
            }
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw .system("socket") }
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            guard result == 0 else {
                let failure = QMPTransportError.system("cannot connect to \(self)")
                close(fd)
                throw failure
            }
            return fd

        case .tcp(let host, let port):
            var hints = addrinfo()
            hints.ai_family = AF_UNSPEC
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var list: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(host, String(port), &hints, &list)
            guard status == 0, let first = list else {
                throw QMPTransportError("cannot resolve \(host): \(String(cString: gai_strerror(status)))")
            }
            defer { freeaddrinfo(list) }
            var lastFailure = QMPTransportError("cannot connect to \(self)")
            var entry: UnsafeMutablePointer<addrinfo>? = first
            while let info = entry {
                entry = info.pointee.ai_next
                let fd = socket(
                    info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue),
                    info.pointee.ai_protocol)
                guard fd >= 0 else {
                    lastFailure = .system("socket")
                    continue
                }
                if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 {
                    var one: Int32 = 1
                    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                    return fd
                }
                lastFailure = .system("cannot connect to \(self)")
                close(fd)
            }
            throw lastFailure
        }
    }
}
