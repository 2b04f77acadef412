// swift-tools-version:6.0
//
// cssd: benchmarks for the channel subsystem model, apart from the main package so that the
// main build stays free of benchmark code. Sources/CSSModel is a symlink to the model's sources.
import PackageDescription

let package = Package(
    name: "CSSModelBench",
    targets: [
        .target(name: "CSSModel"),
        .executableTarget(name: "cssmodel-bench", dependencies: ["CSSModel"]),
        .executableTarget(name: "impact-bench", dependencies: ["CSSModel"]),
    ]
)
