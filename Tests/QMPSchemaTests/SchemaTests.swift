// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Foundation
import JSONValues
import TestSupport
import Testing

@testable import QMPSchema

private let testSchemaText = #"""
    {
      "module": "test",
      "definitions": [
        { "enum": "Color", "data": ["red", { "name": "green", "doc": "g" }] },
        { "struct": "Inner", "data": { "level": "uint8", "*tags": ["str"] } },
        { "command": "paint", "doc": "Paint.",
          "data": { "color": "Color", "*count": { "type": "int", "default": 3 }, "*inner": "Inner",
                    "*colors": ["Color"], "*ratio": "number", "*flag": "bool", "*small": "int8", "*any": "any" },
          "returns": "Inner" }
      ]
    }
    """#

private func validate(_ arguments: String) -> String? {
    let schema = try! Schema(documents: [("test.json", testSchemaText)])
    let validator = ArgumentValidator(schema: schema)
    let object = JSON.parse(arguments)!
    do {
        try validator.validate(arguments: object, members: schema.command(named: "paint")!.arguments)
        return nil
    } catch {
        return error.desc
    }
}

@Suite("Schema")
struct SchemaTests {
    @Test("the embedded API/ schema loads and holds the QMP core")
    func embedded() throws {
        let schema = Schema.embedded()
        // As in QEMU 7.2, no core command may be sent with exec-oob.
        #expect(schema.commands.allSatisfy { !$0.allowOOB })
        #expect(schema.command(named: "qmp_capabilities")?.negotiation == true)
        #expect(schema.command(named: "quit")?.condition?.rawValue == "allow-quit")
        #expect(schema.command(named: "query-version")?.returns == .named("VersionInfo"))
        #expect(schema.events.map(\.name).contains("SHUTDOWN"))
    }

    @Test(
        "arguments are checked in QEMU's order with QEMU's texts",
        arguments: [
            (#"{}"#, "Parameter 'color' is missing"),
            (#"{"color": 1}"#, "Invalid parameter type for 'color', expected: string"),
            (#"{"color": "blue"}"#, "Parameter 'color' does not accept value 'blue'"),
            (#"{"color": "red", "count": "x"}"#, "Invalid parameter type for 'count', expected: integer"),
            (#"{"color": "red", "count": 1.5}"#, "Invalid parameter type for 'count', expected: integer"),
            (#"{"color": "red", "inner": []}"#, "Invalid parameter type for 'inner', expected: object"),
            (#"{"color": "red", "inner": {}}"#, "Parameter 'inner.level' is missing"),
            (#"{"color": "red", "inner": {"level": 256}}"#, "Parameter 'level' expects uint8"),
            (
                #"{"color": "red", "inner": {"level": 1, "tags": [1]}}"#,
                "Invalid parameter type for 'inner.tags[0]', expected: string"
            ),
            (#"{"color": "red", "inner": {"level": 1, "x": 1}}"#, "Parameter 'inner.x' is unexpected"),
            (#"{"color": "red", "colors": "red"}"#, "Invalid parameter type for 'colors', expected: array"),
            (#"{"color": "red", "colors": ["red", "pink"]}"#, "Parameter 'null' does not accept value 'pink'"),
            (#"{"color": "red", "ratio": "1"}"#, "Invalid parameter type for 'ratio', expected: number"),
            (#"{"color": "red", "flag": 1}"#, "Invalid parameter type for 'flag', expected: boolean"),
            (#"{"color": "red", "small": -129}"#, "Parameter 'small' expects int8"),
            (#"{"color": "red", "extra": 1}"#, "Parameter 'extra' is unexpected"),
            // Declared members are checked before unexpected ones, whatever the order.
            (#"{"extra": 1, "color": 2}"#, "Invalid parameter type for 'color', expected: string"),
        ])
    func validation(arguments: String, expected: String) {
        #expect(validate(arguments) == expected)
    }

    @Test("valid arguments pass and absent members take their defaults")
    func defaults() throws {
        let schema = try Schema(documents: [("test.json", testSchemaText)])
        let object = JSON.parse(#"{"color": "green", "ratio": 2, "any": {"x": [null]}, "inner": {"level": 255}}"#)!
        try ArgumentValidator(schema: schema).validate(
            arguments: object, members: schema.command(named: "paint")!.arguments)
        #expect(object["count"]?.intValue == 3)
        #expect(object["flag"] == nil)
    }

    @Test("which unexpected key QEMU names: glib hash order")
    func unexpectedKeyOrder() {
        #expect(QEMUVisitorOrder.firstUnexpected(keys: ["a", "b"], declared: []) == "b")
        #expect(QEMUVisitorOrder.firstUnexpected(keys: ["b", "a"], declared: []) == "b")
        #expect(QEMUVisitorOrder.firstUnexpected(keys: ["x", "yy", "zzz"], declared: []) == "zzz")
    }

    @Test(
        "malformed schema documents are refused with the place named",
        arguments: [
            (#"{"definitions": [{"command": "a", "data": {"x": "Nope"}}]}"#, "unknown type 'Nope'"),
            (#"{"definitions": [{"command": "a"}, {"command": "a"}]}"#, "'a' is defined twice"),
            (#"{"definitions": [{"command": "a", "bogus": 1}]}"#, "unknown key 'bogus'"),
            (#"{"definitions": [{"enum": "E", "data": []}]}"#, "non-empty"),
            (#"{"definitions": [{"command": "a", "data": {"x": {"type": "int", "default": 1}}}]}"#, "not optional"),
            (#"{"definitions": [{"thing": "a"}]}"#, "needs one of"),
            (#"{"definitions": [{"command": "a", "changes": "host"}]}"#, #""changes" is 'subsystem' or 'guests'"#),
            (#"{"definitions": [{"command": "a", "changes": true}]}"#, #""changes" is 'subsystem' or 'guests'"#),
            (#"{"definitions": [{"command": "a", "if": "debug"}]}"#, #""if" is 'allow-quit'"#),
            (#"[1]"#, "not a JSON object"),
        ])
    func schemaErrors(text: String, fragment: String) {
        do {
            _ = try Schema(documents: [("bad.json", text)])
            Issue.record("accepted a bad schema")
        } catch {
            #expect(error.description.contains(fragment), "\(error.description)")
            #expect(error.description.hasPrefix("bad.json"))
        }
    }

    @Test("\"changes\" says what a command changes and is not introspected (QEMU has no such key)")
    func changes() throws {
        let text = #"{"definitions": [{"command": "x", "changes": "guests"}, {"command": "y"}]}"#
        let marked = try Schema(documents: [("t.json", text)])
        #expect(marked.command(named: "x")?.changes == .guests)
        #expect(marked.command(named: "y")?.changes == nil)
        let plain = try Schema(documents: [("t.json", #"{"definitions": [{"command": "x"}, {"command": "y"}]}"#)])
        let info = marked.introspect(commands: marked.commands, events: [])
        #expect(info.serialized() == plain.introspect(commands: plain.commands, events: []).serialized())
        let schema = Schema.embedded()
        #expect(schema.command(named: "vary-path")?.changes == .subsystem)
        #expect(schema.command(named: "guest-store-subchannel")?.changes == .guests)
        #expect(schema.command(named: "store-subchannel")?.changes == nil)
        // The embedded schema with every mark removed introspects to the same bytes: what
        // query-qmp-schema sends did not change when the marks came.
        let unmarked = try Schema(
            documents: embeddedAPIDocuments.map { document in
                let lines = document.text.split(separator: "\n", omittingEmptySubsequences: false)
                return (document.name, lines.filter { !$0.contains(#""changes": ""#) }.joined(separator: "\n"))
            })
        #expect(unmarked.commands.allSatisfy { $0.changes == nil })
        #expect(
            schema.introspect(commands: schema.commands, events: schema.events).serialized()
                == unmarked.introspect(commands: unmarked.commands, events: unmarked.events).serialized())
    }

    @Test("introspection has QEMU's SchemaInfo shape")
    func introspection() throws {
        let schema = Schema.embedded()
        let info = schema.introspect(commands: schema.commands, events: schema.events)
        let entities = info.elements
        let byName = Dictionary(entities.map { ($0["name"]!.stringValue!, $0) }, uniquingKeysWith: { a, _ in a })
        let version = try #require(byName["query-version"])
        #expect(version["meta-type"]?.stringValue == "command")
        #expect(version["allow-oob"] == nil)
        #expect(byName["qmp_capabilities"]?["allow-oob"] == nil)
        // allow-oob appears, true, on commands that allow it.
        let oobSchema = try Schema(documents: [("t.json", #"{"definitions": [{"command": "x", "allow-oob": true}]}"#)])
        let oobInfo = oobSchema.introspect(commands: oobSchema.commands, events: [])
        #expect(oobInfo.elements.first { $0["name"]?.stringValue == "x" }?["allow-oob"]?.boolValue == true)
        // Every type a command or member names is described, and non-builtin names are masked.
        let ret = try #require(version["ret-type"]?.stringValue)
        #expect(Int(ret) != nil)
        #expect(byName[ret]?["meta-type"]?.stringValue == "object")
        #expect(byName["VersionInfo"] == nil)
        for entity in entities {
            for key in ["arg-type", "ret-type", "element-type"] {
                if let name = entity[key]?.stringValue { #expect(byName[name] != nil, "\(key) \(name)") }
            }
            for member in entity["members"]?.elements ?? [] {
                if let type = member["type"]?.stringValue { #expect(byName[type] != nil, "member type \(type)") }
            }
        }
        #expect(byName["SHUTDOWN"]?["meta-type"]?.stringValue == "event")
        #expect(byName["str"]?["json-type"]?.stringValue == "string")
    }

    @Test("API/*.md is what the schema generates (regenerate: CSSD_UPDATE_DOCS=1 swift test --filter docsInSync)")
    func docsInSync() throws {
        let root = URL(fileURLWithPath: Repository.root)
        let schema = Schema.embedded()
        for module in schema.modules {
            let path = root.appendingPathComponent("API/\(module.name).md")
            if ProcessInfo.processInfo.environment["CSSD_UPDATE_DOCS"] == "1" {
                try schema.markdown(module: module.name).write(to: path, atomically: true, encoding: .utf8)
            }
            let committed = try String(contentsOf: path, encoding: .utf8)
            #expect(committed == schema.markdown(module: module.name), "API/\(module.name).md is stale")
        }
    }
}
