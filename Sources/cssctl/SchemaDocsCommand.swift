// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import ArgumentParser
import QMPSchema

#if canImport(Glibc)
import Glibc
#endif

/// Regenerates the Markdown reference in API/ from the schema compiled into this binary.
struct SchemaDocsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema-docs",
        abstract: "Print the Markdown reference of one schema module (regenerates API/<module>.md).")

    @Option(help: "The schema module, e.g. qmp.")
    var module: String

    @Option(help: "Write to this file instead of standard output.")
    var output: String?

    func run() throws {
        let schema = Schema.embedded()
        guard schema.modules.contains(where: { $0.name == module }) else {
            let known = schema.modules.map(\.name).joined(separator: ", ")
            throw ValidationError("unknown module '\(module)'; the schema has: \(known)")
        }
        let text = schema.markdown(module: module)
        guard let output else {
            print(text, terminator: "")
            return
        }
        // Write the whole text or fail loudly: a truncated API/*.md would fail the docs test anyway.
        guard let file = fopen(output, "w") else {
            printError("cssctl: cannot open \(output): \(String(cString: strerror(errno)))")
            throw Exit.failure
        }
        var bytes = text
        let written = bytes.withUTF8 { fwrite($0.baseAddress, 1, $0.count, file) }
        let closed = fclose(file)
        guard written == text.utf8.count, closed == 0 else {
            printError("cssctl: cannot write \(output): \(String(cString: strerror(errno)))")
            throw Exit.failure
        }
    }
}
