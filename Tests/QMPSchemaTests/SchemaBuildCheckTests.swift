// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Foundation
import Testing

/// The build's check of API/*.json: api-embed (the EmbedAPI plugin's tool, built beside this
/// test bundle) refuses what the reader refuses, with the file and the definition named, and
/// exits non-zero, which fails the build.
@Suite("Schema check at build time")
struct SchemaBuildCheckTests {
    /// api-embed in the build directory of this test bundle.
    static var tool: URL {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = bundle.deletingLastPathComponent()
        // The bundle is .build/<triple>/debug/X.xctest (a file on Linux, a directory elsewhere).
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("api-embed").path),
            directory.path != "/"
        {
            directory.deleteLastPathComponent()
        }
        return directory.appendingPathComponent("api-embed")
    }

    /// Runs api-embed over one document; its exit status and standard error.
    static func generate(_ text: String, mode: String) throws -> (status: Int32, error: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("api-embed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("bad.json")
        try text.write(to: input, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = tool
        let output = directory.appendingPathComponent("out.swift").path
        process.arguments = mode == "commands" ? [mode, output, "--", input.path] : [mode, output, input.path]
        let pipe = Pipe()
        process.standardError = pipe
        try process.run()
        let error = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, error)
    }

    @Test(
        "a malformed document fails generation with the file and the definition named (the reader's texts)",
        arguments: [
            (
                #"{"definitions": [{"command": "a", "data": {"x": "Nope"}}]}"#,
                "bad.json: command a member 'x': unknown type 'Nope'"
            ),
            (
                #"{"definitions": [{"command": "a"}, {"command": "a"}]}"#,
                "bad.json: definition #2: 'a' is defined twice"
            ),
            (#"{"definitions": [{"command": "a", "bogus": 1}]}"#, "bad.json: definition #1 (a): unknown key 'bogus'"),
            (
                #"{"definitions": [{"enum": "E", "data": []}]}"#,
                #"bad.json: definition #1 (E): an enum needs a non-empty "data" array"#
            ),
            (
                #"{"definitions": [{"command": "a", "data": {"x": {"type": "int", "default": 1}}}]}"#,
                "bad.json: definition #1 (a): member 'x' has a default but is not optional"
            ),
            (#"{"definitions": [{"thing": "a"}]}"#, #"bad.json: definition #1: needs one of "command""#),
            (
                #"{"definitions": [{"command": "a", "changes": "host"}]}"#,
                #"bad.json: definition #1 (a): "changes" is 'subsystem' or 'guests'"#
            ),
            (
                #"{"definitions": [{"command": "a", "if": "debug"}]}"#,
                #"bad.json: definition #1 (a): "if" is 'allow-quit'"#
            ),
            (
                #"{"definitions": [{"alias": "A", "type": "Other"}]}"#,
                #"bad.json: definition #1 (A): an alias needs a built-in "type""#
            ),
            (#"[1]"#, "bad.json: not a JSON object"),
            (#"{"definitions": [}"#, "bad.json: JSON:"),
        ])
    func refused(text: String, message: String) throws {
        for mode in ["values", "commands"] {
            let (status, error) = try Self.generate(text, mode: mode)
            #expect(status != 0, "\(mode): \(text)")
            #expect(error.contains("api-embed: error: " + message), "\(mode): \(error)")
        }
    }

    @Test("a valid document generates")
    func accepted() throws {
        let text = #"{"module": "t", "handlers": "T", "definitions": [{"command": "a", "data": {"*x": "int"}}]}"#
        #expect(try Self.generate(text, mode: "values").status == 0)
        #expect(try Self.generate(text, mode: "commands").status == 0)
    }
}
