// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

// The seed's trade-off in numbers: one host chpid shared by N passthrough (vfio-ccw) devices of
// one guest, the same path events under each PathEventStrategy, with a guest that reacts the way
// Linux does. Prints markdown tables (API/vfio-ccw.md). Run in release:
//   swift run -c release --package-path Benchmarks/VFIOBench vfio-bench [N...]
//
// Host: css 0, FICON chpids 0.4a and 0.4b; N DASDs 0.s.xxxx (devno = schno), each with paths
// [0.4a 0.4b] and enabled, so 0.4a is shared by exactly N subchannels. Events hit 0.4a only.
// Guest "linux": a virtio-net device at fe.0.0000 (devno ffff, chpid fe.00) and the N DASDs
// passed through with identity chpids fe.4a fe.4b, at guest subchannels fe.0.0001 onwards; the
// 65,536th lands in fe.1.0000, since a (css, ssid) holds 65,536 subchannels and the virtio
// device takes one. No MCSSE: one guest css, so channel-path CRWs are single words.
//
// One round = 8 host changes on 0.4a, each followed by the host kernel draining the machine's
// CRW queue (STCRW until cc 1; the host model's queue would otherwise overflow and the machine's
// report, which the crw strategy forwards, would be lost) and by Guests.hostPathChanged:
// configure standby, configure configured, permanent error, recovered, temporary error,
// recovered, vary offline, vary online. The first six are reported by the machine (a CRW each),
// the varies are not (the machine never hears of them).
import CSSModel
import VFIOCCW

#if canImport(Glibc)
    import Glibc  // libm, for Double.rounded()
#endif

let hostChpid = ChannelPathID(cssid: 0, chpid: 0x4a)
let partnerChpid = ChannelPathID(cssid: 0, chpid: 0x4b)
let guestName = "linux"
let virtioID = SubchannelID(cssid: 0xfe, ssid: 0, schno: 0)

// MARK: Set-up

func hostTopology(devices count: Int) -> Topology {
    var subchannels: [Topology.Subchannel] = []
    subchannels.reserveCapacity(count)
    for index in 0..<count {
        subchannels.append(
            Topology.Subchannel(
                id: SubchannelID(cssid: 0, ssid: UInt8(index >> 16), schno: UInt16(index & 0xffff)),
                devno: index & 0xffff, devType: 0x3390, devModel: 0x0c, cuType: 0x3990, cuModel: 0xe9,
                chpids: [hostChpid, partnerChpid], enabled: true))
    }
    return Topology(
        channelSubsystems: [.init(cssid: 0)],
        channelPaths: [
            .init(id: hostChpid, type: 0x1a, shared: true, pchid: 0x14a),
            .init(id: partnerChpid, type: 0x1a, shared: true, pchid: 0x14b),
        ],
        subchannels: subchannels)
}

/// The guest subchannel of host device `index`: after the virtio device, spilling into the next ssid.
func guestSubchannel(_ index: Int) -> SubchannelID {
    let slot = index + 1
    return SubchannelID(cssid: 0xfe, ssid: UInt8(slot >> 16), schno: UInt16(slot & 0xffff))
}

struct Machine {
    var host: Subsystem
    var guests: Guests
    /// The guest's own knowledge (from its initial STSCHes): its subchannels per chpid number,
    /// and all of them.
    let onChpid: [UInt8: [SubchannelID]]
    let all: [SubchannelID]
    let devices: Int

    init(devices count: Int, strategy: PathEventStrategy, crwCapacity: Int) {
        host = try! Subsystem(topology: hostTopology(devices: count))
        guests = Guests()
        try! guests.addGuest(guestName, strategy: strategy, crwCapacity: crwCapacity)
        try! guests.addVirtio(to: guestName, id: virtioID, devno: 0xffff, cuModel: 1)
        for index in 0..<count {
            let hostID = SubchannelID(cssid: 0, ssid: UInt8(index >> 16), schno: UInt16(index & 0xffff))
            try! guests.attachPassthrough(to: guestName, host: hostID, guestSubchannel: guestSubchannel(index), in: host)
        }
        var onChpid: [UInt8: [SubchannelID]] = [:]
        let guest = try! guests.guest(guestName)
        for device in guest.sortedDevices {
            for chpid in device.chpids { onChpid[chpid.chpid, default: []].append(device.id) }
        }
        self.onChpid = onChpid
        all = guest.sortedDevices.map(\.id)
        devices = count
    }

