// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Prometheus
import Testing

@testable import MetricsExporter

@Suite struct ExpositionTests {
    @Test(arguments: [
        ([], ExpositionFormat.text),
        (["*/*"], .text),
        (["text/plain"], .text),
        (["application/openmetrics-text"], .openMetrics),
        // What Prometheus 2.42 sends.
        (
            [
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                    + "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            ], .openMetrics
        ),
        (["text/plain;q=0.9, application/openmetrics-text;q=0.5"], .text),
        (["application/openmetrics-text;q=0"], .text),
        (["application/json"], .text),
        (["Application/OpenMetrics-Text ; q=1", "text/plain;q=1"], .openMetrics),
    ])
    func negotiation(accept: [String], expected: ExpositionFormat) {
        #expect(ExpositionFormat(accept: accept) == expected)
    }

    /// swift-prometheus' text output for a counter, a gauge, an info gauge and a histogram,
    /// turned into OpenMetrics: only the counter's and info's family names and types change.
    @Test func openMetricsFraming() {
        let registry = PrometheusCollectorRegistry()
        registry.makeCounter(
            descriptor: .init(
                namespace: "cssd", subsystem: "css", metricName: "crws_lost", unitName: "total", helpText: "Lost."),
            labels: [("cssid", "0")]
        ).increment(by: Int64(3))
        registry.makeGauge(
            descriptor: .init(namespace: "cssd", metricName: "chpid", unitName: "info", helpText: "A path."),
            labels: [("chpid", "0.40"), ("type", "1b")]
        ).set(to: 1)
        registry.makeGauge(
            descriptor: .init(
                namespace: "cssd", subsystem: "css", metricName: "subchannels", unitName: "", helpText: "Count."),
            labels: [("cssid", "0")]
        ).set(to: 55)
        registry.makeDurationHistogram(
            descriptor: .init(namespace: "cssd", metricName: "d", unitName: "seconds", helpText: "Time."),
            labels: [], buckets: [.milliseconds(1)]
        ).record(.microseconds(10))
        var text: [UInt8] = []
        registry.emit(into: &text)
        let openMetrics = String(decoding: ExpositionFormat.openMetrics(from: text), as: UTF8.self)
        let lines = openMetrics.split(separator: "\n").map(String.init)
        #expect(lines.last == "# EOF")
        #expect(lines.contains("# HELP cssd_css_crws_lost Lost."))
        #expect(lines.contains("# TYPE cssd_css_crws_lost counter"))
        #expect(lines.contains(#"cssd_css_crws_lost_total{cssid="0"} 3"#))
        #expect(lines.contains("# TYPE cssd_chpid info"))
        #expect(lines.contains("# HELP cssd_chpid A path."))
        #expect(lines.contains(#"cssd_chpid_info{chpid="0.40",type="1b"} 1.0"#))
        #expect(lines.contains("# TYPE cssd_css_subchannels gauge"))
        #expect(lines.contains("# TYPE cssd_d_seconds histogram"))
        #expect(lines.contains(#"cssd_d_seconds_bucket{le="+Inf"} 1"#))
        // Samples are unchanged: every non-comment line of the text format is there.
        let samples = String(decoding: text, as: UTF8.self).split(separator: "\n").filter { !$0.hasPrefix("#") }
        for sample in samples { #expect(lines.contains(String(sample))) }
    }
}
