// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import JSONValues
import PathEvents
import QMPWire

/// What the network layer reports of one open connection (query-connections).
package struct ConnectionReport: Sendable {
    package enum Transport: String, Sendable {
        case unix, tcp, tls
    }

    package var id: ConnectionID
    /// `unix:PATH` or `tcp:HOST:PORT`.
    package var listener: String
    package var transport: Transport
    /// `uid=U gid=G pid=P`, the certificate's DN, or the peer address.
    package var identity: String
    /// SO_PEERCRED at accept (unix only).
    package var credentials: (uid: UInt32, gid: UInt32, pid: Int32)?
    package var readOnly: Bool
    package var negotiated: Bool
    package var bytesIn: Int
    package var bytesOut: Int

    package init(
        id: ConnectionID, listener: String, transport: Transport, identity: String,
        credentials: (uid: UInt32, gid: UInt32, pid: Int32)?, readOnly: Bool, negotiated: Bool, bytesIn: Int,
        bytesOut: Int
    ) {
        self.id = id
        self.listener = listener
        self.transport = transport
        self.identity = identity
        self.credentials = credentials
        self.readOnly = readOnly
        self.negotiated = negotiated
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
    }
}

/// query-connections (API/connections.json), over the reports of `ServerState.connectionReports`.
/// One static method per command, as the generated `ConnectionCommandsSchema` requires.
enum ConnectionCommands {
    static func queryConnections(_ context: CommandContext) throws(QMPError) -> CommandOutcome {
        let server = context.server
        let reports = (server.connectionReports?() ?? []).sorted { $0.id < $1.id }
        return .reply(
            .array(
                reports.map { report in
                    let credentials = report.credentials
                    return ConnectionInfoReply(
                        id: report.id.number, listener: report.listener, transport: report.transport.rawValue,
                        identity: report.identity, uid: credentials.map { Int($0.uid) },
                        gid: credentials.map { Int($0.gid) }, pid: credentials.map { Int($0.pid) },
                        readOnly: report.readOnly, negotiated: report.negotiated,
                        subscriptions: server.pathEvents.subscriptions(of: report.id).map(\.id),
                        bytesIn: report.bytesIn, bytesOut: report.bytesOut,
                        current: report.id == context.connection
                    ).json
                }))
    }
}