    var guest: Guest { try! guests.guest(guestName) }

    /// A copy running `strategy` (before any event, so the same as a guest added with it).
    func with(_ strategy: PathEventStrategy) -> Machine {
        var copy = self
        try! copy.guests.setStrategy(strategy, of: guestName)
        return copy
    }
}

// MARK: The scenario

typealias Step = (name: String, kind: PathEventChange, apply: @Sendable (inout Subsystem) -> PathChange)

enum Scenario {
    static let clock = ContinuousClock()
    static let round: [Step] = [
        ("configure standby", .standby, { try! $0.configurePath(hostChpid, to: .standby) }),
        ("configure configured", .configured, { try! $0.configurePath(hostChpid, to: .configured) }),
        ("permanent error", .permanentError, { try! $0.injectPathFault(hostChpid, .permanentError) }),
        ("recovered", .recovered, { try! $0.injectPathFault(hostChpid, .recovered) }),
        ("temporary error", .temporaryError, { try! $0.injectPathFault(hostChpid, .temporaryError) }),
        ("recovered", .recovered, { try! $0.injectPathFault(hostChpid, .recovered) }),
        ("vary offline", .offline, { try! $0.varyPath(hostChpid, to: .offline) }),
        ("vary online", .online, { try! $0.varyPath(hostChpid, to: .online) }),
    ]
}

/// What the guest did in one reaction.
struct Reaction {
    var stored = 0
    var overflows = 0
    var storeSubchannels = 0
}

/// A Linux guest after a machine check: STCRW until cc 1 (crw_collect_info). A CRW with R set
/// is not itself processed; every handler is told of the overflow, and the channel-path one
/// re-evaluates every subchannel (css_schedule_eval_all): STSCH all. Any other unsolicited
/// channel-path CRW: STSCH every subchannel on that chpid (chsc_chp_offline / _online do
/// cio_update_schib for each). The second word of a chain carries the cssid; this guest has one css.
/// Under per-device and lazy nothing is queued, so the loop ends at once.
func guestReacts(_ machine: inout Machine) -> Reaction {
    var reaction = Reaction()
    var inChain = false
    func stsch(_ id: SubchannelID) {
        let result = try! machine.guests.storeSubchannel(of: guestName, id, host: machine.host)
        precondition(result.cc == 0)
        reaction.storeSubchannels += 1
    }
    while true {
        let stored = try! machine.guests.storeCRW(of: guestName)
        guard stored.cc == 0 else { break }
        reaction.stored += 1
        let crw = stored.crw
        if crw.overflow {
            reaction.overflows += 1
            inChain = false
            for id in machine.all { stsch(id) }
            continue
        }
        if inChain {
            inChain = crw.chained
            continue
        }
        inChain = crw.chained
        guard crw.source == .channelPath, !crw.solicited else { continue }
        for id in machine.onChpid[UInt8(truncatingIfNeeded: crw.rsid)] ?? [] { stsch(id) }
    }
    return reaction
}


func nanoseconds(_ duration: Duration) -> Double {
    let (seconds, attoseconds) = duration.components
    return Double(seconds) * 1e9 + Double(attoseconds) / 1e9
}

/// Per-phase time of one round, in ns.
struct RoundTime {
    var host = 0.0
    var deliver = 0.0
    var guest = 0.0
}

/// Runs one round; the guest reacts after each event when `drains`.
@discardableResult
func runRound(_ machine: inout Machine, drains: Bool, check: Bool = false) -> RoundTime {
    var time = RoundTime()
    for step in Scenario.round {
        let t0 = Scenario.clock.now
        let change = step.apply(&machine.host)
        while machine.host.storeChannelReportWord().cc == 0 {}
        let t1 = Scenario.clock.now
        let reached = machine.guests.hostPathChanged(change, as: step.kind)
        let t2 = Scenario.clock.now
        // The guest is interrupted (CRW-pending machine check) only when a CRW is pending for it.
        if drains, !machine.guests.guests[guestName]!.crwQueue.isEmpty { _ = guestReacts(&machine) }
        let t3 = Scenario.clock.now
        time.host += nanoseconds(t1 - t0)
        time.deliver += nanoseconds(t2 - t1)
        time.guest += nanoseconds(t3 - t2)
        precondition(reached.count == 1 && reached[0].devices == machine.devices, "\(step.name): \(reached)")
        if check { checkSCHIBs(machine, after: step.name) }
    }
    return time
}

