// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import QMPTransport

/// Where a QMP listener accepts connections: `unix:PATH` or `tcp:HOST:PORT` (QEMU's spelling;
/// an IPv6 host goes in brackets, `tcp:[::1]:4444`; port 0 picks a free port).
package enum ListenAddress: Sendable, Equatable, CustomStringConvertible {
    case unix(path: String)
    case tcp(host: String, port: Int)

    /// Parses QMPAddress's grammar (Sources/QMPTransport, shared with cssctl) for a listener:
    /// the `unix:` or `tcp:` prefix is required and port 0 is allowed.
    ///
    /// - Throws: `ListenAddressError` whose text quotes the address and says what was expected.
    package init(parsing text: String) throws(ListenAddressError) {
        let address: QMPAddress
        do throws(QMPTransportError) {
            address = try QMPAddress(parsing: text, for: .listening)
        } catch {
            throw ListenAddressError(error.description)
        }
        switch address {
        case .unix(let path): self = .unix(path: path)
        case .tcp(let host, let port): self = .tcp(host: host, port: port)
        }
    }

    /// The same address for QMPTransport (connecting to it, printing it).
    package var transportAddress: QMPAddress {
        switch self {
        case .unix(let path): return .unix(path: path)
        case .tcp(let host, let port): return .tcp(host: host, port: port)
        }
    }

    package var description: String { transportAddress.description }
}

package struct ListenAddressError: Error, CustomStringConvertible, Sendable {
    package let description: String
    init(_ description: String) { self.description = description }
}

/// A listener: an address, and whether it accepts only query-* commands (and path-event
/// subscriptions: `Command.isReadOnly`).
package struct Listener: Sendable, Equatable {
    package var address: ListenAddress
    package var readOnly: Bool
    /// A listening socket handed over by systemd (socket activation), bound to `address`;
    /// nil: cssd binds `address` itself.
    package var descriptor: Int32?

    package init(_ address: ListenAddress, readOnly: Bool = false, descriptor: Int32? = nil) {
        self.address = address
        self.readOnly = readOnly
        self.descriptor = descriptor
    }
}
