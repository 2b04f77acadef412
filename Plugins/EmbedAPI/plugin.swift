// Compiles the API/ schema into the QMPSchema module, so API/ stays the single source of
// truth and a change to it rebuilds the server.
import PackagePlugin

@main
struct EmbedAPI: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let apiDir = context.package.directoryURL.appending(path: "API")
        let names = ["qmp.json", "css.json", "path-events.json", "vfio.json"]
        let inputs = names.map { apiDir.appending(path: $0) }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedAPI.swift")
        return [
            .buildCommand(
                displayName: "Embedding API schema",
                executable: try context.tool(named: "api-embed").url,
                arguments: [output.path()] + inputs.map { $0.path() },
                inputFiles: inputs,
                outputFiles: [output]
            )
        ]
    }
}
