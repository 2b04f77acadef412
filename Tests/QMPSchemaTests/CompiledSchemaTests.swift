// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Testing

@testable import QMPSchema
@testable import QMPWire

/// The schema compiled in as values (api-embed, at build time) against the reader over the same
/// API/*.json text (embedded into this test target by the same plugin): the generator cannot
/// drift from the rules and the values the reader gives.
@Suite("Compiled schema")
struct CompiledSchemaTests {
    let compiled = Schema.embedded()
    let read = try! Schema(documents: embeddedAPIDocuments.map { ($0.name, $0.text) })

    @Test("every value is the one the reader gives: modules, commands, events, types, members, defaults")
    func sameValues() {
        // The values' descriptions spell out every stored field, nested members included.
        #expect("\(compiled.modules)" == "\(read.modules)")
        #expect(compiled.commands.count == read.commands.count)
        for (mine, theirs) in zip(compiled.commands, read.commands) { #expect("\(mine)" == "\(theirs)") }
        #expect(compiled.events.count == read.events.count)
        for (mine, theirs) in zip(compiled.events, read.events) { #expect("\(mine)" == "\(theirs)") }
        func sorted<T>(_ values: [String: T]) -> [String] {
            values.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
        }
        #expect(sorted(compiled.structs) == sorted(read.structs))
        #expect(sorted(compiled.enums) == sorted(read.enums))
        #expect(sorted(compiled.aliases) == sorted(read.aliases))
        for command in read.commands { #expect(compiled.command(named: command.name)?.name == command.name) }
        // The one default of the schema, as the reader has it.
        let granularity = compiled.command(named: "subscribe-path-events")?.arguments.first { $0.name == "granularity" }
        #expect(granularity?.defaultText == #""chpid""#)
    }

    @Test("introspection and the command list are the same bytes from either")
    func sameReplies() {
        for readOnly in [false, true] {
            let mine = compiled.commands.filter { !readOnly || $0.isReadOnly }
            let theirs = read.commands.filter { !readOnly || $0.isReadOnly }
            #expect(
                compiled.introspect(commands: mine, events: compiled.events).serialized()
                    == read.introspect(commands: theirs, events: read.events).serialized())
        }
        for module in read.modules {
            #expect(compiled.markdown(module: module.name) == read.markdown(module: module.name))
        }
    }
}
