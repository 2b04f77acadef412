// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Foundation
import JSONValues
import NIOCore
import QMPCommands
import QMPFuzzSupport
import QMPSchema
import QMPWire
import TestSupport
import Testing

@testable import QMPServer

@Suite("QMP session")
struct SessionTests {
    @Test("greeting, negotiation mode, command mode")
    func negotiation() {
        let h = SessionConnection()
        _ = h.feed(#"{"execute":"query-version","id":1}{"execute":"qmp_capabilities","id":2}"#)
        _ = h.feed(#"{"execute":"query-version","id":3}{"execute":"qmp_capabilities","id":4}"#)
        let lines = h.lines()
        #expect(lines.count == 5)
        #expect(lines[0]["QMP"]?["capabilities"]?[0]?.stringValue == "oob")
        #expect(lines[0]["QMP"]?["version"]?["qemu"]?["major"]?.intValue == CSSDVersion.triple.major)
        #expect(lines[1]["error"]?["class"]?.stringValue == "CommandNotFound")
        #expect(lines[1]["error"]?["desc"]?.stringValue == "Expecting capabilities negotiation with 'qmp_capabilities'")
        #expect(lines[1]["id"]?.intValue == 1)
        #expect(lines[2]["return"]?.count == 0 && lines[2]["id"]?.intValue == 2)
        #expect(lines[3]["return"]?["package"]?.stringValue == "cssd \(CSSDVersion.string)")
        #expect(
            lines[4]["error"]?["desc"]?.stringValue == "Capabilities negotiation is already complete, command ignored")
    }

    @Test(
        "malformed requests get QEMU's errors, with the id when there is one",
        arguments: [
            (#"{"id": 1}"#, "GenericError", "QMP input lacks member 'execute'", true),
            (#"{"execute": 1, "id": 1}"#, "GenericError", "QMP input member 'execute' must be a string", true),
            (
                #"{"execute": "query-version", "arguments": [], "id": 1}"#, "GenericError",
                "QMP input member 'arguments' must be an object", true
            ),
            (
                #"{"execute": "query-version", "foo": 1, "id": 1}"#, "GenericError",
                "QMP input member 'foo' is unexpected", true
            ),
            (
                #"{"exec-oob": "query-version", "id": 1}"#, "GenericError", "QMP input member 'exec-oob' is unexpected",
                true
            ),
            (#"{"execute": "nope", "id": 1}"#, "CommandNotFound", "The command nope has not been found", true),
            (#"{"execute": "quit", "id": 1}"#, "CommandNotFound", "The command quit has not been found", true),
            (
                #"{"execute": "query-version", "arguments": {"x": 1}, "id": 1}"#, "GenericError",
                "Parameter 'x' is unexpected", true
            ),
            (#"[1]"#, "GenericError", "QMP input must be a JSON object", false),
            // A key is its full text, NUL included (QEMU keeps it as modified UTF-8).
            (
                #"{"execute\u0000x": "query-version", "id": 1}"#, "GenericError",
                "QMP input member 'execute\u{0}x' is unexpected", true
            ),
            (#"{"a" 1}"#, "GenericError", "JSON parse error, missing : in object pair", false),
        ])
    func malformed(request: String, errorClass: String, desc: String, hasID: Bool) {
        let h = SessionConnection()
        _ = h.feed(#"{"execute":"qmp_capabilities"}"# + request)
        let reply = h.lines()[2]
        #expect(reply["error"]?["class"]?.stringValue == errorClass)
        #expect(reply["error"]?["desc"]?.stringValue == desc)
        #expect((reply["id"]?.intValue == 1) == hasID)
    }

    @Test("exec-oob: recognised once enabled, refused for commands that do not allow it")
    func outOfBand() {
        let h = SessionConnection()
        _ = h.feed(#"{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}"#)
        _ = h.feed(#"{"exec-oob":"query-version","id":"a"}{"exec-oob":"qmp_capabilities","id":"b"}"#)
        _ = h.feed(#"{"execute":"query-version","exec-oob":"query-version","id":"c"}"#)
        let lines = h.lines()
        #expect(lines[2]["error"]?["desc"]?.stringValue == "The command query-version does not support OOB")
        // qmp_capabilities is not an OOB command in QEMU 7.2 either.
        #expect(lines[3]["error"]?["desc"]?.stringValue == "The command qmp_capabilities does not support OOB")
        #expect(lines[4]["error"]?["desc"]?.stringValue?.contains("clashes with") == true)
        #expect(lines[4]["id"]?.stringValue == "c")
    }

    @Test("ids of every JSON type come back verbatim")
    func ids() {
        let h = SessionConnection()
        let ids = [#""__qmp#00001""#, "17", "-2.5", "true", "null", #"[1,{"a":"é"}]"#, #"{"k":[]}"#]
        _ = h.feed(
            #"{"execute":"qmp_capabilities"}"# + ids.map { #"{"execute":"query-version","id":\#($0)}"# }.joined())
        let lines = h.lines().dropFirst(2)
        #expect(lines.count == ids.count)
        for (line, id) in zip(lines, ids) {
            #expect(line["id"]?.isEqual(to: JSON.parse(id)!) == true, "id \(id)")
        }
    }

    @Test("read-only connections accept query-*, negotiation and path-event subscriptions only")
    func readOnly() {
        let h = SessionConnection(readOnly: true, conditions: [.allowQuit])
        _ = h.feed(#"{"execute":"qmp_capabilities"}{"execute":"quit","id":1}{"execute":"query-commands","id":2}"#)
        let lines = h.lines()
        #expect(lines[2]["error"]?["class"]?.stringValue == "CommandNotFound")
        #expect(lines[2]["error"]?["desc"]?.stringValue?.contains("read-only") == true)
        let names = lines[3]["return"]?.elements.compactMap { $0["name"]?.stringValue } ?? []
        #expect(!names.contains("quit") && !names.contains("vary-path"))
        #expect(names.contains("query-version"))
        #expect(names.contains("subscribe-path-events") && names.contains("unsubscribe-path-events"))
    }

    @Test("quit exists only with allow-quit, and is listed only then")
    func quitCondition() {
        let without = SessionConnection()
        _ = without.feed(#"{"execute":"qmp_capabilities"}{"execute":"query-commands"}"#)
        #expect(without.lines()[2]["return"]?.elements.contains { $0["name"]?.stringValue == "quit" } == false)
        let with = SessionConnection(conditions: [.allowQuit])
        _ = with.feed(#"{"execute":"qmp_capabilities"}{"execute":"query-commands"}{"execute":"quit"}"#)
        let lines = with.lines()
        #expect(lines[2]["return"]?.elements.contains { $0["name"]?.stringValue == "quit" } == true)
        #expect(lines[3]["return"]?.count == 0)
    }

    @Test("an output budget pauses between values and resuming gives the same output")
    func outputBudget() {
        let requests = String(repeating: #"{"execute":"query-qmp-schema"}"#, count: 20)
        let unbounded = SessionConnection()
        _ = unbounded.feed(#"{"execute":"qmp_capabilities"}"# + requests)
        let expected = unbounded.lines().map(\.description)

        let bounded = SessionConnection()
        var collected = ByteBuffer()
        var progress = bounded.feed(#"{"execute":"qmp_capabilities"}"# + requests, budget: 1000)
        var pauses = 0
        while progress == .outputFull {
            pauses += 1
            #expect(bounded.output.readableBytes >= 1000)
            // The consumer drains the output, then processing resumes.
            collected.writeBuffer(&bounded.output)
            progress = bounded.session.process(into: &bounded.output, budget: 1000)
        }
        collected.writeBuffer(&bounded.output)
        bounded.output = collected
        #expect(pauses >= 10)
        #expect(bounded.lines().map(\.description) == expected)
    }

    @Test("a partial value is kept across reads; input memory stays bounded")
    func partialValues() {
        let h = SessionConnection(limits: WireLimits(maxValueSize: 4096))
        _ = h.feed(#"{"execute":"qmp_capabilities"}{"execute":"query-"#)
        #expect(h.session.bufferedInputBytes == #"{"execute":"query-"#.utf8.count)
        _ = h.feed(#"version","id":9}"#)
        #expect(h.session.bufferedInputBytes == 0)
        // An endless value: the buffer never exceeds the bound, and the error comes once.
        for _ in 0..<100 {
            _ = h.feed("[" + String(repeating: "1,", count: 100))
            #expect(h.session.bufferedInputBytes <= WireLimits(maxValueSize: 4096).maxBufferedValueBytes + 202)
        }
        let lines = h.lines()
        #expect(lines[2]["id"]?.intValue == 9)
        #expect(lines.contains { $0["error"]?["desc"]?.stringValue == "JSON token size limit exceeded" })
    }

    @Test("every command in the schema has a handler and vice versa")
    func registryMatchesSchema() throws {
        let schema = Schema.embedded()
        #expect(CommandRegistry.standard().mismatches(with: schema) == [])
        var extra = CommandRegistry.standard()
        extra.register("no-such-command") { (_, _) throws(QMPError) in .reply(.null) }
        #expect(extra.mismatches(with: schema) == ["handler 'no-such-command' has no schema entry"])
        let missing = CommandRegistry()
        #expect(
            missing.mismatches(with: schema).contains("command 'query-version' is in the schema but has no handler"))
    }

    @Test("fuzz corpus and every input that once failed replay cleanly")
    func fuzzRegressions() throws {
        let root = URL(fileURLWithPath: Repository.root + "/Tests")
        var count = 0
        for folder in ["Fuzz/corpus", "Fuzz/regressions"] {
            let directory = root.appendingPathComponent(folder)
            let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
            for name in files.sorted() {
                let data = try Data(contentsOf: directory.appendingPathComponent(name))
                data.withUnsafeBytes { FuzzHarness.runOne($0) }
                count += 1
            }
        }
        #expect(count >= 12)
    }
}
