// swift-tools-version:6.0
//
// cssd: the vfio-ccw path-event benchmark (API/vfio-ccw.md), apart from the main package so that
// the main build stays free of benchmark code. Sources/CSSModel and Sources/VFIOCCW are
// symlinks to the model's sources, as in Benchmarks/CSSModelBench.
import PackageDescription

let package = Package(
    name: "VFIOBench",
    targets: [
        .target(name: "CSSModel"),
        .target(name: "VFIOCCW", dependencies: ["CSSModel"]),
        .executableTarget(name: "vfio-bench", dependencies: ["CSSModel", "VFIOCCW"]),
    ]
)
