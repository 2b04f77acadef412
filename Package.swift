// swift-tools-version:6.0
//
// cssd: a QMP control server for the s390 channel subsystem.
// Dependencies run one way: JSON values -> CJansson; wire -> JSON values, NIOCore; schema -> wire;
// commands -> schema;
// server -> commands, NIOPosix; executables -> server. Transport (socket addresses) needs
// only libc: the server and cssctl share it.
import PackageDescription

// Scripts/fuzz.sh sets CSSD_FUZZ=1: our targets get libFuzzer/ASan instrumentation, while
// host tools (the API embedding plugin) and dependencies build normally.
let fuzzing = Context.environment["CSSD_FUZZ"] == "1"
let fuzzFlags: [SwiftSetting] = fuzzing ? [.unsafeFlags(["-sanitize=fuzzer,address"])] : []

let package = Package(
    name: "cssd",
    products: [
        .executable(name: "cssd", targets: ["cssd"]),
        .executable(name: "cssctl", targets: ["cssctl"]),
        .executable(name: "qmp-fuzz", targets: ["QMPFuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        // Verifies TLS clients' chains (X509Credentials.ClientChainVerifier).
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
    ],
    targets: [
        // jansson, the JSON library, through a module map (Debian: libjansson-dev).
        .systemLibrary(
            name: "CJansson",
            pkgConfig: "jansson",
            providers: [.apt(["libjansson-dev"])]
        ),
        // RabbitMQ's C client (rabbitmq-c; Debian: librabbitmq-dev) through a module map. Only
        // PathNotify imports it.
        .systemLibrary(
            name: "CRabbitMQ",
            pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev"])]
        ),
        // Plain JSON values (jansson's, the only target that imports CJansson): building, reading,
        // strict parsing of documents and compact text. Files (topology, authz, outbox), the
        // notifier and the wire all use these.
        .target(name: "JSONValues", dependencies: ["CJansson"], swiftSettings: fuzzFlags),
        // Framing of the incoming byte stream, QEMU's JSON dialect, requests, reply encoding.
        .target(
            name: "QMPWire",
            dependencies: ["JSONValues", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: fuzzFlags
        ),
        // QMP socket addresses (unix:PATH, tcp:HOST:PORT) and connecting to them: shared by
        // the server and cssctl, which must not need NIO for it.
        .target(name: "QMPTransport"),
        // The API/ schema: loading, argument validation, introspection, docs.
        .target(
            name: "QMPSchema",
            dependencies: ["JSONValues", "QMPWire"],
            swiftSettings: fuzzFlags,
            plugins: ["EmbedAPI"]
        ),
        // Topology files: the documented JSON format <-> CSSModel.Topology, with errors that
        // name the line or field.
        .target(
            name: "TopologyFile",
            dependencies: ["CSSModel", "JSONValues"]
        ),
        // The path-change pipeline: the publisher every source of path changes goes through, its
        // sinks (by role, in a documented order), the published change, the durable log and the
        // replay of what it recorded. Below the command layer: the state dir, the notifier and
        // the metrics consume it without importing the commands.
        .target(
            name: "PathChangePipeline",
            dependencies: ["CSSModel", "CSSBackend", "PathEvents", "VFIOCCW"],
            swiftSettings: fuzzFlags
        ),
        // Command registry and handlers; typed arguments and handler protocols generated from API/.
        .target(
            name: "QMPCommands",
            dependencies: [
                "QMPSchema", "QMPWire", "JSONValues", "CSSModel", "PathEvents", "CSSBackend", "VFIOCCW",
                "PathChangePipeline", "ChannelMeasurement", "Scenario",
            ],
            swiftSettings: fuzzFlags,
            plugins: ["EmbedAPI"]
        ),
        // TLS credentials in QEMU's tls-creds-x509 layout for either endpoint (the server's, and
        // cssctl's client directory) and the TLS contexts made from them; what the server checks
        // with them: client chains, CRLs, client-certificate DNs as QEMU writes them.
        .target(
            name: "X509Credentials",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        // Transport security shared by every server endpoint (QMP, metrics): the TLS admission
        // gate, credential and policy reloads, QEMU's authz-list-file policies.
        .target(
            name: "ServerSecurity",
            dependencies: [
                "X509Credentials", "JSONValues",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ]
        ),
        // Signals caught from the first instruction of the process (a constructor), delivered
        // through a pipe: SIGTERM/SIGINT/SIGHUP are never lost nor fatal during start-up.
        .target(name: "CProcessSignals"),
        // QMP sessions and the network server.
        .target(
            name: "QMPServer",
            dependencies: [
                "QMPCommands", "QMPWire", "JSONValues", "QMPTransport", "PathEvents", "CSSModel", "CSSBackend",
                "VFIOCCW", "ServerSecurity", "X509Credentials", "PathChangePipeline", "ChannelMeasurement",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: fuzzFlags
        ),
        // The Prometheus endpoint: scrape-time collection from the server state, the HTTP/1
        // listener (NIOHTTP1, over TLS with ServerSecurity's gate and credentials when --tls-creds) and the
        // exposition (swift-prometheus; OpenMetrics framing on top).
        // swift-prometheus' registry is used directly, not through swift-metrics (its dependency,
        // 2.13.0 here): swift-metrics' API has no help text, and a family without one fails
        // `promtool check metrics` ("no help text").
        .target(
            name: "MetricsExporter",
            dependencies: [
                "QMPServer", "QMPSchema", "QMPWire", "CSSModel", "CSSBackend", "PathEvents", "VFIOCCW",
                "PathChangePipeline", "ServerSecurity", "X509Credentials", "ChannelMeasurement", "JSONValues",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // --notify: path changes as oslo.messaging notifications on RabbitMQ, from a thread of
        // its own with a bounded outbox.
        .target(
            name: "PathNotify",
            dependencies: [
                "CRabbitMQ", "PathChangePipeline", "JSONValues", "PathEvents", "CSSModel", "VFIOCCW", "SQLiteFiles",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // cssd assembled from a typed configuration, in one documented order, its long-lived
        // parts run as a ServiceGroup (Daemon).
        .target(
            name: "DaemonRuntime",
            dependencies: [
                "MetricsExporter", "QMPServer", "QMPCommands", "PathNotify", "TopologyFile", "CSSModel", "CSSBackend",
                "LinuxSysfs", "VFIOCCW", "StateStore", "PathEvents", "ServerSecurity", "ChannelMeasurement",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The executable: flags -> DaemonConfiguration -> Daemon.
        .executableTarget(
            name: "cssd",
            dependencies: [
                "DaemonRuntime", "CProcessSignals", "QMPServer", "QMPCommands", "QMPWire", "PathNotify", "StateStore",
                "CSSBackend",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // s390-tools' chpstat over any source of measurement data (cssctl chpstat: a cssd socket):
        // options, tables, JSON/pairs/CSV byte for byte as chpstat v2.43.0 prints them.
        .target(name: "ChpstatView", dependencies: ["ChannelMeasurement"]),
        .executableTarget(
            name: "cssctl",
            dependencies: [
                "QMPWire", "JSONValues", "QMPSchema", "QMPTransport", "TopologyFile", "CSSModel", "ChpstatView", "Scenario",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                "X509Credentials",
            ]
        ),
        // The fuzz harness and its invariants, shared by the fuzzer and the tests.
        .target(
            name: "QMPFuzzSupport",
            dependencies: [
                "QMPServer", "QMPCommands", "QMPWire", "JSONValues", "CSSBackend", "CSSModel", "VFIOCCW",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: fuzzFlags
        ),
        // libFuzzer entry point over framing + parsing + dispatch; see Scripts/fuzz.sh.
        .executableTarget(
            name: "QMPFuzz",
            dependencies: ["QMPFuzzSupport"],
            swiftSettings: fuzzing ? [.unsafeFlags(["-sanitize=fuzzer,address"]), .define("FUZZING")] : [],
            linkerSettings: fuzzing ? [.unsafeFlags(["-sanitize=fuzzer,address", "-use-ld=lld"])] : []
        ),
        // --state-dir: what cssd owns, kept in SQLite (WAL) so it survives a crash and a restart.
        .target(
            name: "StateStore",
            dependencies: [
                "PathChangePipeline", "QMPSchema", "CSSModel", "CSSBackend", "PathEvents", "VFIOCCW", "SQLiteFiles",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // cssd's own SQLite files (the state, the outbox): checked read-only, then WAL.
        .target(
            name: "SQLiteFiles",
            dependencies: [
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .target(name: "CSSModel", swiftSettings: fuzzFlags),
        // Failure scenarios (issue 26), pure: the file format, its checks with line and column,
        // the timeline with loops unrolled.
        .target(name: "Scenario", dependencies: ["CSSModel"]),
        // The interface between commands and the source of truth, and the model as one.
        .target(name: "CSSBackend", dependencies: ["CSSModel", "ChannelMeasurement"], swiftSettings: fuzzFlags),
        // The channel-measurement facility (chpstat's data, issue 21), pure: CMCB/CUE layouts,
        // chpstat's formulas per CMG, 64-bit running totals, the interval tracker, the model.
        .target(name: "ChannelMeasurement", dependencies: ["CSSModel"], swiftSettings: fuzzFlags),
        // Guests and vfio-ccw passthrough on top of the host model (pure).
        .target(name: "VFIOCCW", dependencies: ["CSSModel"], swiftSettings: fuzzFlags),
        // A real machine through Linux sysfs, as a backend.
        .target(name: "LinuxSysfs", dependencies: ["CSSBackend", "CSSModel", "ChannelMeasurement"]),
        // Path-event subscriptions: filters, fan-out, bounded coalescing queues (pure).
        // It queues VFIOCCW's guest changes as they are (GUEST_PATH_CHANGED): both are pure.
        .target(name: "PathEvents", dependencies: ["CSSModel", "VFIOCCW"], swiftSettings: fuzzFlags),
        // Build-time tool: reads and checks API/*.json and turns it into Swift: the schema as
        // values (QMPSchema), the typed command interface (QMPCommands), the text (tests).
        .executableTarget(name: "api-embed"),
        .plugin(name: "EmbedAPI", capability: .buildTool(), dependencies: ["api-embed"]),
        // What the Swift test targets share: temporary directories, sysfs trees, paths in the
        // checkout, ID parsing. Not a test target itself; only test targets depend on it.
        .target(name: "TestSupport", dependencies: ["CSSModel"], path: "Tests/TestSupport"),
        .testTarget(
            name: "QMPWireTests",
            dependencies: [
                "QMPWire", "JSONValues", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "TopologyFileTests", dependencies: ["TestSupport", "TopologyFile", "CSSModel", "JSONValues"]),
        .testTarget(name: "QMPTransportTests", dependencies: ["TestSupport", "QMPTransport"]),
        // The plugin embeds API/*.json's text here: a test checks the compiled schema against it.
        .testTarget(
            name: "QMPSchemaTests", dependencies: ["TestSupport", "QMPSchema", "QMPWire", "JSONValues"],
            plugins: ["EmbedAPI"]),
        .testTarget(
            name: "QMPCommandsTests",
            dependencies: [
                "QMPCommands", "QMPSchema", "QMPWire", "JSONValues", "CSSModel", "PathEvents", "VFIOCCW",
                "PathChangePipeline", "CSSBackend", "ChannelMeasurement", "Scenario",
            ]
        ),
        .testTarget(name: "CSSModelTests", dependencies: ["CSSModel"]),
        .testTarget(name: "ScenarioTests", dependencies: ["Scenario", "CSSModel", "TopologyFile", "TestSupport"]),
        .testTarget(name: "ChannelMeasurementTests", dependencies: ["ChannelMeasurement", "CSSModel", "TestSupport"]),
        .testTarget(
            name: "MetricsExporterTests",
            dependencies: [
                "MetricsExporter", "QMPCommands", "CSSModel", "PathEvents", "VFIOCCW", "ServerSecurity",
                "PathChangePipeline",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "PathEventsTests", dependencies: ["TestSupport", "PathEvents", "CSSModel"]),
        .testTarget(
            name: "PathNotifyTests",
            dependencies: [
                "TestSupport", "PathNotify", "PathChangePipeline", "QMPCommands", "JSONValues", "PathEvents",
                "CSSModel",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "ServerSecurityTests",
            dependencies: [
                "TestSupport", "ServerSecurity", "X509Credentials", .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "DaemonRuntimeTests",
            dependencies: [
                "DaemonRuntime", "QMPServer", "QMPTransport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "VFIOCCWTests", dependencies: ["TestSupport", "VFIOCCW", "CSSModel"]),
        // Against chpstat v2.43.0's own output (Tests/fixtures/chpstat/golden).
        .testTarget(name: "ChpstatViewTests", dependencies: ["ChpstatView", "TestSupport"]),
        .testTarget(
            name: "StateStoreTests",
            dependencies: [
                "StateStore", "QMPCommands", "QMPSchema", "QMPWire", "JSONValues", "CSSModel", "CSSBackend",
                "PathEvents",
                "VFIOCCW", "TestSupport", "PathChangePipeline",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "LinuxSysfsTests",
            dependencies: ["LinuxSysfs", "CSSBackend", "CSSModel", "ChannelMeasurement", "PathEvents", "TestSupport"]
        ),
        .testTarget(
            name: "QMPServerTests",
            dependencies: [
                "QMPServer", "QMPWire", "JSONValues", "QMPSchema", "QMPTransport", "QMPCommands", "QMPFuzzSupport",
                "CSSModel", "PathEvents", "VFIOCCW", "CSSBackend", "LinuxSysfs", "PathChangePipeline", "StateStore",
                "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)
