// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import Foundation
import JSONValues
import LinuxSysfs
import Logging
import NIOCore
import NIOEmbedded
import PathChangePipeline
import PathEvents
import QMPCommands
import TestSupport
import Testing
import VFIOCCW

@testable import QMPServer

/// Keeps every published change it is told of.
private final class RecordingSink: PathChangeSink {
    var published: [PublishedPathChange] = []
    func pathChangePublished(_ published: PublishedPathChange) { self.published.append(published) }
}

/// The model backend, counting how often its view (and so any SCHIB) is read.
private final class CountingBackend: ChannelSubsystemBackend {
    let model: ModelBackend
    private(set) var subsystemReads = 0
    init(_ model: ModelBackend) { self.model = model }
    var kind: BackendKind { model.kind }
    var subsystem: Subsystem {
        subsystemReads += 1
        return model.subsystem
    }
    func details(of path: ChannelPathID) -> ChannelPathDetails? { model.details(of: path) }
    func planVary(_ id: ChannelPathID, to state: VaryState) throws(BackendError) -> PendingWrite {
        try model.planVary(id, to: state)
    }
    func planConfigure(_ id: ChannelPathID, to state: ConfigureState) throws(BackendError) -> PendingWrite {
        try model.planConfigure(id, to: state)
    }
    func completeWrite(_ write: PendingWrite, _ outcome: PendingWrite.Outcome) throws(BackendError) -> PathChange {
        try model.completeWrite(write, outcome)
    }
    func varyPath(_ id: ChannelPathID, to state: VaryState, subchannel: SubchannelID) throws(BackendError) -> PathChange
    {
        try model.varyPath(id, to: state, subchannel: subchannel)
    }
    func injectPathFault(_ id: ChannelPathID, _ fault: PathFault) throws(BackendError) -> PathChange {
        try model.injectPathFault(id, fault)
    }
    func resetChannelPath(_ id: ChannelPathID) throws(BackendError) -> ResetChannelPathResult {
        try model.resetChannelPath(id)
    }
    func modifySubchannel(_ id: SubchannelID, schib: SCHIB) throws(BackendError) -> ModifySubchannelResult {
        try model.modifySubchannel(id, schib: schib)
    }
    func storeChannelReportWord() throws(BackendError) -> StoreCRWResult { try model.storeChannelReportWord() }
}

/// The embedded topology with its guest (`guest1`, crw strategy, the 42 DASDs of 0.40-0.43
/// passed through), a recording sink, and a negotiated session.
private final class Pipeline {
    let server: ServerState
    let sink = RecordingSink()
    let session: QMPSession
    var output = ByteBuffer()

