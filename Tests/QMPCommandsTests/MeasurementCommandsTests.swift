// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import ChannelMeasurement
import JSONValues
import PathChangePipeline
import PathEvents
import Testing

@testable import QMPCommands
@testable import QMPSchema
@testable import QMPWire

/// The channel-measurement commands (API/measurement.json) through the dispatcher, over the
/// model of the embedded topology, with the model time set by the test.
@Suite struct MeasurementCommandsTests {
    private final class Session: SessionControl {
        var isNegotiated: Bool { true }
        var isReadOnly: Bool { false }
        var origin: CommandOrigin { .connection(1) }
        func enterCommandMode(oob: Bool) {}
    }

    final class Clock: @unchecked Sendable {
        var now: Duration = .zero
    }

    static func server(backend: ChannelSubsystemBackend? = nil) throws -> (ServerState, Clock) {
        let server = try ServerState(
            schema: Schema.embedded(), registry: CommandRegistry.standard(), options: ServerOptions(),
            backend: backend, journal: PathEventJournal(capacity: 16, epoch: "00000000000000aa"))
        let clock = Clock()
        server.measurementClock = { clock.now }
        return (server, clock)
    }

    /// The reply as a JSON value, or the error as "Class: text".
    static func run(_ server: ServerState, _ command: String, _ arguments: String = "{}") throws -> Result<
        JSON, QMPError
    > {
        let request = try #require(JSON.parse(#"{"execute": "\#(command)", "arguments": \#(arguments)}"#))
        guard case .success(let checked) = QMPRequest.check(request, oobEnabled: false) else {
            throw QMPError.generic("bad request")
        }
        switch Dispatcher.dispatch(checked, server: server, session: Session()) {
        case .success(.reply(let value)): return .success(value)
        case .success(.deferred(let work)): return work.runInline()
        case .failure(let error): return .failure(error)
        }
    }

    static func reply(_ server: ServerState, _ command: String, _ arguments: String = "{}") throws -> JSON {
        try run(server, command, arguments).get()
    }

    static func path(_ reply: JSON, _ chpid: String) throws -> JSON {
        let paths = try #require(reply["channel-paths"])
        for index in 0..<paths.count where paths[index]?["chpid"]?.stringValue == chpid {
            return paths[index]!
        }
        throw QMPError.generic("no \(chpid) in \(reply.serialized())")
    }

