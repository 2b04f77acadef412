// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOSSL
import ServerSecurity
import Testing
import X509Credentials

/// The shared TLS admission gate behind a real NIOSSLServerHandler on an EmbeddedChannel,
/// against cssctl's client context (`TLSCredentials`, client layout) on another one, with
/// certificates made by openssl: what it admits, what it refuses with which reason, and when
/// the protocol sees channelActive.
@Suite(.serialized) struct TLSAdmissionHandlerTests {
    /// `server/` in QEMU's server layout, `mgmt/` and `intruder/` in its client layout; the
    /// policy allows O=Example,CN=mgmt only (QEMU's DN order).
    final class Credentials: Sendable {
        let root = NSTemporaryDirectory() + "cssd-admission-\(UUID().uuidString)"
        let security: TransportSecurity

        init() throws {
            let script = """
                set -e
                mkdir -p server mgmt intruder
                key='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'
                openssl req -x509 $key -keyout ca-key.pem -out server/ca-cert.pem -days 2 -subj '/CN=admission CA' \
                  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
                sign() {
                  openssl req $key -keyout "$1-key.pem" -out "$1.csr" -subj "$2"
                  printf 'basicConstraints=CA:FALSE\\nextendedKeyUsage=%s\\n' "$3" > "$1.ext"
                  openssl x509 -req -in "$1.csr" -CA server/ca-cert.pem -CAkey ca-key.pem -set_serial "$4" -days 2 \
                    -extfile "$1.ext" -out "$1-cert.pem"
                }
                sign server/server /CN=localhost serverAuth 11
                for name in mgmt intruder; do
                  sign "$name/client" "/O=Example/CN=$name" clientAuth "$(( $RANDOM + 100 ))"
                  cp server/ca-cert.pem "$name/"
                done
                echo '{"policy": "deny", "rules": [{"match": "O=Example,CN=mgmt", "policy": "allow", "format": "glob"}]}' \
                  > authz.json
                """
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            let shell = Process()
            shell.executableURL = URL(fileURLWithPath: "/bin/bash")
            shell.arguments = ["-c", script]
            shell.currentDirectoryURL = URL(fileURLWithPath: root)
            shell.standardOutput = FileHandle.nullDevice
            shell.standardError = FileHandle.nullDevice
            try shell.run()
            shell.waitUntilExit()
            try #require(shell.terminationStatus == 0, "openssl could not make the test certificates")
            security = try TransportSecurity(credentialsDirectory: root + "/server", authzFile: root + "/authz.json")
        }

        deinit { try? FileManager.default.removeItem(atPath: root) }