    init(backend: ChannelSubsystemBackend? = nil, strategy: PathEventStrategy = .crw) throws {
        let host = try Subsystem(topology: .embeddedDefault)
        var guests = try Guests(topology: .embeddedDefault, host: host)
        try guests.setStrategy(strategy, of: "guest1")
        server = try ServerState.standard(backend: backend ?? ModelBackend(host), guests: guests)
        server.clock = { EventTime(seconds: 7, microseconds: 8) }
        server.pathChanges.register(sink, as: .metrics)
        session = QMPSession(server: server)
        try session.writeGreeting(into: &output)
        _ = execute(#"{"execute":"qmp_capabilities"}"#)
    }

    /// Runs one request and returns the reply (and any events after it) as lines.
    func execute(_ request: String) -> [JSON] {
        output.clear()
        var input = ByteBuffer(string: request)
        _ = session.receive(&input, into: &output, budget: .max)
        let text = output.readString(length: output.readableBytes) ?? ""
        return text.split(separator: "\r\n").map { JSON.parse(String($0))! }
    }
}

@Suite("Path-change pipeline")
struct PathChangePublisherTests {
    @Test("every command that changes a path publishes through the publisher, once each, in order")
    func commandsPublish() throws {
        let pipeline = try Pipeline()
        let connection = pipeline.session.connectionID
        let requests: [(String, PathEventChange)] = [
            (#"{"execute":"vary-path","arguments":{"chpid":"0.40","state":"offline"}}"#, .offline),
            (#"{"execute":"configure-chpid","arguments":{"chpid":"0.41","state":"standby"}}"#, .standby),
            (
                #"{"execute":"inject-path-fault","arguments":{"chpid":"0.42","fault":"temporary-error"}}"#,
                .temporaryError
            ),
            (#"{"execute":"reset-channel-path","arguments":{"chpid":"0.43"}}"#, .reset),
            (
                #"{"execute":"vary-path","arguments":{"chpid":"0.44","state":"offline","subchannel":"0.0.0032"}}"#,
                .offline
            ),
        ]
        for (request, _) in requests {
            #expect(pipeline.execute(request).first?["return"] != nil, "\(request)")
        }
        // The temporary error leaves the 42 DASDs of 0.40-0.43 on 0.43 alone: its change is
        // followed by a redundancy-lost change of its own (the command's too).
        let published = pipeline.sink.published
        #expect(published.map(\.kind) == [.offline, .standby, .temporaryError, .redundancyLost, .reset, .offline])
        #expect(published.map(\.sequence) == [1, 2, 3, 4, 5, 6])
        #expect(published.allSatisfy { $0.cause == .command(by: .connection(connection)) })
        #expect(published.allSatisfy { $0.time == EventTime(seconds: 7, microseconds: 8) })
        #expect(
            published.map(\.change.chpid) == [
                chp("0.40"), chp("0.41"), chp("0.42"), chp("0.42"), chp("0.43"), chp("0.44"),
            ])
        #expect(published[3].change.affected.count == 42 && published[3].guests.isEmpty)
        // The vary reaches the guest's 42 devices on fe.40 (lpm only: invisible to the guest).
        #expect(published[0].guests.map(\.guestChpid) == [chp("fe.40")])
        #expect(published[0].guests[0].devices == 42 && published[0].guests[0].visible == 0)
        #expect(published[0].guests[0].change == .offline && published[0].guests[0].strategy == .crw)
        // The configure is reported by the machine: the guest gets its CRW, under its chpid.
        #expect(published[1].guests.map(\.guestChpid) == [chp("fe.41")] && published[1].guests[0].crw?.rsid == 0x41)
        // A reset reaches no guest: its report is the host's own, solicited.
        #expect(published[4].guests.isEmpty && published[4].change.crws.first?.solicited == true)
        // The per-device vary touches one subchannel (not passed through).
        #expect(published[5].change.affected.map(\.id) == [sch("0.0.0032")] && published[5].guests.isEmpty)
        // Nobody subscribed: nobody was reached.
        #expect(published.allSatisfy { $0.reached.owners.isEmpty && $0.reached.events == 0 })
    }

    @Test("a change that alters nothing is not published; a reset always is")
    func noOpsAreNotPublished() throws {
        let pipeline = try Pipeline()
        _ = pipeline.execute(#"{"execute":"vary-path","arguments":{"chpid":"0.40","state":"online"}}"#)  // already
        _ = pipeline.execute(#"{"execute":"configure-chpid","arguments":{"chpid":"0.40","state":"configured"}}"#)
        #expect(pipeline.sink.published.isEmpty)
        // RCHP on a path in standby is cc 3: nothing happened.
        _ = pipeline.execute(#"{"execute":"reset-channel-path","arguments":{"chpid":"0.4d"}}"#)
        #expect(pipeline.sink.published.isEmpty)
        _ = pipeline.execute(#"{"execute":"reset-channel-path","arguments":{"chpid":"0.4c"}}"#)
        #expect(pipeline.sink.published.map(\.kind) == [.reset] && pipeline.sink.published[0].sequence == 1)
    }

    @Test("the sink sees the subscribers reached and the guest changes the events carry")
    func sinkSeesWhatSubscribersGet() throws {
        let pipeline = try Pipeline()
        let other = QMPSession(server: pipeline.server)
        var otherOutput = ByteBuffer()
        try other.writeGreeting(into: &otherOutput)
        var input = ByteBuffer(
            string: #"{"execute":"qmp_capabilities"}"#
                + #"{"execute":"subscribe-path-events","arguments":{"granularity":"guest"}}"#
                + #"{"execute":"subscribe-path-events","arguments":{"granularity":"subchannel","chpids":["0.41"]}}"#)
        _ = other.receive(&input, into: &otherOutput, budget: .max)
        otherOutput.clear()
        _ = pipeline.execute(#"{"execute":"configure-chpid","arguments":{"chpid":"0.41","state":"standby"}}"#)
        let published = try #require(pipeline.sink.published.first)
        #expect(pipeline.sink.published.count == 1)
        #expect(published.reached.owners == [other.connectionID])
        #expect(published.reached.subscriptions == 2 && published.reached.events == 1 + 42)
        // What the subscriber then writes is what the sink saw.
        #expect(other.process(into: &otherOutput, budget: .max) == .needInput)
        let lines = (otherOutput.readString(length: otherOutput.readableBytes) ?? "").split(separator: "\r\n")
            .map { JSON.parse(String($0))! }
        let guestEvents = lines.filter { $0["event"]?.stringValue == "GUEST_PATH_CHANGED" }
        #expect(guestEvents.count == published.guests.count && guestEvents.count == 1)
        let data = guestEvents[0]["data"]!
        let guest = published.guests[0]
        #expect(data["guest"]?.stringValue == guest.guest && data["guest-chpid"]?.stringValue == "fe.41")
        #expect(data["strategy"]?.stringValue == "crw" && data["change"]?.stringValue == "standby")
        #expect(data["crw"]?.intValue == Int(guest.crw!.rawValue) && data["devices"]?.intValue == guest.devices)
        #expect(lines.count { $0["event"]?.stringValue == "SUBCHANNEL_PATHS_CHANGED" } == 42)
        #expect(guestEvents[0]["timestamp"]?["seconds"]?.intValue == published.time.seconds)
    }

    @Test("the host view finds a subchannel's entry (binary search in id order) and says whether it is held")
    func hostPassthroughLookup() throws {
        let ids = try (0..<9).map { try SubchannelID(parsing: String(format: "0.0.%04x", $0 * 2 + 1)) }
        let view = HostPassthroughView(
            subchannels: ids.enumerated().map { n, id in
                HostPassthrough(
                    subchannel: id,
                    mdev: n % 3 == 0
                        ? nil
                        : MediatedDevice(
                            uuid: "m\(n)", state: .active, iommuGroup: n,
                            holder: n % 3 == 1 ? .none : .libvirt(domain: "g", pid: 1)))
            })
        for (n, id) in ids.enumerated() {
            #expect(view.passthrough(id)?.subchannel == id)
            #expect(view.isHeld(id) == (n % 3 == 2))
        }
        for raw in [0, 2, 4, 18, 0xffff] {
            #expect(view.passthrough(try SubchannelID(parsing: String(format: "0.0.%04x", raw))) == nil)
        }
        #expect(HostPassthroughView().passthrough(ids[0]) == nil)
    }

    @Test("linux-sysfs: one host-guest change per guest, however many of its devices the change reached")
    func hostGuestsAreAttributedFromTheViewPassedIn() throws {
        var host = try Subsystem(topology: .embeddedDefault)
        let chpid = try ChannelPathID(parsing: "0.40")
        let onPath = host.subchannels.filter { $0.channelPaths.contains(chpid) }.map(\.id)
        try #require(onPath.count >= 3)
        // All but the last held by db-1 (libvirt), the last by a process nobody named.
        let view = HostPassthroughView(
            subchannels: onPath.enumerated().map { n, id in
                HostPassthrough(
                    subchannel: id,
                    mdev: MediatedDevice(
                        uuid: "m\(n)", state: .active, iommuGroup: n,
                        holder: n == onPath.count - 1
                            ? .process(guest: nil, pid: 9) : .libvirt(domain: "db-1", pid: 4100)))
            })
        let publisher = PathChangePublisher(hostPassthrough: { view })
        let sink = RecordingSink()
        publisher.register(sink, as: .metrics)
        let change = try host.configurePath(chpid, to: .standby)
        publisher.publish(change, as: .standby, cause: .observed(backend: "linux-sysfs"))
        let guests = try #require(sink.published.first?.hostGuests)
        let held = Set(onPath.dropLast())
        let reached = change.affected.filter { held.contains($0.id) }
        #expect(guests.map(\.guest) == ["db-1"])
        #expect(guests.first?.pid == 4100 && guests.first?.hostChpid == chpid && guests.first?.change == .standby)
        #expect(guests.first?.devices.map(\.subchannel) == reached.map(\.id).sorted())
        #expect(guests.first?.withoutPath == reached.count { $0.pim & $0.pam & $0.pom & $0.lpm == 0 })
        // A reset reaches no guest.
        publisher.publish(PathChange(resetOf: change.after, crws: []), as: .reset, cause: .observed(backend: "x"))
        #expect(sink.published.last?.hostGuests == [])
    }

    @Test("a sink nobody holds any more is not told")
    func sinksAreHeldWeakly() throws {
        let pipeline = try Pipeline()
        var second: RecordingSink? = RecordingSink()
        pipeline.server.pathChanges.register(second!, as: .notifier)
        _ = pipeline.execute(#"{"execute":"vary-path","arguments":{"chpid":"0.40","state":"offline"}}"#)
        #expect(pipeline.sink.published.count == 1 && second!.published.count == 1)
        second = nil
        _ = pipeline.execute(#"{"execute":"vary-path","arguments":{"chpid":"0.40","state":"online"}}"#)
        #expect(pipeline.sink.published.map(\.sequence) == [1, 2])
    }

    @Test("guests get the new masks with the change: publishing reads no SCHIB, however many devices")
    func guestsReadNoSCHIB() throws {
        let host = try Subsystem(topology: .embeddedDefault)
        let backend = CountingBackend(ModelBackend(host))
        let pipeline = try Pipeline(backend: backend, strategy: .perDevice)
        let reads = backend.subsystemReads
        _ = pipeline.execute(#"{"execute":"configure-chpid","arguments":{"chpid":"0.40","state":"standby"}}"#)
        // One read of the view per command at most would be O(1): the last-path interlock's
        // what-if takes it once (a copy-on-write reference, O(subchannels on the chpid) to
        // walk); the handler's publishing and the pipeline work from the change and read none.
        #expect(backend.subsystemReads == reads + 1)
        let published = try #require(pipeline.sink.published.first)
        #expect(published.guests.first?.notifications == 42 && published.guests.first?.visible == 42)
        // Each guest device now shows the host's masks, as the per-device strategy copies them.
        let guest = try pipeline.server.guests.guest("guest1")
        for device in guest.devices.values {
            guard let hostID = device.host else { continue }
            let pmcw = backend.model.subsystem.subchannel(hostID)!.schib.pmcw
            #expect(device.pam == pmcw.pam && device.pom == pmcw.pom && device.pnom == pmcw.pnom)
            #expect(device.lpum == pmcw.lpum)
        }
    }

    @Test("an observed backend's refresh publishes through the publisher, with its cause")
    func refreshPublishes() throws {
        let tree = SysfsTree.chpid40WithOneSubchannel()
        let backend = try SysfsBackend(root: tree.root)
        let state = try ServerState.standard(backend: backend)
        let sink = RecordingSink()
        state.pathChanges.register(sink, as: .metrics)
        let loop = EmbeddedEventLoop()
        let core = ServerCore(loop: loop, state: state, logger: Logger(label: "test"))
        defer { try? core.threads.syncShutdown() }
        if let update = backend.readNow() { core.applyBackendUpdate(update) }
        #expect(sink.published.isEmpty)
        tree.write("devices/css0/chp0.40/configure", "0\n")
        tree.write("devices/css0/0.0.0000/pimpampom", "80 00 ff\n")
        if let update = backend.readNow() { core.applyBackendUpdate(update) }
        #expect(sink.published.map(\.kind) == [.standby])
        #expect(sink.published.first?.cause == .observed(backend: "linux-sysfs"))
        #expect(sink.published.first?.change.affected.map(\.pam) == [0])
    }

    @Test("sinks hear a change in the documented order of their roles, whatever order they were registered in")
    func sinksHearInRoleOrder() throws {
        // The documented order (API/path-change-pipeline.md), spelled out: a reordering of
        // `PathChangeSinkRole` must change the document and this line with it.
        let documented: [PathChangeSinkRole] = [.journal, .connections, .stateStore, .notifier, .metrics]
        #expect(PathChangeSinkRole.allCases == documented)
        let state = try ServerState.standard()
        // Which role heard, and whether the journal held the change by then.
        var heard: [(PathChangeSinkRole, Bool)] = []
        let sinks = [PathChangeSinkRole.metrics, .notifier, .stateStore].map { role in
            CallbackSink { published in heard.append((role, state.journal.newest == published.sequence)) }
        }
        // Registered last-first, with the journal (the server state's) before them and the
        // connections (the network layer's) in between.
        state.pathChanges.register(sinks[0], as: .metrics)
        state.pathChanges.register(sinks[1], as: .notifier)
        let loop = EmbeddedEventLoop()
        let core = ServerCore(loop: loop, state: state, logger: Logger(label: "test"))
        defer { try? core.threads.syncShutdown() }
        state.pathChanges.register(sinks[2], as: .stateStore)
        #expect(state.pathChanges.sinkRoles == documented)
        let session = QMPSession(server: state)
        var output = ByteBuffer()
        try session.writeGreeting(into: &output)
        var input = ByteBuffer(
            string:
                #"{"execute":"qmp_capabilities"}{"execute":"vary-path","arguments":{"chpid":"0.40","state":"offline"}}"#
        )
        _ = session.receive(&input, into: &output, budget: .max)
        #expect(heard.map(\.0) == [.stateStore, .notifier, .metrics])
        #expect(heard.allSatisfy { $0.1 })
        #expect(String(buffer: output).contains(#"{"return": {}}"#))
        withExtendedLifetime(sinks) {}
    }

    @Test("a change that costs devices in use their redundancy or last path is followed by one that says so")
    func redundancyLossesArePublishedAfterTheirChange() throws {
        let pipeline = try Pipeline()
        // A subscriber that does not read until the end: its queue must keep the path change
        // and the loss that follows it (different kinds do not coalesce).
        let other = QMPSession(server: pipeline.server)
        var otherOutput = ByteBuffer()
        try other.writeGreeting(into: &otherOutput)
        var input = ByteBuffer(
            string: #"{"execute":"qmp_capabilities"}"#
                + #"{"execute":"subscribe-path-events","arguments":{"granularity":"both"}}"#)
        _ = other.receive(&input, into: &otherOutput, budget: .max)
        otherOutput.clear()
        // The 42 DASDs of 0.40-0.43 keep two paths after the first two varies: no loss.
        for chpid in ["0.40", "0.41", "0.42"] {
            let request = #"{"execute":"vary-path","arguments":{"chpid":"\#(chpid)","state":"offline"}}"#
            #expect(pipeline.execute(request).first?["return"] != nil)
        }
        let fault = #"{"execute":"inject-path-fault","arguments":{"chpid":"0.43","fault":"permanent-error"}}"#
        #expect(pipeline.execute(fault).first?["return"] != nil)
        let published = pipeline.sink.published
        #expect(
            published.map(\.kind) == [.offline, .offline, .offline, .redundancyLost, .permanentError, .lastPathLost])
        #expect(published.map(\.sequence) == [1, 2, 3, 4, 5, 6])
        #expect(published.map(\.change.chpid) == ["0.40", "0.41", "0.42", "0.42", "0.43", "0.43"].map(chp))
        let dasds = (0x03...0x2c).map { sch(String(format: "0.0.%04x", $0)) }
        #expect(published[3].change.affected.map(\.id) == dasds && published[5].change.affected.map(\.id) == dasds)
        // The loss is no state change of the path and reaches no guest (the masks went with 0.42's vary).
        #expect(published[3].change.before == published[3].change.after && published[3].change.crws.isEmpty)
        #expect(published[3].guests.isEmpty && published[2].guests.count == 1)
        // The change itself is journaled as a journal decodes it: without the losses.
        #expect(published.allSatisfy { $0.change.losses.isEmpty })
        #expect(published[3].cause == published[2].cause && published[3].time == published[2].time)
        // What the slow subscriber gets: every chpid event, the loss under its chpid with the count.
        #expect(other.process(into: &otherOutput, budget: .max) == .needInput)
        let lines = (otherOutput.readString(length: otherOutput.readableBytes) ?? "").split(separator: "\r\n")
            .map { JSON.parse(String($0))! }
        let chpidEvents = lines.filter { $0["event"]?.stringValue == "CHANNEL_PATH_CHANGED" }.map { $0["data"]! }
        #expect(
            chpidEvents.map { $0["change"]?.stringValue } == [
                "offline", "offline", "offline", "redundancy-lost", "permanent-error", "last-path-lost",
            ])
        #expect(chpidEvents[3]["chpid"]?.stringValue == "0.42" && chpidEvents[3]["subchannels"]?.intValue == 42)
        #expect(chpidEvents[3]["sequence"]?.intValue == 4 && chpidEvents[3]["crw"] == nil)
        let lost = lines.filter {
            $0["event"]?.stringValue == "SUBCHANNEL_PATHS_CHANGED"
                && $0["data"]?["change"]?.stringValue == "last-path-lost"
        }
        #expect(
            lost.count == 42
                && lost.allSatisfy { $0["data"]?["lpm"]?.intValue == 0x10 && $0["data"]?["pam"]?.intValue == 0xe0 })
    }
}

/// Calls `heard` with every published change.
private final class CallbackSink: PathChangeSink {
    let heard: (PublishedPathChange) -> Void
    init(_ heard: @escaping (PublishedPathChange) -> Void) { self.heard = heard }
    func pathChangePublished(_ published: PublishedPathChange) { heard(published) }
}
