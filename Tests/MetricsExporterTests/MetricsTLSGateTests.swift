// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOSSL
import Prometheus
import ServerSecurity
import Testing

@testable import MetricsExporter

/// The metrics endpoint's TLS pipeline (NIOSSLServerHandler, metricsTLSGate, then NIOHTTP1 and
/// MetricsHTTPHandler) on an EmbeddedChannel, against a real NIOSSL client on another one, with
/// certificates made by openssl: who is served, who is refused and how each refusal is counted.
@Suite(.serialized) struct MetricsTLSGateTests {
    /// A CA, a server certificate for 127.0.0.1 and two client certificates (mgmt, intruder),
    /// in QEMU's server layout plus one client layout per client; a policy allowing mgmt only.
    final class PKI: Sendable {
        let root: String
        let security: TransportSecurity

        init() throws {
            root = NSTemporaryDirectory() + "cssd-metrics-tls-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: root + "/server", withIntermediateDirectories: true)
            try Self.openssl(
                root,
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                "ca-key.pem", "-out", "server/ca-cert.pem", "-days", "2", "-subj", "/O=Example/CN=test CA", "-addext",
                "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
            try Self.issue(root, "server/server", "/O=Example/CN=localhost", "serverAuth\nsubjectAltName=IP:127.0.0.1")
            for name in ["mgmt", "intruder"] {
                try Self.issue(root, name, "/C=GB/O=Example/CN=\(name)", "clientAuth")
            }
            let policy = #"{"policy": "deny", "rules": [{"match": "*,CN=mgmt", "policy": "allow", "format": "glob"}]}"#
            try policy.write(toFile: root + "/authz.json", atomically: true, encoding: .utf8)
            security = try TransportSecurity(credentialsDirectory: root + "/server", authzFile: root + "/authz.json")
        }

        deinit { try? FileManager.default.removeItem(atPath: root) }

        /// A client context with `name`'s certificate (nil: none), trusting the CA.
        func clientContext(_ name: String?) throws -> NIOSSLContext {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.trustRoots = .file(root + "/server/ca-cert.pem")
            configuration.certificateVerification = .noHostnameVerification
            if let name {
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(root + "/\(name)-cert.pem")
                    .map { .certificate($0) }
                configuration.privateKey = .privateKey(
                    try NIOSSLPrivateKey(file: root + "/\(name)-key.pem", format: .pem))
            }
            return try NIOSSLContext(configuration: configuration)
        }

        private static func issue(_ root: String, _ name: String, _ subject: String, _ extensions: String) throws {
            try "basicConstraints=CA:FALSE\nextendedKeyUsage=\(extensions)\n".write(
                toFile: root + "/\(name).ext", atomically: true, encoding: .utf8)
            try openssl(
                root, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                "\(name)-key.pem", "-out", "\(name).csr", "-subj", subject)
            try openssl(
                root, "x509", "-req", "-in", "\(name).csr", "-CA", "server/ca-cert.pem", "-CAkey", "ca-key.pem",
                "-set_serial", "\(Int.random(in: 1000...1_000_000))", "-days", "2", "-extfile", "\(name).ext", "-out",
                "\(name)-cert.pem")
        }

        private static func openssl(_ directory: String, _ arguments: String...) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            process.arguments = arguments
            process.currentDirectoryURL = URL(fileURLWithPath: directory)
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw OpenSSLFailed(arguments: arguments) }
        }
    }

    struct OpenSSLFailed: Error {
        let arguments: [String]
    }

    static let pki: Result<PKI, Error> = Result { try PKI() }

    /// The endpoint's TLS pipeline as MetricsEndpoint builds it, and its refusal counters.
    struct Endpoint {
        let channel = EmbeddedChannel()
        let registry = PrometheusCollectorRegistry()

        init(pki: PKI, timeout: TimeAmount = .seconds(10)) throws {
            let snapshot = pki.security.current
            let refusals = MetricsTLSRefusals(registry: registry)
            let channel = self.channel
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: snapshot.context))
            try channel.pipeline.syncOperations.addHandler(
                metricsTLSGate(
                    snapshot: snapshot, latest: { [pki] in pki.security.current }, timeout: timeout,
                    listener: "tcp:127.0.0.1:9464", peer: "127.0.0.1:1",
                    logger: Logger(label: "test"), refusals: refusals
                ) { sync in
                    try sync.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false)
                    try sync.addHandler(
                        MetricsHTTPHandler(requestTimeout: .seconds(10)) { _ in ByteBuffer(string: "cssd_up 1\n") })
                })
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9464)).wait()
        }

        /// `cssd_metrics_tls_refusals_total` by reason, as the exposition writes it.
        func refusals() -> [String: Int] {
            var text: [UInt8] = []
            registry.emit(into: &text)
            var counts: [String: Int] = [:]
            let prefix = #"cssd_metrics_tls_refusals_total{reason=""#
            for line in String(decoding: text, as: UTF8.self).split(separator: "\n") where line.hasPrefix(prefix) {
                let rest = line.dropFirst(prefix.count)
                guard let quote = rest.firstIndex(of: "\""), let value = Int(rest.split(separator: " ").last ?? "")
                else { continue }
                counts[String(rest[..<quote])] = value
            }
            return counts
        }
    }

    /// A NIOSSL client on its own EmbeddedChannel.
    static func client(_ context: NIOSSLContext) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: nil))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9464)).wait()
        return channel
    }

    /// Moves bytes both ways until neither side has more to send; errors the client sees
    /// (alerts) are ignored: what counts is what the server did.
    static func interact(_ client: EmbeddedChannel, _ server: EmbeddedChannel) {
        var moved = true
        while moved {
            moved = false
            while let bytes = try? client.readOutbound(as: ByteBuffer.self) {
                moved = true
                guard server.isActive else { continue }
                _ = try? server.writeInbound(bytes)
            }
            while let bytes = try? server.readOutbound(as: ByteBuffer.self) {
                moved = true
                guard client.isActive else { continue }
                _ = try? client.writeInbound(bytes)
            }
        }
    }

    /// The plaintext the client received.
    static func received(_ client: EmbeddedChannel) -> String {
        var text = ""
        while let buffer = try? client.readInbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    static let request = ByteBuffer(string: "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")

    @Test func anAuthorizedClientIsServedHTTP() throws {
        let pki = try Self.pki.get()
        let server = try Endpoint(pki: pki)
        let client = try Self.client(try pki.clientContext("mgmt"))
        Self.interact(client, server.channel)
        client.writeAndFlush(Self.request, promise: nil)
        Self.interact(client, server.channel)
        let answer = Self.received(client)
        #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(answer.hasSuffix("cssd_up 1\n"))
        #expect(server.channel.isActive)
        #expect(server.refusals().values.allSatisfy { $0 == 0 })
        #expect(server.refusals().count == MetricsTLSRefusals.Reason.allCases.count)
        // The gate left the pipeline once the client was authorized.
        #expect((try? server.channel.pipeline.syncOperations.handler(type: TLSAdmissionHandler.self)) == nil)
    }

    /// A denied DN (after the handshake) and no certificate at all (in it): closed before any
    /// HTTP, and counted under their reason.
    @Test(arguments: zip(["intruder", nil] as [String?], ["unauthorized", "no-certificate"]))
    func aRefusedClientIsClosedBeforeHTTPAndCounted(certificate: String?, reason: String) throws {
        let pki = try Self.pki.get()
        let server = try Endpoint(pki: pki)
        let client = try Self.client(try pki.clientContext(certificate))
        Self.interact(client, server.channel)
        client.writeAndFlush(Self.request, promise: nil)
        Self.interact(client, server.channel)
        #expect(!Self.received(client).contains("HTTP/"))
        #expect(!server.channel.isActive)
        #expect(server.refusals()[reason] == 1)
    }

    @Test func plainHTTPGetsNoAnswerAndCountsAsNotTLS() throws {
        let pki = try Self.pki.get()
        let server = try Endpoint(pki: pki)
        _ = try? server.channel.writeInbound(Self.request)
        var sent = ""
        while let buffer = try? server.channel.readOutbound(as: ByteBuffer.self) { sent += String(buffer: buffer) }
        #expect(!sent.contains("HTTP/"))
        #expect(!server.channel.isActive)
        #expect(server.refusals()["not-tls"] == 1)
    }

    @Test func aSilentClientIsCutAtTheHandshakeTimeout() throws {
        let pki = try Self.pki.get()
        let server = try Endpoint(pki: pki, timeout: .milliseconds(500))
        server.channel.embeddedEventLoop.advanceTime(by: .milliseconds(499))
        #expect(server.channel.isActive)
        server.channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!server.channel.isActive)
        #expect(server.refusals()["timeout"] == 1)
        #expect(server.refusals()["abandoned"] == 0)
    }

    @Test func aClientLeavingMidHandshakeIsAbandoned() throws {
        let pki = try Self.pki.get()
        let server = try Endpoint(pki: pki)
        // The peer's connection goes away (what EOF on the socket does to the pipeline).
        server.channel.pipeline.fireChannelInactive()
        #expect(server.refusals()["abandoned"] == 1)
        server.channel.embeddedEventLoop.advanceTime(by: .seconds(20))
        #expect(server.refusals()["timeout"] == 0)
    }
}