        /// A connected TLS client with `name`'s certificate, as cssctl makes it.
        func client(_ name: String) throws -> EmbeddedChannel {
            let credentials = try TLSCredentials(directory: root + "/" + name, endpoint: .client)
            let channel = EmbeddedChannel()
            try channel.pipeline.syncOperations.addHandler(
                try NIOSSLClientHandler(
                    context: try credentials.makeClientContext(verifyHostname: false), serverHostname: nil))
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4444)).wait()
            return channel
        }
    }

    static let credentials: Result<Credentials, Error> = Result { try Credentials() }

    /// Counts the channelActive events that reach the end of the pipeline.
    final class ActiveProbe: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var actives = 0
        func channelActive(context: ChannelHandlerContext) {
            actives += 1
            context.fireChannelActive()
        }
    }

    /// A server channel with NIOSSL and the gate, and what the gate reported.
    final class Server {
        let channel = EmbeddedChannel()
        var settled = 0
        var refusals: [(TLSRefusalReason, String)] = []
        var admitted: [String] = []
        let probe = ActiveProbe()

        init(
            _ credentials: Credentials, timeout: TimeAmount = .seconds(10),
            channelActive: TLSAdmissionHandler.ChannelActive = .holdUntilAdmitted, tls: Bool = true
        ) throws {
            let snapshot = credentials.security.current
            let gate = TLSAdmissionHandler(
                snapshot: snapshot, timeout: timeout,
                reporting: .init(logger: Logger(label: "test"), listener: "tcp:127.0.0.1:4444", peer: "127.0.0.1:1"),
                channelActive: channelActive, settled: { [unowned self] in settled += 1 },
                refused: { [unowned self] reason, text in refusals.append((reason, text)) },
                admit: { [unowned self] sync, identity in
                    admitted.append(identity.subject.text)
                    try sync.addHandler(probe)
                })
            if tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: snapshot.context)) }
            try channel.pipeline.syncOperations.addHandler(gate)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        }

        /// Carries the bytes of both sides to the other until there are none left.
        func exchange(with client: EmbeddedChannel) {
            func pending(_ channel: EmbeddedChannel) -> [ByteBuffer] {
                var buffers: [ByteBuffer] = []
                while let buffer = try? channel.readOutbound(as: ByteBuffer.self) { buffers.append(buffer) }
                return buffers
            }
            for _ in 0..<32 {
                let up = pending(client)
                let down = pending(channel)
                if up.isEmpty && down.isEmpty { return }
                for buffer in up where channel.isActive { _ = try? channel.writeInbound(buffer) }
                for buffer in down where client.isActive { _ = try? client.writeInbound(buffer) }
            }
        }

        var gateIsInPipeline: Bool {
            (try? channel.pipeline.syncOperations.handler(type: TLSAdmissionHandler.self)) != nil
        }
    }

    @Test func anAuthorizedClientIsAdmittedAndThenSeesChannelActive() throws {
        let credentials = try Self.credentials.get()
        let server = try Server(credentials)
        #expect(server.probe.actives == 0)
        server.exchange(with: try credentials.client("mgmt"))
        #expect(server.admitted == ["O=Example,CN=mgmt"])
        #expect(server.probe.actives == 1)
        #expect(server.settled == 1)
        #expect(server.refusals.isEmpty)
        #expect(server.channel.isActive)
        #expect(!server.gateIsInPipeline)
        // The timer was cancelled: nothing happens at the timeout.
        server.channel.embeddedEventLoop.advanceTime(by: .seconds(20))
        #expect(server.channel.isActive)
        #expect(server.refusals.isEmpty)
    }

    @Test func forwardedChannelActiveIsNotRepeatedAtAdmission() throws {
        let credentials = try Self.credentials.get()
        let server = try Server(credentials, channelActive: .forward)
        server.exchange(with: try credentials.client("mgmt"))
        #expect(server.admitted.count == 1)
        // Passed on at connect, before the protocol was installed; not fired again.
        #expect(server.probe.actives == 0)
    }

    @Test func aDeniedDNIsRefusedAndClosed() throws {
        let credentials = try Self.credentials.get()
        let server = try Server(credentials)
        server.exchange(with: try credentials.client("intruder"))
        #expect(server.admitted.isEmpty)
        #expect(server.refusals.map(\.0) == [.unauthorized])
        #expect(server.refusals.first?.1 == "the policy denies 'O=Example,CN=intruder'")
        #expect(server.settled == 1)
        #expect(!server.channel.isActive)
    }

    @Test func plaintextIsRefusedAsNotTLS() throws {
        let credentials = try Self.credentials.get()
        let server = try Server(credentials)
        _ = try? server.channel.writeInbound(ByteBuffer(string: "{\"execute\": \"qmp_capabilities\"}\r\n"))
        #expect(server.refusals.map(\.0) == [.notTLS])
        #expect(server.settled == 1)
        #expect(!server.channel.isActive)
    }

    @Test func theHandshakeTimesOutOnce() throws {
        let credentials = try Self.credentials.get()
        let server = try Server(credentials, timeout: .milliseconds(300))
        server.channel.embeddedEventLoop.advanceTime(by: .milliseconds(299))
        #expect(server.channel.isActive)
        server.channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!server.channel.isActive)
        #expect(server.refusals.map(\.0) == [.timeout])
        #expect(server.refusals.first?.1 == "no completed handshake within 300 ms")
        #expect(server.settled == 1)
    }

    @Test func aClientLeavingBeforeTheHandshakeIsAbandoned() throws {
        let credentials = try Self.credentials.get()
        let server = try Server(credentials)
        server.channel.pipeline.fireChannelInactive()
        #expect(server.refusals.map(\.0) == [.abandoned])
        server.channel.embeddedEventLoop.advanceTime(by: .seconds(20))
        #expect(server.refusals.count == 1)
        #expect(server.settled == 1)
    }

    @Test func aCloseBeforeNIOSSLReportsAnythingIsAbandonedToo() throws {
        let credentials = try Self.credentials.get()
        let server = try Server(credentials, tls: false)
        server.channel.pipeline.fireChannelInactive()
        #expect(server.refusals.map(\.0) == [.abandoned])
        #expect(server.refusals.first?.1 == "the client left before completing the handshake")
        #expect(server.settled == 1)
        #expect(server.admitted.isEmpty)
    }
}
