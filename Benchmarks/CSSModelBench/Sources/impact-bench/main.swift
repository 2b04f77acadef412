// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

// The impact query's model cost (issue 22): `impactOfRemoving(chpids:)` for one chpid and for
// all 256, the interlock's check of a vary, and `currentRedundancy()`, on generated machines of
// 256 FICON chpids. Run in release:
//   swift run -c release --package-path Benchmarks/CSSModelBench impact-bench [SUBCHANNELS] [PATHS...]
import CSSModel

#if canImport(Glibc)
import Glibc
#endif

let clock = ContinuousClock()

func milliseconds(_ duration: Duration) -> Double {
    let (seconds, attoseconds) = duration.components
    return Double(seconds) * 1000 + Double(attoseconds) / 1e15
}

func format(_ value: Double) -> String {
    value < 1 ? String(Int((value * 1000).rounded())) + " us" : String((value * 100).rounded() / 100) + " ms"
}

/// Median of `runs` timings of `body`; the result of the last run is kept so the work stays.
@inline(never)
func median(_ runs: Int, _ body: () throws -> Int) rethrows -> (ms: Double, result: Int) {
    var times: [Double] = []
    var result = 0
    for _ in 0..<runs {
        let start = clock.now
        result = try body()
        times.append(milliseconds(clock.now - start))
    }
    return (times.sorted()[runs / 2], result)
}

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let subchannels = arguments.first ?? 262_144
let pathCounts = arguments.count > 1 ? Array(arguments.dropFirst()) : [1, 2, 8]
let all = (0..<256).map { ChannelPathID(cssid: 0, chpid: UInt8($0)) }
print("subchannels \(subchannels), 256 chpids; median of 11 runs each")
print(
    "paths | per chpid | one chpid | lost/dropped | all 256 | lost | interlock (vary one) | current redundancy | single"
)
for paths in pathCounts {
    let model = try Subsystem(topology: .synthetic(subchannels: subchannels, chpids: 256, paths: paths))
    let one = try median(11) {
        let impact = try model.impactOfRemoving(chpids: [all[17]])
        return impact.lostLastPath.count * 1_000_000 + impact.droppedToOnePath.count
    }
    let every = try median(11) { try model.impactOfRemoving(chpids: all).lostLastPath.count }
    // What the interlock asks before a vary: the same what-if through the general entry.
    let interlock = try median(11) {
        try model.impact(of: PathRemoval(chpids: [all[17]])).inUseLosingLastPath.count
    }
    let redundancy = median(11) { model.currentRedundancy().singlePath.count }
    print(
        "\(paths) | \(subchannels * paths / 256) | \(format(one.ms)) | \(one.result / 1_000_000)/\(one.result % 1_000_000)"
            + " | \(format(every.ms)) | \(every.result) | \(format(interlock.ms)) | \(format(redundancy.ms))"
            + " | \(redundancy.result)")
}
