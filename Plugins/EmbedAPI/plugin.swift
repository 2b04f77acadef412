// Compiles the API/ schema into the server, so API/ stays the single source of truth and a
// change to it rebuilds the server: into QMPSchema the documents themselves, into
// QMPCommands the typed command interface generated from them (api-embed explains both).
import PackagePlugin

@main
struct EmbedAPI: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let apiDir = context.package.directoryURL.appending(path: "API")
        let names = ["qmp.json", "css.json", "path-events.json", "vfio.json", "connections.json"]
        let inputs = names.map { apiDir.appending(path: $0) }
        let tool = try context.tool(named: "api-embed").url
        if target.name == "QMPCommands" {
            let output = context.pluginWorkDirectoryURL.appending(path: "SchemaCommands.swift")
            // The generated code names the target's dependencies' types (CSSModel's ids, ...).
            let imports = target.dependencies.compactMap { dependency -> String? in
                if case .target(let module) = dependency { return module.name }
                return nil
            }
            return [
                .buildCommand(
                    displayName: "Generating typed commands from the API schema",
                    executable: tool,
                    arguments: ["commands", output.path()] + imports.flatMap { ["--import", $0] } + ["--"]
                        + inputs.map { $0.path() },
                    inputFiles: inputs,
                    outputFiles: [output]
                )
            ]
        }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedAPI.swift")
        return [
            .buildCommand(
                displayName: "Embedding API schema",
                executable: tool,
                arguments: ["schema", output.path()] + inputs.map { $0.path() },
                inputFiles: inputs,
                outputFiles: [output]
            )
        ]
    }
}
