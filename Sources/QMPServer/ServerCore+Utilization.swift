// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import ChannelMeasurement
import NIOCore
import PathEvents

extension ServerCore {
    /// How often the latest utilizations are held against the subscriptions' thresholds: the
    /// machine updates its measurement entries every few seconds (the model every 2 s,
    /// linux-sysfs once per poll tick), so once a second sees each update soon after it.
    static let utilizationInterval = TimeAmount.seconds(1)

    /// Holds every chpid's latest metrics against the utilization thresholds of the
    /// subscriptions (`PathEventHub.publishUtilization`) and wakes the connections that got
    /// CHANNEL_PATH_UTILIZATION events. Nothing to do (and no backend call) while no
    /// subscription watches utilization. On the loop; the backend's query never blocks (the
    /// model computes, linux-sysfs reports its last poll tick). O(chpids × watching
    /// subscriptions).
    func evaluateUtilization() {
        loop.preconditionInEventLoop()
        guard state.pathEvents.watchesUtilization else { return }
        // Unsupported or off: every chpid is forgotten (starts below again).
        let reports = (try? state.backend.channelMeasurements(nil, at: state.measurementClock())) ?? []
        var utilizations: [ChannelPathID: [String: Double?]] = [:]
        for report in reports {
            guard let metrics = report.metrics else { continue }
            var values: [String: Double?] = [:]
            for metric in UtilizationMetric.allCases {
                values[metric.rawValue] = metrics[metric.rawValue].map { $0.doubleValue }
            }
            utilizations[report.chpid] = values
        }
        let reached = state.pathEvents.publishUtilization(utilizations, at: state.clock())
        for owner in reached.owners { wakeConnection(owner) }
    }
}