/// Correctness under every strategy: on a copy, a guest STSCH shows the host's pam/pom/pnom.
/// Checks every device up to 64, else the first, a middle and the last one.
func checkSCHIBs(_ machine: Machine, after step: String) {
    var copy = machine
    let passthrough = Array(machine.all.dropFirst())
    let sample =
        passthrough.count <= 64
        ? passthrough : [passthrough[0], passthrough[passthrough.count / 2], passthrough[passthrough.count - 1]]
    for id in sample {
        let device = copy.guest.devices[id]!
        let hostPMCW = copy.host.subchannel(device.host!)!.schib.pmcw
        let pmcw = try! copy.guests.storeSubchannel(of: guestName, id, host: copy.host).schib!.pmcw
        precondition(
            pmcw.pam == hostPMCW.pam && pmcw.pom == hostPMCW.pom && pmcw.pnom == hostPMCW.pnom,
            "after \(step): guest \(id) shows pam \(pmcw.pam) pom \(pmcw.pom), host \(hostPMCW.pam) \(hostPMCW.pom)")
    }
}

/// The guest's counters and staleness.
struct Snapshot {
    var stats: PathEventStats
    var unobservedDevices = 0
    var untold = 0
    var overflowPending = false

    init(_ machine: Machine) {
        let guest = machine.guest
        stats = guest.stats
        for device in guest.devices.values {
            if device.unobserved > 0 { unobservedDevices += 1 }
            untold += device.untold
        }
        overflowPending = guest.crwQueue.overflowPending
    }
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

// MARK: Formatting

func grouped(_ value: Int) -> String {
    let digits = String(value)
    var out = ""
    for (index, character) in digits.reversed().enumerated() {
        if index > 0, index % 3 == 0 { out.append(",") }
        out.append(character)
    }
    return String(out.reversed())
}

/// Nanoseconds as microseconds: 0.114, 9.29, 400.7, 38,010.
func usText(_ ns: Double) -> String {
    let us = ns / 1e3
    func fixed(_ value: Double, _ decimals: Int) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = Int((value * scale).rounded())
        let fraction = String(scaled % Int(scale))
        return "\(scaled / Int(scale))." + String(repeating: "0", count: decimals - fraction.count) + fraction
    }
    if us < 1 { return fixed(us, 3) }
    if us < 100 { return fixed(us, 2) }
    if us < 1000 { return fixed(us, 1) }
    return grouped(Int(us.rounded()))
}

func row(_ cells: [String]) -> String { "| " + cells.joined(separator: " | ") + " |" }

// MARK: Main

let arguments = CommandLine.arguments.dropFirst()
let sizes = arguments.isEmpty ? [1, 42, 65_536] : arguments.compactMap { Int($0) }
precondition(sizes.allSatisfy { (1...(4 * 0x10000 - 1)).contains($0) }, "N must be 1...262143")
/// The guest's CRW queue size in both variants (a draining guest never has more than one pending).
let crwCapacity = 8
let undrainedRounds = 4
let budget = Duration.milliseconds(400)

print("## Guest drains its CRWs after every event (guest CRW capacity \(crwCapacity))\n")
print(
    "Counters for one round (8 host changes on chpid 0.4a: 6 reported by the machine, 2 varies); "
        + "times per host event: median over rounds of (round time / 8).\n")
print(
    row([
        "N", "strategy", "host events", "notifications", "CRWs queued", "CRWs lost", "SCHIB refreshes", "guest STCRW",
        "guest STSCH", "devices unobserved > 0", "untold", "host change µs/event", "deliver µs/event",
        "guest reaction µs/event",
    ]))
print(row(["---:", ":---"] + Array(repeating: "---:", count: 12)))

var setupNotes: [String] = []
var oneDevice: [(Int, PathEventStrategy, Double)] = []