    @Test func offAtStartThenLoadedPathsShowTheirLoad() throws {
        let (server, clock) = try Self.server()
        var reply = try Self.reply(server, "query-chpid-measurements")
        #expect(reply["state"]?.stringValue == "disabled")
        var ficon = try Self.path(reply, "0.40")
        #expect(ficon["cmg"]?.intValue == 2)
        #expect(ficon["available"]?.boolValue == false)
        #expect(ficon["reason"]?.stringValue == "facility-disabled")
        // virtio has no CMG (sysfs "unknown"): no cmg member.
        let virtio = try Self.path(reply, "fe.00")
        #expect(virtio["cmg"] == nil)
        #expect(virtio["reason"]?.stringValue == "no-cmg")

        let load = try Self.reply(
            server, "set-chpid-load",
            #"{"chpid": "0.40", "load": {"util_part": 40, "util_total": 60, "read_total": 1e9}}"#)
        #expect(
            load.serialized()
                == #"{"chpid": "0.40", "cmg": 2, "load": {"read_total": 1000000000.0, "util_part": 40.0, "util_total": 60.0}}"#
        )
        #expect(
            try Self.reply(server, "set-channel-measurement", #"{"enabled": true}"#).serialized()
                == #"{"state": "enabled"}"#)

        clock.now = .seconds(10)
        reply = try Self.reply(server, "query-chpid-measurements", #"{"chpids": ["0.40"]}"#)
        #expect(reply["channel-paths"]?.count == 1)
        ficon = try Self.path(reply, "0.40")
        #expect(ficon["reason"]?.stringValue == "first-sample")
        clock.now = .seconds(70)
        reply = try Self.reply(server, "query-chpid-measurements", #"{"chpids": ["0.40"]}"#)
        ficon = try Self.path(reply, "0.40")
        #expect(ficon["available"]?.boolValue == true)
        #expect(ficon["reason"] == nil)
        #expect(ficon["samples"]?.intValue == 2)
        #expect(ficon["speed-bps"]?.intValue == 32_000_000_000)
        let metrics = try #require(ficon["metrics"])
        #expect(abs((metrics["util_part"]?.doubleValue ?? 0) - 40) < 1e-6)
        #expect(abs((metrics["util_total"]?.doubleValue ?? 0) - 60) < 1e-6)
        #expect(abs((metrics["read_total"]?.doubleValue ?? 0) - 1e9) < 1e3)
        #expect(abs((metrics["interval"]?.doubleValue ?? 0) - 60) < 1e-6)
        #expect(metrics["util_bus"]?.doubleValue == 0)
        // 4,000,000 work units/s at 40 % for 70 s (the load was set at time 0).
        #expect(ficon["totals"]?["channel_work_units"]?.intValue == 112_000_000)
        #expect(ficon["utilization"]?["channel_work_units"]?.intValue == 112_000_000)
        #expect(ficon["utilization"]?["timestamp"]?.intValue == 546_875)  // 70 s in 128 µs units
        #expect(ficon["characteristics"]?["max_channel_work_units"]?.intValue == 4_000_000)
        #expect(ficon["blocks"]?["cue"]?.stringValue?.count == 64)
        #expect(ficon["blocks"]?["cue"]?.stringValue?.hasPrefix("ff08583b") == true)
        #expect(ficon["blocks"]?["ext-cue"]?.stringValue?.count == 128)
        #expect(ficon["blocks"]?["cmcb-full"]?.boolValue == true)
        #expect(
            ficon["blocks"]?["cmcb"]?.stringValue
                == "60000040f8090002000000200" + "04c4b40003d0900000ee6b2000ee6b200001000")
    }

    /// The model of the embedded topology, the facility enabled, 0.41's bus at 100 % (5,000,000
    /// cycles/s) from model time 0, and a first query then.
    static func busAtFullLoad() throws -> (ModelBackend, ServerState, Clock) {
        let backend = ModelBackend(try Subsystem(topology: .embeddedDefault))
        let (server, clock) = try Self.server(backend: backend)
        _ = try Self.reply(server, "set-channel-measurement", #"{"enabled": true}"#)
        _ = try Self.reply(server, "set-chpid-load", #"{"chpid": "0.41", "load": {"util_bus": 100}}"#)
        _ = try Self.reply(server, "query-chpid-measurements")
        return (backend, server, clock)
    }

    /// Queries an hour apart: the model feeds its tracker the readings in between, so the
    /// bus-cycle counter's many 32-bit wraps are all counted and the interval is known.
    @Test func rareQueriesStillCountEveryWrap() throws {
        let (backend, server, clock) = try Self.busAtFullLoad()
        clock.now = .seconds(3600)
        let ficon = try Self.path(try Self.reply(server, "query-chpid-measurements"), "0.41")
        #expect(ficon["available"]?.boolValue == true, "\(ficon.serialized())")
        // 5,000,000 bus cycles/s for 3600 s: 1.8e10, past 2^32 four times.
        let exact = backend.measurement.exactCounts(ChannelPathID(cssid: 0, chpid: 0x41), at: .seconds(3600))
        #expect(exact["bus_cycles_cpc"] == 18_000_000_000)
        #expect(ficon["totals"]?["bus_cycles_cpc"]?.intValue == 18_000_000_000)
        #expect(abs((ficon["metrics"]?["util_bus"]?.doubleValue ?? 0) - 100) < 1e-6)
    }

    /// A restart with the state dir: a new backend takes the saved facility, and the model
    /// clock continues from the saved time. Its first report's totals and measurement clock
    /// (the interval counter's ticks) are not below the last ones served: they are the model's
    /// exact counts, not the 32-bit words (5,000,000 bus cycles/s for 1000 s is 5e9, past 2^32,
    /// whose word alone would start a total at 705,032,704).
    @Test func aRestoredFacilityContinuesItsTotals() throws {
        let (backend, server, clock) = try Self.busAtFullLoad()
        clock.now = .seconds(1000)
        let before = try Self.path(try Self.reply(server, "query-chpid-measurements"), "0.41")
        let served = try #require(before["totals"]?["bus_cycles_cpc"]?.intValue)
        #expect(served == 5_000_000_000)
        let ticks = try #require(backend.channelMeasurements(nil, at: .seconds(1000)).first { $0.chpid.chpid == 0x41 })
            .timestampTicks
        let saved = backend.measurement.savedState(at: .seconds(1000))

        let restarted = ModelBackend(try Subsystem(topology: .embeddedDefault))
        #expect(try restarted.restoreMeasurement(saved) == .seconds(1000))
        let (again, laterClock) = try Self.server(backend: restarted)
        laterClock.now = .seconds(1001)
        let after = try Self.path(try Self.reply(again, "query-chpid-measurements"), "0.41")
        #expect(after["totals"]?["bus_cycles_cpc"]?.intValue == served, "\(after.serialized())")
        let report = try #require(
            restarted.channelMeasurements(nil, at: .seconds(1001)).first { $0.chpid.chpid == 0x41 })
        #expect(report.timestampTicks == ticks && ticks == 1000 * 7812 + 1000 / 2)
        laterClock.now = .seconds(1003)
        let next = try Self.path(try Self.reply(again, "query-chpid-measurements"), "0.41")
        #expect(next["totals"]?["bus_cycles_cpc"]?.intValue == 5_010_000_000)
        #expect(abs((next["metrics"]?["util_bus"]?.doubleValue ?? 0) - 100) < 1e-6)
    }

    /// A server up for three days, queried at start and then not again: the gap is longer
    /// than the tracker is fed in steps for (64 × 200 s), and the running totals must still
    /// hold every wrap (5,000,000 bus cycles/s for 259,200 s: 1.296e12, 301 wraps of 2^32).
    /// They used to lose the wraps of the jump over the first 246,600 s.
    @Test func aQueryAfterDaysStillCountsEveryWrap() throws {
        let (backend, server, clock) = try Self.busAtFullLoad()
        clock.now = .seconds(3 * 86400)
        let ficon = try Self.path(try Self.reply(server, "query-chpid-measurements"), "0.41")
        #expect(ficon["available"]?.boolValue == true, "\(ficon.serialized())")
        let exact = backend.measurement.exactCounts(ChannelPathID(cssid: 0, chpid: 0x41), at: .seconds(3 * 86400))
        #expect(exact["bus_cycles_cpc"] == 1_296_000_000_000)
        #expect(ficon["totals"]?["bus_cycles_cpc"]?.intValue == 1_296_000_000_000)
        #expect(abs((ficon["metrics"]?["util_bus"]?.doubleValue ?? 0) - 100) < 1e-6)
    }

    @Test func badInputGetsClearErrors() throws {
        let (server, _) = try Self.server()
        let wrongKey = Self.runError(server, "set-chpid-load", #"{"chpid": "0.60", "load": {"read_total": 5}}"#)
        #expect(
            wrongKey
                == "GenericError: load key 'read_total' is not one CMG 1 can be driven by (expected one of util_total, util_part)"
        )
        #expect(
            Self.runError(server, "set-chpid-load", #"{"chpid": "0.40", "load": {"util_part": -1}}"#)
                == "GenericError: load key 'util_part' must be a number from 0 to 1e15, got -1.0")
        #expect(
            Self.runError(server, "set-chpid-load", #"{"chpid": "0.77", "load": {}}"#)?.hasPrefix("DeviceNotFound")
                == true)
        #expect(
            Self.runError(server, "set-chpid-load", #"{"chpid": "fe.00", "load": {}}"#)
                == "GenericError: the channel path has no channel-measurement group to load")
        #expect(
            Self.runError(server, "set-chpid-load", #"{"chpid": "0.40", "load": {"bogus": 1}}"#)?.hasPrefix(
                "GenericError") == true)
        #expect(
            Self.runError(server, "query-chpid-measurements", #"{"chpids": ["0.40", "0.77"]}"#)?.hasPrefix(
                "DeviceNotFound") == true)
        // A load no hardware could count would overflow the model's 64-bit counters: refused.
        #expect(
            Self.runError(server, "set-chpid-load", #"{"chpid": "0.40", "load": {"read_total": 1e300}}"#)
                == "GenericError: load key 'read_total' must be a number from 0 to 1e15, got 1e+300")
        // The server still answers.
        #expect(try Self.reply(server, "query-chpid-measurements")["state"]?.stringValue == "disabled")
    }

    /// A selection with duplicates and out of order: each path once, in chpid order (as the
    /// schema says, and as linux-sysfs answers). The model backend used to echo the list as
    /// given: 0.41, 0.40, 0.41.
    @Test func aSelectionComesBackOnceEachInChpidOrder() throws {
        let (server, _) = try Self.server()
        let reply = try Self.reply(server, "query-chpid-measurements", #"{"chpids": ["0.41", "0.40", "0.41"]}"#)
        let paths = try #require(reply["channel-paths"])
        let chpids = (0..<paths.count).map { paths[$0]?["chpid"]?.stringValue ?? "" }
        #expect(chpids == ["0.40", "0.41"])
    }

    /// A load whose counters would wrap more than once between two of the tracker's samples
    /// cannot be shown: it is refused, naming the key, rather than served as a wrong rate.
    /// (1e13 bytes/s of 4096-byte units moves data_units_read 2^32 in 1.8 s; it was accepted,
    /// and the query then showed a read_total that was not the load.)
    @Test func aLoadTooFastToMeasureIsRefused() throws {
        let (server, clock) = try Self.server()
        _ = try Self.reply(server, "set-channel-measurement", #"{"enabled": true}"#)
        let error = Self.runError(server, "set-chpid-load", #"{"chpid": "0.40", "load": {"read_total": 1e13}}"#)
        if error == nil {
            // Accepted: then it must come back from the query.
            clock.now = .seconds(200)
            _ = try Self.reply(server, "query-chpid-measurements")
            clock.now = .seconds(400)
            let ficon = try Self.path(try Self.reply(server, "query-chpid-measurements"), "0.40")
            let shown = ficon["metrics"]?["read_total"]?.doubleValue ?? 0
            Issue.record("accepted, and shown as read_total \(shown)")
        }
        #expect(error?.hasPrefix("GenericError: load key 'read_total' makes counter data_units_read_cpc") == true)
        // The path keeps its previous (idle) load, and the server answers.
        #expect(try Self.path(try Self.reply(server, "query-chpid-measurements"), "0.40")["cmg"]?.intValue == 2)
    }

    @Test func enablingWithoutAuthorizationNamesWhereItIsGranted() throws {
        let subsystem = try Subsystem(topology: .embeddedDefault)
        let backend = ModelBackend(subsystem, measurement: MeasurementModel(subsystem: subsystem, authorized: false))
        let (server, _) = try Self.server(backend: backend)
        let error = Self.runError(server, "set-channel-measurement", #"{"enabled": true}"#)
        #expect(error?.hasPrefix("GenericError: the partition is not authorized") == true)
        #expect(error?.contains("Global performance data control") == true)
        #expect(error?.contains("Access global performance data") == true)
        #expect(try Self.reply(server, "query-chpid-measurements")["state"]?.stringValue == "disabled")
    }

    static func runError(_ server: ServerState, _ command: String, _ arguments: String) -> String? {
        guard case .failure(let error) = try? run(server, command, arguments) else { return nil }
        return error.description
    }
}
