// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import QMPTransport
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The one address grammar, as cssd's `--qmp` (listening) and cssctl's `--socket` (connecting)
/// read it.
@Suite("QMP addresses")
struct QMPAddressTests {
    private func parse(_ text: String, _ use: QMPAddress.Use) -> Result<QMPAddress, QMPTransportError> {
        Result { () throws(QMPTransportError) in try QMPAddress(parsing: text, for: use) }
    }

    private func error(_ text: String, _ use: QMPAddress.Use) -> String? {
        if case .failure(let error) = parse(text, use) { return error.description }
        return nil
    }

    @Test("both sides read unix:PATH, tcp:HOST:PORT and bracketed IPv6 alike")
    func common() throws {
        for use in [QMPAddress.Use.listening, .connecting] {
            #expect(try parse("unix:/run/cssd.sock", use).get() == .unix(path: "/run/cssd.sock"))
            #expect(try parse("unix:rel/x.sock", use).get() == .unix(path: "rel/x.sock"))
            #expect(try parse("tcp:127.0.0.1:4444", use).get() == .tcp(host: "127.0.0.1", port: 4444))
            #expect(try parse("tcp:localhost:65535", use).get() == .tcp(host: "localhost", port: 65535))
            #expect(try parse("tcp:[::1]:4444", use).get() == .tcp(host: "::1", port: 4444))
            #expect(try parse("tcp:::1:4444", use).get() == .tcp(host: "::1", port: 4444))
            // A path of 107 bytes fits sun_path with its NUL; 108 does not.
            let longest = "/" + String(repeating: "a", count: 106)
            #expect(try parse("unix:" + longest, use).get() == .unix(path: longest))
            #expect(
                error("unix:" + longest + "a", use)
                    == "'unix:\(longest)a': a unix socket path must be shorter than 108 bytes")
            #expect(error("unix:", use) == "'unix:': empty socket path")
            #expect(error("tcp:4444", use) == "'tcp:4444': expected tcp:HOST:PORT")
            #expect(error("tcp::4444", use) == "'tcp::4444': empty host")
            #expect(error("tcp:[]:4444", use) == "'tcp:[]:4444': empty host")
        }
    }

    @Test("listening: a prefix is required and port 0 picks a free port")
    func listening() throws {
        #expect(try parse("tcp:127.0.0.1:0", .listening).get() == .tcp(host: "127.0.0.1", port: 0))
        #expect(error("cssd.sock", .listening) == "'cssd.sock': expected unix:PATH or tcp:HOST:PORT")
        #expect(error("bogus:x", .listening) == "'bogus:x': expected unix:PATH or tcp:HOST:PORT")
        #expect(error("tcp:h:65536", .listening) == "'tcp:h:65536': expected tcp:HOST:PORT with a port in 0...65535")
        #expect(error("tcp:h:x", .listening) == "'tcp:h:x': expected tcp:HOST:PORT with a port in 0...65535")
    }

    @Test("connecting: a bare path is a unix socket and the port is 1...65535")
    func connecting() throws {
        #expect(try parse("cssd.sock", .connecting).get() == .unix(path: "cssd.sock"))
        #expect(try parse("/tmp/q.sock", .connecting).get() == .unix(path: "/tmp/q.sock"))
        #expect(error("", .connecting) == "'': empty socket path")
        #expect(error("tcp:h:0", .connecting) == "'tcp:h:0': expected tcp:HOST:PORT with a port in 1...65535")
        #expect(error("tcp:h:-1", .connecting) == "'tcp:h:-1': expected tcp:HOST:PORT with a port in 1...65535")
    }

    @Test("the description parses back to the same address")
    func roundTrip() throws {
        for address in [
            QMPAddress.unix(path: "/a b/c.sock"), .tcp(host: "::1", port: 1), .tcp(host: "example.org", port: 80),
        ] {
            #expect(try parse(address.description, .listening).get() == address)
            #expect(try parse(address.description, .connecting).get() == address)
        }
        #expect(QMPAddress.tcp(host: "::1", port: 4444).description == "tcp:[::1]:4444")
    }

    @Test("connect reaches a real unix listener, and names the address and errno when nobody listens")
    func connectUnix() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("s.sock")
        defer { unlink(path) }

        #expect(throws: QMPTransportError("cannot connect to unix:\(path): No such file or directory")) {
            try QMPAddress.unix(path: path).connect()
        }

        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        #expect(bound == 0)
        #expect(listen(listener, 1) == 0)
        let fd = try QMPAddress.unix(path: path).connect()
        #expect(fd >= 0)
        #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0)
        close(fd)
    }

    @Test("connect reaches a real tcp listener on loopback")
    func connectTCP() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(listener, pointer, length) == 0 && listen(listener, 1) == 0
                    && getsockname(listener, pointer, &length) == 0
            }
        }
        #expect(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let fd = try QMPAddress.tcp(host: "127.0.0.1", port: port).connect()
        var noDelay: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, &size)
        #expect(noDelay != 0)
        close(fd)
    }
}
