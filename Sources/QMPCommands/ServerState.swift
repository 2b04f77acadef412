// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import JSONValues
import PathChangePipeline
import PathEvents
import QMPSchema
import QMPWire
import VFIOCCW

/// Options that change which commands exist and what the server reports.
package struct ServerOptions: Sendable {
    /// Version reported in the greeting and by query-version.
    package var version: (major: Int, minor: Int, micro: Int)
    /// The `package` string of the greeting and query-version.
    package var package: String
    /// Conditions (QAPI "if") that are on: e.g. "allow-quit".
    package var conditions: Set<CommandCondition>
    package var limits: WireLimits
    /// Default bound of a path-event subscription's queue (`queue-limit` overrides it).
    package var eventQueueLimit: Int
    /// Most path changes the journal holds for resuming subscribers (`--event-journal`).
    package var eventJournal: Int

    package init(
        version: (major: Int, minor: Int, micro: Int) = CSSDVersion.triple,
        package: String = "cssd \(CSSDVersion.string)",
        conditions: Set<CommandCondition> = [],
        limits: WireLimits = WireLimits(),
        eventQueueLimit: Int = 131_072,
        eventJournal: Int = 65_536
    ) {
        self.eventJournal = eventJournal
        self.version = version
        self.package = package
        self.conditions = conditions
        self.limits = limits
        self.eventQueueLimit = eventQueueLimit
    }
}

package enum CSSDVersion {
    package static let triple = (major: 0, minor: 1, micro: 0)
    package static let string = "0.1.0"
}

