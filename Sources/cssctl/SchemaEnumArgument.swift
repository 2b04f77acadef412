// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import ArgumentParser
import QMPSchema

/// An option whose values are those of a schema enum (API/*.json, compiled into QMPSchema), so
/// that the client offers exactly what the server accepts and a value added to the schema needs
/// no change here. Help, completion and ArgumentParser's error for another value list the
/// schema's values in schema order, as a `CaseIterable` enum's would.
protocol SchemaEnumArgument: ExpressibleByArgument {
    /// The schema enum's name, e.g. `PathEventGranularity`.
    static var schemaEnum: String { get }
    /// The value as the schema spells it (what goes on the wire).
    var rawValue: String { get }
    init(rawValue: String)
}

extension SchemaEnumArgument {
    /// nil (ArgumentParser's "invalid value" error) for a text that is no value of the enum.
    init?(argument: String) {
        guard Self.allValueStrings.contains(argument) else { return nil }
        self.init(rawValue: argument)
    }

    /// The enum's values in schema order; a name missing from the schema is a build defect.
    static var allValueStrings: [String] { Schema.embedded().enums[schemaEnum]!.values.map(\.name) }

    static var defaultCompletionKind: CompletionKind { .list(allValueStrings) }

    var defaultValueDescription: String { rawValue }
}
