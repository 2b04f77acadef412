// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

extension Schema {
    /// Markdown reference for one module, generated from the schema.
    ///
    /// API/<module>.md is this text; a test fails when the committed file differs, and
    /// `cssctl schema-docs --module NAME` regenerates it.
    package func markdown(module: String) -> String {
        var out =
            "<!-- Generated from API/\(module).json by `cssctl schema-docs --module \(module)`. Do not edit. -->\n"
        out += "# QMP reference: \(module)\n\n"
        if let doc = modules.first(where: { $0.name == module })?.doc, !doc.isEmpty { out += doc + "\n\n" }
        let moduleCommands = commands.filter { $0.module == module }
        let moduleEvents = events.filter { $0.module == module }
        if !moduleCommands.isEmpty {
            out += "## Commands\n\n"
            for command in moduleCommands {
                out += "### `\(command.name)`\n\n\(command.doc)\n\n"
                var notes: [String] = []
                if command.allowOOB { notes.append("may be sent with `exec-oob`") }
                if command.negotiation { notes.append("accepted during capabilities negotiation") }
                if command.isReadOnly { notes.append("allowed on read-only connections") }
                if let condition = command.condition { notes.append("exists only with `--\(condition.rawValue)`") }
                switch command.changes {
                case .subsystem?:
                    notes.append(
                        "changes the channel subsystem: recorded for replay with `--state-dir` on the model (API/resume.md)"
                    )
                case .guests?: notes.append("changes guests: recorded for replay with `--state-dir` (API/resume.md)")
                case .measurement?:
                    notes.append(
                        "changes the channel-measurement facility: its state is recorded with `--state-dir` on the "
                            + "model (API/resume.md)")
                case nil: break
                }
                if !notes.isEmpty { out += "_" + notes.joined(separator: "; ") + "._\n\n" }
                out += membersTable("Arguments", command.arguments)
                out += "Returns: " + (command.returns.map { "`\($0)`" } ?? "`{}`") + "\n\n"
            }
        }
        if !moduleEvents.isEmpty {
            out += "## Events\n\n"
            for event in moduleEvents {
                out += "### `\(event.name)`\n\n\(event.doc)\n\n"
                out += membersTable("Data", event.data)
            }
        }
        let types = referencedTypes(of: moduleCommands, moduleEvents)
        if !types.isEmpty {
            out += "## Types\n\n"
            for name in types {
                if let value = structs[name] {
                    out += "### `\(name)` (object)\n\n\(value.doc)\n\n"
                    out += membersTable("Members", value.members)
                } else if let value = aliases[name] {
                    out += "### `\(name)` (`\(value.base)`)\n\n\(value.doc)\n\n"
                } else if let value = enums[name] {
                    out += "### `\(name)` (enum)\n\n\(value.doc)\n\n| value | meaning |\n|---|---|\n"
                    for item in value.values { out += "| `\(item.name)` | \(item.doc) |\n" }
                    out += "\n"
                }
            }
        }
        return out
    }

    private func membersTable(_ title: String, _ members: [Member]) -> String {
        guard !members.isEmpty else { return "\(title): none.\n\n" }
        var out = "\(title):\n\n| name | type | required | default | meaning |\n|---|---|---|---|---|\n"
        for member in members {
            let doc = member.doc.replacingPipes()
            out += "| `\(member.name)` | `\(member.type)` | \(member.optional ? "no" : "yes") | "
            out += (member.defaultText.map { "`\($0)`" } ?? "") + " | \(doc) |\n"
        }
        return out + "\n"
    }

    /// Named types used by these commands and events, in order of first use.
    private func referencedTypes(of commands: [Command], _ events: [Event]) -> [String] {
        var order: [String] = []
        var seen: Set<String> = []
        func visit(_ type: TypeRef) {
            switch type {
            case .builtin: return
            case .array(let element): visit(element)
            case .named(let name):
                guard seen.insert(name).inserted else { return }
                order.append(name)
                for member in structs[name]?.members ?? [] { visit(member.type) }
            }
        }
        for command in commands {
            for argument in command.arguments { visit(argument.type) }
            command.returns.map(visit)
        }
        for event in events {
            for member in event.data { visit(member.type) }
        }
        return order
    }
}

extension String {
    fileprivate func replacingPipes() -> String {
        var out = ""
        for character in self { out += character == "|" ? "\\|" : String(character) }
        return out
    }
}
