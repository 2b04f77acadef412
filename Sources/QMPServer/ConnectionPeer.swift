// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import NIOCore
import QMPCommands

#if canImport(Glibc)
import Glibc
#endif

/// Who is on the other end of a connection, and where it came in: for the audit log and
/// query-connections.
struct ConnectionPeer: Sendable {
    /// The listener's address (`unix:PATH`, `tcp:HOST:PORT`).
    var listener: String
    var transport: ConnectionReport.Transport
    /// SO_PEERCRED, taken at accept (unix).
    var credentials: (uid: UInt32, gid: UInt32, pid: Int32)?
    /// The client certificate's DN (tls).
    var distinguishedName: String?
    /// The peer's address (tcp, tls).
    var address: String?

    /// `uid=U gid=G pid=P`, the DN, or the address.
    var identity: String {
        if let credentials { return "uid=\(credentials.uid) gid=\(credentials.gid) pid=\(credentials.pid)" }
        if let distinguishedName { return distinguishedName }
        return address ?? "?"
    }

    /// The peer credentials of a unix-domain connection (Linux SO_PEERCRED: the connecting
    /// process's uid, gid and pid when it called connect(2)).
    static func credentials(of channel: Channel) -> EventLoopFuture<(uid: UInt32, gid: UInt32, pid: Int32)?> {
        guard let provider = channel as? SocketOptionProvider else { return channel.eventLoop.makeSucceededFuture(nil) }
        let future: EventLoopFuture<PeerCredentials> = provider.unsafeGetSocketOption(
            level: .socket, name: NIOBSDSocket.Option(rawValue: SO_PEERCRED))
        return future.map { (uid: $0.uid, gid: $0.gid, pid: $0.pid) }.recover { _ in nil }
    }

    /// Linux `struct ucred` (socket(7)), which Swift's Glibc module does not export.
    struct PeerCredentials {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    /// The peer's address as `HOST:PORT` (`[::1]:PORT` for IPv6).
    static func address(of channel: Channel) -> String? {
        guard let remote = channel.remoteAddress, let ip = remote.ipAddress, let port = remote.port else { return nil }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
