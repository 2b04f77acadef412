// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

// Scale figures for the model: build time (`build` includes validation), storage and resident
// memory per subchannel, and per-chpid operation times, for several sizes. Run in release:
//   swift run -c release --package-path Benchmarks/CSSModelBench cssmodel-bench
import CSSModel

#if canImport(Glibc)
import Glibc
#endif

/// Resident set size in bytes, from /proc/self/statm (Linux); 0 elsewhere.
func residentBytes() -> Int {
    #if canImport(Glibc)
    let fd = open("/proc/self/statm", O_RDONLY)
    guard fd >= 0 else { return 0 }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 128)
    let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, 128) }
    guard count > 0 else { return 0 }
    let fields = String(decoding: buffer[..<count], as: UTF8.self).split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    #else
    return 0
    #endif
}

func milliseconds(_ duration: Duration) -> Double {
    let (seconds, attoseconds) = duration.components
    return Double(seconds) * 1000 + Double(attoseconds) / 1e15
}

func pad(_ text: String, _ width: Int) -> String {
    String(repeating: " ", count: max(0, width - text.count)) + text
}

func format(_ value: Double, _ decimals: Int = 1) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    return "\(rounded)"
}

let clock = ContinuousClock()

/// Kept out of line so the optimizer cannot fold walks of an unchanged model together.
@inline(never)
func recountWithoutOperationalPath(_ model: Subsystem) -> Int {
    model.recountSubchannelsWithoutOperationalPath(cssid: 0)
}
let sizes =
    CommandLine.arguments.count > 1
    ? CommandLine.arguments.dropFirst().compactMap { Int($0) } : [16_384, 65_536, 131_072, 262_144]
print(
    [
        "subchannels", "per chpid", "generate ms", "validate ms", "build ms", "storage B/sch", "RSS B/sch", "vary ms",
        "configure ms",
        "vary-one us", "lookup ns", "recount ms",
    ].map { pad($0, 13) }.joined(separator: " "))
for size in sizes {
    let baseline = residentBytes()
    var topology: Topology!
    let generate = clock.measure { topology = try! Topology.synthetic(subchannels: size, chpids: 32, paths: 8) }
    let validate = clock.measure { try! topology.validate() }
    var model: Subsystem!
    let build = clock.measure { model = try! Subsystem(topology: topology) }
    topology = nil
    let resident = residentBytes() - baseline
    let chpid = ChannelPathID(cssid: 0, chpid: 0x11)
    var affected = 0
    // Medians of 11 runs, alternating the direction so that every run changes every member.
    func median(_ body: (Int) -> Void) -> Duration {
        var times: [Duration] = []
        for run in 0..<11 { times.append(clock.measure { body(run) }) }
        return times.sorted()[times.count / 2]
    }
    let vary = median { run in
        affected += try! model.varyPath(chpid, to: run % 2 == 0 ? .offline : .online).affected.count
    }
    let configure = median { run in
        affected += try! model.configurePath(chpid, to: run % 2 == 0 ? .standby : .configured).affected.count
    }
    let one = SubchannelID(cssid: 0, ssid: 0, schno: 2)
    let varyOne = clock.measure {
        for _ in 0..<1000 { affected += try! model.varyPath(chpid, to: .offline, subchannel: one).affected.count }
    }
    var found = 0
    let lookups = 1_000_000
    let lookup = clock.measure {
        for n in 0..<lookups {
            let id = SubchannelID(cssid: 0, ssid: UInt8((n >> 16) & 3), schno: UInt16(truncatingIfNeeded: n * 7919))
            if model.subchannel(id) != nil { found += 1 }
        }
    }
    // What a scrape would cost without the maintained count: walking every subchannel. A vary
    // before each walk (not timed) changes the model, so that no walk can be skipped.
    var recounts: [Duration] = []
    for run in 0..<11 {
        try! model.varyPath(chpid, to: run % 2 == 0 ? .offline : .online)
        var down = 0
        recounts.append(clock.measure { down = recountWithoutOperationalPath(model) })
        precondition(down == model.subchannelsWithoutOperationalPath(cssid: 0))
    }
    let recount = recounts.sorted()[recounts.count / 2]
    precondition(affected > 0 && found > 0)
    let perChpid = model.channelPath(chpid)!.subchannelCount
    let row: [String] = [
        "\(size)", "\(perChpid)", format(milliseconds(generate)), format(milliseconds(validate)),
        format(milliseconds(build)),
        "\(model.storageBytes / size)", "\(resident / size)", format(milliseconds(vary), 2),
        format(milliseconds(configure), 2), format(milliseconds(varyOne)),
        format(milliseconds(lookup) * 1e6 / Double(lookups)), format(milliseconds(recount), 2),
    ]
    print(row.map { pad($0, 13) }.joined(separator: " "))
}

// Redundancy (issue 22): with 2 paths per subchannel, a vary of one chpid leaves every member
// on one path (each moves in the maintained counts and is listed as a loss), and varying it
// back returns them; with 8 paths (the table above) nobody's count moves. `recount` walks
// every subchannel for the counts: what a scrape would cost if the model did not keep them.
// Every subchannel's device is in use (the synthetic topology's default).
@inline(never)
func recountRedundancy(_ model: Subsystem) -> Int {
    model.recountRedundancy().css.reduce(0) { $0 + $1.singlePath }
}
print("")
print(
    ["subchannels", "per chpid", "vary-off ms", "vary-on ms", "losses", "recount ms"].map { pad($0, 13) }
        .joined(separator: " "))
for size in sizes {
    var model = try! Subsystem(topology: Topology.synthetic(subchannels: size, chpids: 32, paths: 2))
    let chpid = ChannelPathID(cssid: 0, chpid: 0x11)
    var offs: [Duration] = []
    var ons: [Duration] = []
    var losses = 0
    for _ in 0..<11 {
        offs.append(clock.measure { losses = try! model.varyPath(chpid, to: .offline).losses.redundancyLost.count })
        ons.append(clock.measure { _ = try! model.varyPath(chpid, to: .online) })
    }
    var recounts: [Duration] = []
    for run in 0..<11 {
        try! model.varyPath(chpid, to: run % 2 == 0 ? .offline : .online)
        var single = 0
        recounts.append(clock.measure { single = recountRedundancy(model) })
        precondition(single == model.redundancy(cssid: 0).singlePath)
    }
    func median(_ times: [Duration]) -> Double { milliseconds(times.sorted()[times.count / 2]) }
    let row: [String] = [
        "\(size)", "\(model.channelPath(chpid)!.subchannelCount)", format(median(offs), 2), format(median(ons), 2),
        "\(losses)", format(median(recounts), 2),
    ]
    print(row.map { pad($0, 13) }.joined(separator: " "))
}
