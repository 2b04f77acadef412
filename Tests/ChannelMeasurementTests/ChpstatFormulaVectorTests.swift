// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Foundation
import TestSupport
import Testing

@testable import ChannelMeasurement

/// MeasurementFormulas against s390-tools chpstat v2.43.0's own formula code: 1,000 random
/// vectors (200 per CMG) through chpstat's cmg*.c, built from its source as an s390x binary
/// and run under qemu-user (Tests/fixtures/chpstat-formulas/make-vectors.sh), the doubles
/// printed exactly (%a). Every metric must be the same bits, and invalid exactly where chpstat
/// prints -1.0: the same formulas in the same order of operations.
@Suite struct ChpstatFormulaVectorTests {
    struct Vector {
        let line: Int
        let cmg: CMG
        let characteristics: CMGCharacteristics
        let a: MeasurementSample
        let b: MeasurementSample
        /// key -> chpstat's value, nil where it printed "-" (invalid).
        let expected: [(String, Double?)]
    }

    static func bytes(_ hex: Substring) -> [UInt8] {
        var out: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            out.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return out
    }

    static func vectors() throws -> [Vector] {
        let path = Repository.root + "/Tests/fixtures/chpstat-formulas/vectors.txt"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var vectors: [Vector] = []
        for (number, line) in text.split(separator: "\n").enumerated() where !line.hasPrefix("#") {
            let halves = line.split(separator: " => ", omittingEmptySubsequences: false)
            let fields = halves[0].split(separator: " ")
            let cmg = try CMG(checking: Int(fields[0])!)
            let cmcb = try CMCB(bytes: bytes(fields[2]))
            func sample(_ cue: Substring, _ ext: Substring) throws -> MeasurementSample {
                MeasurementSample(
                    cue: try CUE(bytes: bytes(cue)), extendedCUE: ext == "-" ? nil : try ExtendedCUE(bytes: bytes(ext)))
            }
            let expected = halves[1].split(separator: " ").map { pair -> (String, Double?) in
                let parts = pair.split(separator: "=", maxSplits: 1)
                return (
                    String(parts[0]),
                    parts[1] == "-" ? nil : Double(String(parts[1]).replacingOccurrences(of: "-nan", with: "nan"))
                )
            }
            vectors.append(
                Vector(
                    line: number + 1, cmg: cmg,
                    characteristics: CMGCharacteristics(cmg: cmg, cmcb: cmcb, full: fields[1] == "1"),
                    a: try sample(fields[3], fields[4]), b: try sample(fields[5], fields[6]), expected: expected))
        }
        return vectors
    }

    @Test func everyMetricHasChpstatsBits() throws {
        let vectors = try Self.vectors()
        #expect(vectors.count == 1000)
        var compared = 0
        for vector in vectors {
            let got = MeasurementFormulas.chpstat(
                vector.cmg, characteristics: vector.characteristics, from: vector.a, to: vector.b)
            #expect(got.map(\.key) == vector.expected.map(\.0), "line \(vector.line): keys")
            for (value, (key, expected)) in zip(got, vector.expected) {
                let mine = value.value?.doubleValue
                switch (mine, expected) {
                case (nil, nil): break
                case (let mine?, let expected?) where mine.isNaN && expected.isNaN: compared += 1
                case (let mine?, let expected?):
                    #expect(
                        mine.bitPattern == expected.bitPattern,
                        "line \(vector.line) \(key): \(mine) vs chpstat \(expected)")
                    compared += 1
                default:
                    Issue.record(
                        "line \(vector.line) \(key): \(String(describing: mine)) vs chpstat \(String(describing: expected))"
                    )
                }
            }
        }
        // Most vectors have an interval: thousands of values compared, not a handful.
        #expect(compared > 5000)
    }
}
