// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import ChpstatView
import Foundation
import TestSupport
import Testing

/// One case of Tests/fixtures/chpstat/cases.json: chpstat's arguments over a fixture tree.
struct GoldenCase: Decodable, CustomTestStringConvertible, Sendable {
    let name: String
    let tree: String
    let args: [String]
    let env: [String: String]?
    /// cssctl chpstat prints something else on purpose (expected/<name>.stdout).
    let deviation: Bool?
    /// Standard output was a terminal (ANSI codes in the table).
    let tty: Bool?

    var testDescription: String { name }

    static let directory = Repository.fixtures + "/chpstat"

    static let all: [GoldenCase] = {
        let data = FileManager.default.contents(atPath: directory + "/cases.json")!
        return try! JSONDecoder().decode([GoldenCase].self, from: data)
    }()

    func golden(_ suffix: String) -> String {
        String(
            decoding: FileManager.default.contents(atPath: "\(Self.directory)/golden/\(name).\(suffix)")!, as: UTF8.self
        )
    }

    /// What cssctl chpstat must print: the golden, or for a deviation the corrected output.
    var expectedStandardOutput: String {
        guard deviation == true else { return golden("stdout") }
        let path = "\(Self.directory)/expected/\(name).stdout"
        return String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
    }
}

/// The result of one run of the view.
struct ChpstatRun {
    var status: Int32
    var standardOutput: String
    var standardError: String
}

/// `%F`, `%T%z` ... in UTC, as the goldens were made (TZ=UTC).
func utcTime(_ epoch: Int, _ format: String) -> String {
    var seconds = time_t(epoch)
    var parts = tm()
    gmtime_r(&seconds, &parts)
    var buffer = [CChar](repeating: 0, count: 64)
    let count = strftime(&buffer, buffer.count, format, &parts)
    return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Runs the view as the goldens ran chpstat: program name `chpstat`, host `goldenhost`, the
/// version the golden build printed, UTC.
func runView(_ golden: GoldenCase, arguments: [String]? = nil, interruptAfterSleeps: Int? = nil) -> ChpstatRun {
    var output = ""
    var errors = ""
    let source = SysfsFixtureSource(tree: "\(GoldenCase.directory)/trees/\(golden.tree)")
    source.interruptAfterSleeps = interruptAfterSleeps
    let environment = ChpstatEnvironment(
        programName: "chpstat", version: "2.43.0-build-20261207", hostName: "goldenhost", localTime: utcTime,
        hideMeta: golden.env?["FMT_NOMETA"] == "1", terminal: golden.tty == true,
        standardOutput: { output += $0 }, standardError: { errors += $0 })
    var chpstat = Chpstat(source: source, environment: environment)
    let status = chpstat.run(arguments ?? golden.args)
    return ChpstatRun(status: status, standardOutput: output, standardError: errors)
}

@Suite struct ChpstatGoldenTests {
    /// Every case: the same exit status, standard output and standard error as chpstat v2.43.0
    /// (the version string is the golden build's, so even `meta.version` matches); for the
    /// documented deviations, the corrected output.
    @Test(arguments: GoldenCase.all)
    func matchesGolden(_ golden: GoldenCase) {
        let run = runView(golden)
        // CHPSTAT_WRITE_EXPECTED=1 writes the corrected outputs of the deviations (review their
        // difference from the golden before committing them; README.md lists what may differ).
        if golden.deviation == true, ProcessInfo.processInfo.environment["CHPSTAT_WRITE_EXPECTED"] == "1" {
            let directory = GoldenCase.directory + "/expected"
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            FileManager.default.createFile(
                atPath: "\(directory)/\(golden.name).stdout", contents: Data(run.standardOutput.utf8))
        }
        #expect(run.status == Int32(golden.golden("exit").trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(run.standardOutput == golden.expectedStandardOutput)
        #expect(run.standardError == golden.golden("stderr"))
    }

    /// A deviation differs from chpstat's golden, and only in lines that chpstat got wrong.
    @Test(arguments: GoldenCase.all.filter { $0.deviation == true })
    func deviationsAreWhereChpstatIsWrong(_ golden: GoldenCase) {
        let theirs = golden.golden("stdout").split(separator: "\n", omittingEmptySubsequences: false)
        let ours = golden.expectedStandardOutput.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(theirs != ours)
        #expect(theirs.count == ours.count)
        for (their, our) in zip(theirs, ours) where their != our {
            // chpstat printed inf/nan, or a CSV row carried a speed over from the row before.
            #expect(their.contains("inf") || their.contains("nan") || golden.name.hasSuffix("csv"), "\(their)")
        }
    }

    /// Without -n, a signal during the wait after the second report ends the run with the JSON
    /// closed as chpstat's FMT_HANDLEINT closes it: the same bytes as `-n 2`.
    @Test(arguments: ["json", "jsonl", "json-seq"])
    func signalClosesJSON(_ name: String) {
        let golden = GoldenCase.all.first { $0.name == name }!
        // The wait for the first data, then the pause after report 0, then the one after report 1.
        let run = runView(golden, arguments: ["--format", name], interruptAfterSleeps: 3)
        #expect(run.status == -1)
        #expect(run.standardOutput == golden.golden("stdout"))
    }
}
