// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// Where a QMP listener accepts connections: `unix:PATH` or `tcp:HOST:PORT` (QEMU's spelling;
/// an IPv6 host goes in brackets, `tcp:[::1]:4444`; port 0 picks a free port).
public enum ListenAddress: Sendable, Equatable, CustomStringConvertible {
    case unix(path: String)
    case tcp(host: String, port: Int)

    public init(parsing text: String) throws(ListenAddressError) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard !path.isEmpty else { throw ListenAddressError("'\(text)': empty socket path") }
            guard path.utf8.count < 108 else {
                throw ListenAddressError("'\(text)': a unix socket path must be shorter than 108 bytes")
            }
            self = .unix(path: path)
        } else if text.hasPrefix("tcp:") {
            let rest = text.dropFirst(4)
            guard let colon = rest.lastIndex(of: ":") else {
                throw ListenAddressError("'\(text)': expected tcp:HOST:PORT")
            }
            var host = String(rest[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !host.isEmpty, let port = Int(rest[rest.index(after: colon)...]), (0...65535).contains(port) else {
                throw ListenAddressError("'\(text)': expected tcp:HOST:PORT with a port in 0...65535")
            }
            self = .tcp(host: host, port: port)
        } else {
            throw ListenAddressError("'\(text)': expected unix:PATH or tcp:HOST:PORT")
        }
    }

    public var description: String {
        switch self {
        case .unix(let path): return "unix:\(path)"
        case .tcp(let host, let port): return host.contains(":") ? "tcp:[\(host)]:\(port)" : "tcp:\(host):\(port)"
        }
    }
}

public struct ListenAddressError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// A listener: an address, and whether it accepts only query-* commands.
public struct Listener: Sendable, Equatable {
    public var address: ListenAddress
    public var readOnly: Bool

    public init(_ address: ListenAddress, readOnly: Bool = false) {
        self.address = address
        self.readOnly = readOnly
    }
}
