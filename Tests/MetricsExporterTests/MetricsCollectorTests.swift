// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import PathChangePipeline
import PathEvents
import Prometheus
import QMPCommands
import Testing
import VFIOCCW

@testable import MetricsExporter

/// The scrape-time collector over a real server state (the model of the embedded topology):
/// what the registry renders after path operations and a guest's strategy change.
@Suite struct MetricsCollectorTests {
    /// `name{labels}` -> value, from the text format.
    static func samples(_ registry: PrometheusCollectorRegistry) -> [String: Double] {
        var text: [UInt8] = []
        registry.emit(into: &text)
        var samples: [String: Double] = [:]
        for line in String(decoding: text, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
            let space = line.lastIndex(of: " ")!
            samples[String(line[..<space])] = Double(line[line.index(after: space)...])!
        }
        return samples
    }

    static func chp(_ text: String) -> ChannelPathID { try! ChannelPathID(parsing: text) }

    @Test func stateSetsCountsAndGuestsFollowTheState() throws {
        let subsystem = try Subsystem(topology: .embeddedDefault)
        let state = try ServerState.standard(
            backend: nil, guests: try Guests(topology: .embeddedDefault, host: subsystem))
        let registry = PrometheusCollectorRegistry()
        let collector = MetricsCollector(registry: registry, version: "9.9.9", backend: state.backend.name)
        collector.collect(
            subsystem: state.subsystem, backend: state.backend, pathEvents: state.pathEvents.totals(),
            guests: state.guests)
        var now = Self.samples(registry)
        #expect(now[#"cssd_build_info{version="9.9.9"}"#] == 1)
        #expect(now[#"cssd_backend_info{backend="model"}"#] == 1)
        // Every chpid: each state set has exactly one state at 1, and 11 series in all.
        for path in state.subsystem.channelPaths {
            let chpid = #"chpid="\#(path.id)""#
            for set in ["vary", "configure", "condition"] {
                let values = now.filter { $0.key.hasPrefix("cssd_chpid_\(set)_state{\(chpid),") }.map(\.value)
                #expect(values.sorted().last == 1 && values.reduce(0, +) == 1, "\(path.id) \(set)")
            }
            #expect(now.keys.count { $0.contains(chpid + ",") || $0.contains(chpid + "}") } == 11)
        }
        #expect(now[#"cssd_css_subchannels_without_operational_path{cssid="0"}"#] == 0)
        #expect(now[#"cssd_guest_crws_queued_total{guest="guest1",strategy="crw"}"#] == 0)

        _ = try state.backend.configurePath(Self.chp("0.60"), to: .standby)
        _ = try state.backend.varyPath(Self.chp("0.40"), to: .offline)
        state.pathChanges.register(collector, as: .metrics)
        state.pathChanges.publish(
            try state.backend.configurePath(Self.chp("0.41"), to: .standby), as: .standby,
            cause: .command(by: .connection(1)))
        try state.guests.setStrategy(.perDevice, of: "guest1")
        collector.collect(
            subsystem: state.subsystem, backend: state.backend, pathEvents: state.pathEvents.totals(),
            guests: state.guests)
        now = Self.samples(registry)
        #expect(now[#"cssd_chpid_configure_state{chpid="0.60",state="standby"}"#] == 1)
        #expect(now[#"cssd_chpid_configure_state{chpid="0.60",state="configured"}"#] == 0)
        #expect(now[#"cssd_chpid_vary_state{chpid="0.40",state="offline"}"#] == 1)
        // The OSA devices have 0.60 only; the DASDs on 0.40-0.43 keep 0.42 and 0.43.
        #expect(now[#"cssd_css_subchannels_without_operational_path{cssid="0"}"#] == 3)
        // "Path gone" for 0.60 and 0.41, each two words (MCSSE chains the cssid word).
        #expect(now[#"cssd_css_crws_queued{cssid="0"}"#] == 4)
        // Only the published change was counted, by the pipeline's sink.
        #expect(now[#"cssd_path_changes_total{change="standby",cause="command"}"#] == 1)
        #expect(now.keys.count { $0.hasPrefix("cssd_path_changes_total") } == 1)
        // The guest's counters moved to its new strategy's label; the old series are gone.
        #expect(now[#"cssd_guest_crws_queued_total{guest="guest1",strategy="per-device"}"#] == 1)
        #expect(now[#"cssd_guest_crws_queued_total{guest="guest1",strategy="crw"}"#] == nil)
    }
}
