// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import Prometheus

/// Per guest holding vfio-ccw mdevs on a Linux host (`ChannelSubsystemBackend.hostPassthrough`,
/// issue 24): `cssd_host_guest_passthrough_devices{guest}` and
/// `cssd_host_guest_passthrough_without_path_devices{guest}` (no path available, operational
/// and online on the host: the guest's STSCH would show none). Labelled by guest name, which
/// the number of guests bounds; never by subchannel. A guest no longer seen loses its series.
extension MetricsCollector {
    struct HostGuestSeries {
        let devices: Gauge
        let withoutPath: Gauge

        func unregister(from registry: PrometheusCollectorRegistry) {
            registry.unregisterGauge(devices)
            registry.unregisterGauge(withoutPath)
        }
    }

    func collectHostGuests(_ backend: ChannelSubsystemBackend, _ subsystem: Subsystem) {
        let guests = backend.hostPassthrough?.guests ?? []
        var seen = Set<String>()
        for (name, subchannels) in guests {
            seen.insert(name)
            let series = hostGuests[name] ?? makeHostGuestSeries(name)
            series.devices.set(to: Double(subchannels.count))
            let without = subchannels.count { subsystem.subchannel($0.subchannel)?.operationalPaths.mask ?? 0 == 0 }
            series.withoutPath.set(to: Double(without))
            hostGuests[name] = series
        }
        for (name, series) in hostGuests where !seen.contains(name) {
            series.unregister(from: registry)
            hostGuests[name] = nil
        }
    }

    private func makeHostGuestSeries(_ name: String) -> HostGuestSeries {
        func gauge(_ metric: String, _ help: String) -> Gauge {
            registry.makeGauge(
                descriptor: .init(
                    namespace: "cssd", subsystem: "host_guest", metricName: metric, unitName: "devices",
                    helpText: help),
                labels: [("guest", name)])
        }
        return HostGuestSeries(
            devices: gauge("passthrough", "vfio-ccw mdevs the guest holds on this host (linux-sysfs)."),
            withoutPath: gauge(
                "passthrough_without_path",
                "Of those, the devices with no path available, operational and online on the host."))
    }
}
