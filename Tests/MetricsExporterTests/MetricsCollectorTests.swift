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
        // Every chpid: each state set has exactly one state at 1, and 14 series in all, 8 more
        // (cssd_chpid_dasd_devices and cssd_chpid_dasd_paths per state) with the model's DASDs
        // behind it (0.40-0.4d).
        let withDASDs = Set(state.backend.dasdChannelPathSummaries.keys)
        #expect(withDASDs == Set((0x40...0x4d).map { ChannelPathID(cssid: 0, chpid: UInt8($0)) }))
        for path in state.subsystem.channelPaths {
            let chpid = #"chpid="\#(path.id)""#
            for set in ["vary", "configure", "condition"] {
                let values = now.filter { $0.key.hasPrefix("cssd_chpid_\(set)_state{\(chpid),") }.map(\.value)
                #expect(values.sorted().last == 1 && values.reduce(0, +) == 1, "\(path.id) \(set)")
            }
            #expect(
                now.keys.count { $0.contains(chpid + ",") || $0.contains(chpid + "}") }
                    == 14 + (withDASDs.contains(path.id) ? 8 : 0))
        }
        #expect(now[#"cssd_css_subchannels_without_operational_path{cssid="0"}"#] == 0)
        // Redundancy from the start: 0.0.3000-3001 run on 0.4c alone (0.4d in standby); the
        // OSA triple on 0.60 was installed with one path (single, but no redundancy lost).
        #expect(now[#"cssd_chpid_online_devices_single_path{chpid="0.4c"}"#] == 2)
        #expect(now[#"cssd_chpid_online_devices_redundancy_lost{chpid="0.4c"}"#] == 2)
        #expect(now[#"cssd_chpid_online_devices_single_path{chpid="0.60"}"#] == 3)
        #expect(now[#"cssd_chpid_online_devices_redundancy_lost{chpid="0.60"}"#] == 0)
        #expect(now[#"cssd_css_online_devices_single_path{cssid="0"}"#] == 5)
        #expect(now[#"cssd_css_online_devices_single_path{cssid="fe"}"#] == 4)
        #expect(now[#"cssd_css_online_devices_without_path{cssid="0"}"#] == 0)
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
        // They are online devices: without a path now, counted on 0.60 and in css 0.
        #expect(now[#"cssd_chpid_online_devices_without_path{chpid="0.60"}"#] == 3)
        #expect(now[#"cssd_chpid_online_devices_single_path{chpid="0.60"}"#] == 0)
        #expect(now[#"cssd_css_online_devices_without_path{cssid="0"}"#] == 3)
        #expect(now[#"cssd_css_online_devices_single_path{cssid="0"}"#] == 2)
        // "Path gone" for 0.60 and 0.41, each two words (MCSSE chains the cssid word).
        #expect(now[#"cssd_css_crws_queued{cssid="0"}"#] == 4)
        // Only the published change was counted, by the pipeline's sink.
        #expect(now[#"cssd_path_changes_total{change="standby",cause="command"}"#] == 1)
        // Every kind and cause is there from the start, at 0 but this one.
        #expect(now.keys.count { $0.hasPrefix("cssd_path_changes_total") } == PathEventChange.allCases.count * 2)
        #expect(now.filter { $0.key.hasPrefix("cssd_path_changes_total") && $0.value != 0 }.count == 1)
        // The guest's counters moved to its new strategy's label; the old series are gone.
        #expect(now[#"cssd_guest_crws_queued_total{guest="guest1",strategy="per-device"}"#] == 1)
        #expect(now[#"cssd_guest_crws_queued_total{guest="guest1",strategy="crw"}"#] == nil)
    }
}
