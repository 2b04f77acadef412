// Compiles the API/ schema into the package, so API/ stays the single source of truth, a
// change to it rebuilds what depends on it, and a bad document fails the build (api-embed reads
// and checks it): into QMPSchema the schema as Swift values, into QMPCommands the typed command
// interface generated from them, and into a test target the documents' text (api-embed
// explains all three). Nothing reads the schema text at run time.
import PackagePlugin

@main
struct EmbedAPI: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let apiDir = context.package.directoryURL.appending(path: "API")
        let names = [
            "qmp.json", "css.json", "path-events.json", "vfio.json", "connections.json", "measurement.json",
            "intent.json",
            "impact.json",
            "dasd.json",
            "scenario.json",
        ]
        let inputs = names.map { apiDir.appending(path: $0) }
        let tool = try context.tool(named: "api-embed").url
        switch target.name {
        case "QMPCommands":
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
        case "QMPSchema":
            let output = context.pluginWorkDirectoryURL.appending(path: "SchemaValues.swift")
            return [
                .buildCommand(
                    displayName: "Compiling the API schema into values",
                    executable: tool,
                    arguments: ["values", output.path()] + inputs.map { $0.path() },
                    inputFiles: inputs,
                    outputFiles: [output]
                )
            ]
        default:
            let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedAPIDocuments.swift")
            return [
                .buildCommand(
                    displayName: "Embedding the API schema's text for tests",
                    executable: tool,
                    arguments: ["documents", output.path()] + inputs.map { $0.path() },
                    inputFiles: inputs,
                    outputFiles: [output]
                )
            ]
        }
    }
}