/// Server-wide state shared by all connections: schema, handlers, options, and the hooks the
/// network layer installs. Confined to the server's event loop, like everything it holds.
package final class ServerState {
    package let schema: Schema
    package let options: ServerOptions
    package let validator: ArgumentValidator
    /// The commands that exist on this server (schema entries whose condition is on), by name.
    let entries: [String: Entry]
    /// The source of truth the commands act on: the model, or a real machine.
    package let backend: ChannelSubsystemBackend
    /// The backend's current view of the channel subsystem.
    package var subsystem: Subsystem { backend.subsystem }
    /// The path-change pipeline: every source of path changes publishes through it, and the
    /// network layer (and any later consumer) listens to it as a `PathChangeSink`.
    package let pathChanges: PathChangePublisher
    /// Path-event subscriptions of every connection, and their queues (the publisher's).
    package var pathEvents: PathEventHub {
        get { pathChanges.hub }
        _modify { yield &pathChanges.hub }
    }
    /// Guests and their vfio-ccw passthrough devices, over the backend's subsystem (the
    /// publisher's). Changed in place: a guest may hold 65,536 devices.
    package var guests: Guests {
        get { pathChanges.guests }
        _modify { yield &pathChanges.guests }
    }
    /// "Now" for event timestamps, where a command's context fixes no time of its own (tests
    /// may fix it). Never swapped while the server runs: a command that needs a fixed time
    /// carries it in its context (`CommandContext.time`).
    package var clock: () -> EventTime {
        get { pathChanges.clock }
        set { pathChanges.clock = newValue }
    }
    /// The model time the channel-measurement commands pass to the backend (issue 21): the
    /// server's monotonic clock since this state was made; with a state dir that kept the
    /// model's facility, continued from it (`Daemon.restoreMeasurement`). Tests may set it
    /// before calls.
    package var measurementClock: () -> MeasurementTime = {
        let start = ContinuousClock.now
        return { ContinuousClock.now - start }
    }()
    /// The recent path changes, for `subscribe-path-events` with `since`; a sink of
    /// `pathChanges`. Its epoch names this server's history.
    package let journal: PathEventJournal
    /// Where commands that change what cssd owns are made durable (`--state-dir`); nil keeps
    /// nothing, as before.
    package var durability: DurableLog?
    /// Intended chpid states and their drift (linux-sysfs with `--state-dir`, API/intent.md);
    /// nil where intent is not kept (the model, or no state dir).
    package var intents: ChpidIntents?
    /// Called by `quit`; the network layer stops the server after flushing the reply.
    package var onShutdownRequest: ((ShutdownCause) -> Void)?
    /// `quit` succeeded: no session runs another request (one pipelined behind it would run,
    /// maybe be recorded, and never be answered); replies already queued are still written.
    package var quitRequested = false
    /// `query-notify`'s reply while `--notify` publishes path events (the notifier's status);
    /// nil without it.
    package var notifyStatus: (() -> JSON)?
    /// The network layer's open connections (query-connections); none when unset.
    package var connectionReports: (() -> [ConnectionReport])?
    /// Called with an observed backend's directories when a reading it applied found entries
    /// that came or went (the network layer watches them with inotify).
    package var onBackendLayoutChange: (([(path: String, target: ObservationTarget)]) -> Void)?
    private var lastConnectionID = 0
    /// The scenario player (API/scenario.json): one scenario at a time, on the model.
    package private(set) lazy var scenarios = ScenarioPlayer(server: self)

    /// A command of this server and its handler. A class: the dispatcher looks one up per
    /// request, and copying a `Command` out of the dictionary retains each of its fields.
    final class Entry {
        let command: Command
        let handler: CommandHandler
        /// `command.isReadOnly`, which compares the name's prefix, worked out once.
        let isReadOnly: Bool
        /// Whether `handler` checks its arguments itself (`CommandRegistry.checkingArguments`).
        let checksArguments: Bool

        init(command: Command, handler: @escaping CommandHandler, checksArguments: Bool) {
            self.command = command
            self.handler = handler
            self.isReadOnly = command.isReadOnly
            self.checksArguments = checksArguments
        }
    }

    /// The arguments of a command called without any and declaring none; never modified.
    let emptyArguments = JSON.emptyObject()
    /// Path removals whose write is in flight, for the last-path interlock
    /// (Handlers/LastPathInterlock.swift).
    var pathsGoing: [WeakPathGoing] = []

    private var introspectionCache: [Bool: JSON] = [:]
    private var commandListCache: [Bool: JSON] = [:]
    /// query-version's reply (and the greeting's version); a `constant`: dumped once, not per request.
    package private(set) lazy var versionInfo = JSON(
        constant: .object([
            (
                "qemu",
                .object([
                    ("micro", .integer(options.version.micro)),
                    ("minor", .integer(options.version.minor)),
                    ("major", .integer(options.version.major)),
                ])
            ),
            ("package", .string(options.package)),
        ]))

    /// - Parameter backend: what to serve; the model of the embedded default topology when nil.
    package init(
        schema: Schema, registry: CommandRegistry, options: ServerOptions, backend: ChannelSubsystemBackend? = nil,
        guests: Guests = Guests(), journal: PathEventJournal? = nil
    ) throws(SchemaError) {
        let problems = registry.mismatches(with: schema)
        guard problems.isEmpty else { throw SchemaError(problems.joined(separator: "; ")) }
        self.schema = schema
        self.options = options
        self.validator = ArgumentValidator(schema: schema)
        // The embedded topology is validated by a test; failing here would be a build defect.
        self.backend = backend ?? ModelBackend(try! Subsystem(topology: .embeddedDefault))
        let journal = journal ?? PathEventJournal(capacity: options.eventJournal, epoch: Self.newEpoch())
        self.journal = journal
        let source = self.backend
        self.pathChanges = PathChangePublisher(
            guests: guests, lastSequence: journal.newest, hostPassthrough: { source.hostPassthrough })
        pathChanges.register(journal, as: .journal)
        var entries: [String: Entry] = [:]
        for command in schema.commands {
            if let condition = command.condition, !options.conditions.contains(condition) { continue }
            entries[command.name] = Entry(
                command: command, handler: registry.handlers[command.name]!,
                checksArguments: registry.checkingArguments.contains(command.name))
        }
        self.entries = entries
    }

    /// The server with the embedded schema and all standard commands.
    package static func standard(options: ServerOptions = ServerOptions(), subsystem: Subsystem? = nil)
        throws(SchemaError) -> ServerState
    {
        try standard(options: options, backend: subsystem.map { ModelBackend($0) })
    }

    /// The server with the embedded schema and all standard commands, over `backend`.
    package static func standard(
        options: ServerOptions = ServerOptions(), backend: ChannelSubsystemBackend?, guests: Guests = Guests(),
        journal: PathEventJournal? = nil
    ) throws(SchemaError) -> ServerState {
        try ServerState(
            schema: Schema.embedded(), registry: .standard(), options: options, backend: backend, guests: guests,
            journal: journal)
    }

    /// A new epoch: 16 random hex digits (a history nobody can resume into by chance).
    package static func newEpoch() -> String { PathEventJournal.newEpoch() }

    /// Events of changes after this sequence number wait: their changes are not durable yet.
    package var deliverableThrough: UInt64 { durability?.deliverableThrough ?? .max }

    /// A new connection's id (the owner of its path-event subscriptions).
    package func makeConnectionID() -> ConnectionID {
        lastConnectionID += 1
        return ConnectionID(lastConnectionID)
    }

    /// Commands a connection may execute, in schema order.
    package func availableCommands(readOnly: Bool) -> [Command] {
        schema.commands.filter { entries[$0.name] != nil && (!readOnly || $0.isReadOnly) }
    }

    func commandList(readOnly: Bool) -> JSON {
        if let cached = commandListCache[readOnly] { return cached }
        let list = JSON(
            constant: .array(availableCommands(readOnly: readOnly).map { CommandInfoReply(name: $0.name).json }))
        commandListCache[readOnly] = list
        return list
    }

    func introspection(readOnly: Bool) -> JSON {
        if let cached = introspectionCache[readOnly] { return cached }
        let info = JSON(
            constant: schema.introspect(commands: availableCommands(readOnly: readOnly), events: schema.events))
        introspectionCache[readOnly] = info
        return info
    }

    /// The greeting sent on connect.
    package func greeting() -> JSON {
        .object([("QMP", .object([("version", versionInfo), ("capabilities", .array([.string("oob")]))]))])
    }
}
