// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import ChpstatView
import Foundation

/// A `ChpstatSource` over a fixture's sysfs trees (Tests/fixtures/chpstat/trees/<tree>/s<N>),
/// read as chpstat reads sysfs, and moving on as the golden shim moves chpstat on: each sleep
/// goes to the next sample while there is one, and the clock is 1765000000 plus the seconds
/// slept. So the view sees exactly what chpstat saw when the goldens were made.
final class SysfsFixtureSource: ChpstatSource {
    static let epoch = 1_765_000_000

    private let samples: String
    private var sample = 0
    private var slept = 0
    /// What `--enable`/`--disable` wrote (the committed tree stays as it is).
    private var written: Bool?
    /// How often chpstat slept (a run that waits for data that never comes would loop).
    private(set) var sleeps = 0

    /// After this many sleeps, `interrupted` (a signal arrived during the last one).
    var interruptAfterSleeps: Int?

    init(tree: String) {
        samples = tree
    }

    var interrupted: Bool { interruptAfterSleeps.map { sleeps >= $0 } ?? false }

    private var css: String { "\(samples)/s\(sample)/devices/css0" }

    private func text(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        var text = String(decoding: data, as: UTF8.self)
        while text.hasSuffix("\n") { text.removeLast() }
        return text
    }

    private func bytes(_ path: String, count: Int) -> [UInt8]? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return Array(data.prefix(count))
    }

    private func required(_ path: String) throws(ChpstatExit) -> String {
        guard let value = text(path) else { throw .runtime("Unable to read file '\(path)'") }
        return value
    }

    func facility() throws(ChpstatExit) -> ChpstatFacility {
        if let written { return written ? .enabled : .disabled }
        guard let value = text("\(css)/cm_enable") else { return .unsupported }
        return Int(value) == 0 ? .disabled : .enabled
    }

    func setFacility(enabled: Bool) throws(ChpstatExit) { written = enabled }

    func channelPath(_ chpid: Int) throws(ChpstatExit) -> ChpstatChannelPath? {
        let directory = "\(css)/chp0.\(String(format: "%02x", chpid))"
        guard FileManager.default.fileExists(atPath: directory) else { return nil }
        let cmg = try required("\(directory)/cmg")
        let type = try required("\(directory)/type")
        let shared = try required("\(directory)/shared")
        let speed = text("\(directory)/speed_bps")
        return ChpstatChannelPath(
            cmg: cmg == "unknown" ? nil : Int(atoi(cmg)), type: strtol(type, nil, 16), shared: strtol(shared, nil, 10),
            speed: speed == "0" ? nil : speed)
    }

    func characteristics(_ chpid: Int) throws(ChpstatExit) -> ChpstatCharacteristics {
        let directory = "\(css)/chp0.\(String(format: "%02x", chpid))"
        if let full = bytes("\(directory)/measurement_chars_full", count: 32) {
            return ChpstatCharacteristics(cmcb: full, full: true)
        }
        guard let view = bytes("\(directory)/measurement_chars", count: 20), view.count == 20 else {
            throw .runtime("Unable to read file '\(directory)/measurement_chars'")
        }
        return ChpstatCharacteristics(cmcb: Array(repeating: 0, count: 12) + view, full: false)
    }

    func entries(_ chpid: Int) throws(ChpstatExit) -> ChpstatEntries {
        let directory = "\(css)/chp0.\(String(format: "%02x", chpid))"
        guard let cue = bytes("\(directory)/measurement", count: 32), cue.count == 32 else {
            throw .runtime("Unable to read file '\(directory)/measurement'")
        }
        guard let extended = bytes("\(directory)/ext_measurement", count: 64) else {
            return ChpstatEntries(cue: cue, extendedCUE: nil, extendedMissing: true)
        }
        return ChpstatEntries(cue: cue, extendedCUE: extended.count == 64 ? extended : nil)
    }

    func sleep(seconds: Int) {
        slept += seconds
        sleeps += 1
        // chpstat waits a second at a time for new data; a view that never sees any would spin.
        precondition(sleeps < 1000, "waited for new measurement data that never came")
        if FileManager.default.fileExists(atPath: "\(samples)/s\(sample + 1)") { sample += 1 }
    }

    func now() -> Int { Self.epoch + slept }
}