var bases: [Int: Machine] = [:]
for size in sizes {
    let setupStart = Scenario.clock.now
    let base = Machine(devices: size, strategy: .crw, crwCapacity: crwCapacity)
    let setupTime = nanoseconds(Scenario.clock.now - setupStart)
    bases[size] = base
    setupNotes.append(
        "N = \(grouped(size)): building the host model and attaching the N devices (Guests.attachPassthrough) took "
            + (setupTime < 1e7 ? "\(Int((setupTime / 1e3).rounded())) µs" : "\(grouped(Int((setupTime / 1e6).rounded()))) ms"))
    for strategy in PathEventStrategy.allCases {
        var machine = base.with(strategy)
        // The counted round, with the SCHIB check after every event.
        runRound(&machine, drains: true, check: true)
        let counted = Snapshot(machine)
        // Timed rounds on the same machine (each round ends where it began).
        var hostTimes: [Double] = []
        var deliverTimes: [Double] = []
        var guestTimes: [Double] = []
        let start = Scenario.clock.now
        while hostTimes.count < 5 || (Scenario.clock.now - start < budget && hostTimes.count < 20_000) {
            let time = runRound(&machine, drains: true)
            hostTimes.append(time.host / Double(Scenario.round.count))
            deliverTimes.append(time.deliver / Double(Scenario.round.count))
            guestTimes.append(time.guest / Double(Scenario.round.count))
        }
        let s = counted.stats
        print(
            row([
                grouped(size), strategy.rawValue, grouped(s.hostEvents), grouped(s.notifications), grouped(s.crwsQueued),
                grouped(s.crwsLost), grouped(s.schibRefreshes), grouped(s.guestStoreCRWs),
                grouped(s.guestStoreSubchannels), grouped(counted.unobservedDevices), grouped(counted.untold),
                usText(median(hostTimes)), usText(median(deliverTimes)), usText(median(guestTimes)),
            ]))

        // An event touching one device of this guest (a per-subchannel vary of 0.4b on the
        // first DASD): the model says a host change costs O(affected subchannels).
        var times: [Double] = []
        let one = SubchannelID(cssid: 0, ssid: 0, schno: 0)
        let reps = max(11, min(2_001, 2_000_000 / size))
        for rep in 0..<reps {
            let state: VaryState = rep % 2 == 0 ? .offline : .online
            let change = try! machine.host.varyPath(partnerChpid, to: state, subchannel: one)
            let t0 = Scenario.clock.now
            let reached = machine.guests.hostPathChanged(change, as: PathEventChange(state))
            times.append(nanoseconds(Scenario.clock.now - t0))
            precondition(reached.count == 1 && reached[0].devices == 1)
        }
        oneDevice.append((size, strategy, median(times)))
    }
}

print("\n## Guest that does not drain (crw, guest CRW capacity \(crwCapacity))\n")
print(
    "\(undrainedRounds) rounds (\(undrainedRounds * 8) host changes, \(undrainedRounds * 6) machine reports) with the "
        + "guest not storing CRWs, then one late drain by the same Linux-like guest.\n")
print(
    row([
        "N", "CRWs queued", "CRWs lost", "devices unobserved > 0 before", "untold before", "STCRW at drain",
        "CRWs with R", "guest STSCH at drain", "devices unobserved > 0 after", "untold after",
    ]))
print(row(Array(repeating: "---:", count: 10)))
for size in sizes {
    var machine = bases[size]!.with(.crw)
    for _ in 0..<undrainedRounds { runRound(&machine, drains: false) }
    let before = Snapshot(machine)
    precondition(before.overflowPending || before.stats.crwsLost == 0)
    let reaction = guestReacts(&machine)
    let after = Snapshot(machine)
    checkSCHIBs(machine, after: "late drain")
    print(
        row([
            grouped(size), grouped(before.stats.crwsQueued), grouped(before.stats.crwsLost),
            grouped(before.unobservedDevices), grouped(before.untold), grouped(reaction.stored),
            grouped(reaction.overflows), grouped(reaction.storeSubchannels), grouped(after.unobservedDevices),
            grouped(after.untold),
        ]))
}

print("\n## Cost of an event that touches one device\n")
print(
    "Guests.hostPathChanged for a per-subchannel vary of 0.4b on one passed-through DASD, in a guest that "
        + "has N + 1 devices (median µs).\n")
print(row(["N"] + PathEventStrategy.allCases.map(\.rawValue)))
print(row(["---:"] + PathEventStrategy.allCases.map { _ in "---:" }))
for size in sizes {
    let cells = PathEventStrategy.allCases.map { strategy in
        usText(oneDevice.first { $0.0 == size && $0.1 == strategy }!.2)
    }
    print(row([grouped(size)] + cells))
}

print("\nSet-up (not timed above):")
for note in setupNotes { print("- " + note) }
