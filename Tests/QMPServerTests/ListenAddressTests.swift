// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import QMPServer
import Testing

/// `--qmp`'s grammar is QMPTransport's, read for listening (QMPAddressTests has the rest).
@Suite("Listen addresses")
struct ListenAddressTests {
    @Test("cssd --qmp values parse as QMPAddress does for a listener")
    func parsing() throws {
        #expect(try ListenAddress(parsing: "unix:cssd.sock") == .unix(path: "cssd.sock"))
        #expect(try ListenAddress(parsing: "tcp:127.0.0.1:0") == .tcp(host: "127.0.0.1", port: 0))
        #expect(try ListenAddress(parsing: "tcp:[::1]:4444") == .tcp(host: "::1", port: 4444))
        #expect(try ListenAddress(parsing: "tcp:[::1]:4444").description == "tcp:[::1]:4444")
        #expect(throws: ListenAddressError.self) { try ListenAddress(parsing: "cssd.sock") }
        do {
            _ = try ListenAddress(parsing: "bogus:x")
            Issue.record("bogus:x was accepted")
        } catch {
            #expect(error.description == "'bogus:x': expected unix:PATH or tcp:HOST:PORT")
        }
    }
}
