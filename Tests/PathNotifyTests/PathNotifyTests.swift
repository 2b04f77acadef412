// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import JSONValues
import PathChangePipeline
import PathEvents
import Testing

@testable import PathNotify

private func published(_ chpid: String, _ state: VaryState, publisher: PathChangePublisher, subsystem: inout Subsystem)
    -> PublishedPathChange
{
    let change = try! subsystem.varyPath(try! ChannelPathID(parsing: chpid), to: state)
    return publisher.publish(change, as: PathEventChange(state), cause: .command(by: .connection(1)))!
}

@Suite struct BrokerAddressTests {
    @Test func parsesSchemesPortsAndVhosts() throws {
        let plain = try BrokerAddress(parsing: "amqp://127.0.0.1:5673/%2F")
        #expect(!plain.tls && plain.host == "127.0.0.1" && plain.port == 5673 && plain.vhost == "/")
        let tls = try BrokerAddress(parsing: "amqps://broker.example")
        #expect(tls.tls && tls.port == 5671 && tls.vhost == "/")
        let named = try BrokerAddress(parsing: "amqp://[::1]:1234/fleet%2Fa")
        #expect(named.host == "::1" && named.port == 1234 && named.vhost == "fleet/a")
        #expect(named.description == "amqp://[::1]:1234/fleet%2Fa")
    }

    @Test func refusesCredentialsAndBadInput() {
        #expect(throws: NotifyConfigurationError.self) { try BrokerAddress(parsing: "amqp://guest:guest@localhost/") }
        #expect(throws: NotifyConfigurationError.self) { try BrokerAddress(parsing: "http://localhost/") }
        #expect(throws: NotifyConfigurationError.self) { try BrokerAddress(parsing: "amqp://localhost:99999/") }
        #expect(throws: NotifyConfigurationError.self) { try BrokerAddress(parsing: "amqp://localhost/%zz") }
    }

    @Test func credentialsHideThePassword() {
        let credentials = BrokerCredentials(username: "cssd", password: "s3cret")
        #expect(!"\(credentials)".contains("s3cret"))
    }
}

@Suite struct OsloNotificationTests {
    @Test func envelopeAndMessageHaveOslosShape() throws {
        var subsystem = try Subsystem(topology: .embeddedDefault)
        let publisher = PathChangePublisher()
        let change = published("0.40", .offline, publisher: publisher, subsystem: &subsystem)
        let encoder = OsloNotificationEncoder(publisherID: "cssd.host1", topic: "notifications", filter: NotifyFilter())
        let notifications = encoder.notifications(for: change, epoch: "e1")
        #expect(notifications.count == 1)
        let notification = try #require(notifications.first)
        #expect(notification.routingKey == "notifications.warn")
        let envelope = try #require(JSON.parse(String(decoding: notification.body, as: UTF8.self)))
        #expect(envelope["oslo.version"]?.stringValue == "2.0")
        let inner = try #require(envelope["oslo.message"]?.stringValue)
        let message = try #require(JSON.parse(inner))
        #expect(message["publisher_id"]?.stringValue == "cssd.host1")
        #expect(message["event_type"]?.stringValue == "cssd.path.offline")
        #expect(message["priority"]?.stringValue == "WARN")
        #expect(message["message_id"]?.stringValue == notification.messageID)
        let payload = try #require(message["payload"])
        #expect(payload["chpid"]?.stringValue == "0.40")
        #expect(payload["sequence"]?.intValue == 1)
        #expect(payload["epoch"]?.stringValue == "e1")
        #expect(payload["subchannels"]?.intValue == 42)
        let timestamp = try #require(message["timestamp"]?.stringValue)
        #expect(timestamp.count == 26 && timestamp.dropFirst(10).first == " ")

        let back = published("0.40", .online, publisher: publisher, subsystem: &subsystem)
        #expect(encoder.notifications(for: back, epoch: "e1").first?.routingKey == "notifications.info")
    }

    /// linux-sysfs: granularity guest also tells the guests holding mdevs, one each per change.
    @Test func hostGuestsGetOneNotificationEach() throws {
        var subsystem = try Subsystem(topology: .embeddedDefault)
        let chpid = try ChannelPathID(parsing: "0.40")
        let onPath = subsystem.subchannels.filter { $0.channelPaths.contains(chpid) }.map(\.id)
        let view = HostPassthroughView(
            subchannels: onPath.enumerated().map { n, id in
                HostPassthrough(
                    subchannel: id,
                    mdev: MediatedDevice(
                        uuid: "m\(n)", state: .active, iommuGroup: n, holder: .libvirt(domain: "db-1", pid: 4100)))
            })
        let publisher = PathChangePublisher(hostPassthrough: { view })
        let change = published("0.40", .offline, publisher: publisher, subsystem: &subsystem)
        let encoder = OsloNotificationEncoder(
            publisherID: "cssd.host1", topic: "notifications",
            filter: try NotifyFilter(granularity: "guest", chpids: nil, changes: nil))
        let notifications = encoder.notifications(for: change, epoch: "e1")
        #expect(notifications.count == 1)
        let notification = try #require(notifications.first)
        let envelope = try #require(JSON.parse(String(decoding: notification.body, as: UTF8.self)))
        let inner = try #require(envelope["oslo.message"]?.stringValue)
        let message = try #require(JSON.parse(inner))
        #expect(message["event_type"]?.stringValue == "cssd.host_guest.offline")
        #expect(message["payload"]?["guest"]?.stringValue == "db-1")
        #expect(message["payload"]?["devices"]?.intValue == onPath.count)
    }

    @Test func aScenarioStepIsTheCauseWithItsNames() throws {
        var subsystem = try Subsystem(topology: .embeddedDefault)
        let publisher = PathChangePublisher()
        let change = try subsystem.injectPathFault(try ChannelPathID(parsing: "0.41"), .permanentError)
        let step = try #require(
            publisher.publish(
                change, as: .permanentError, cause: .command(by: .scenario(name: "switch-failure", step: "down"))))
        let encoder = OsloNotificationEncoder(publisherID: "p", topic: "t", filter: NotifyFilter())
        let notification = try #require(encoder.notifications(for: step, epoch: "e").first)
        let envelope = try #require(JSON.parse(String(decoding: notification.body, as: UTF8.self)))
        let inner = try #require(envelope["oslo.message"]?.stringValue)
        let message = try #require(JSON.parse(inner))
        let payload = try #require(message["payload"])
        #expect(payload["cause"]?.stringValue == "scenario")
        #expect(payload["scenario"]?.stringValue == "switch-failure")
        #expect(payload["step"]?.stringValue == "down")
    }

    @Test func filterPicksGranularityChpidsAndChanges() throws {
        var subsystem = try Subsystem(topology: .embeddedDefault)
        let publisher = PathChangePublisher()
        let change = published("0.40", .offline, publisher: publisher, subsystem: &subsystem)
        let both = OsloNotificationEncoder(
            publisherID: "p", topic: "t", filter: try NotifyFilter(granularity: "both", chpids: nil, changes: nil))
        let all = both.notifications(for: change, epoch: "e")
        #expect(all.count == 43)
        #expect(all.allSatisfy { $0.sequence == 1 })
        let other = OsloNotificationEncoder(
            publisherID: "p", topic: "t", filter: try NotifyFilter(granularity: nil, chpids: "0.41", changes: nil))
        #expect(other.notifications(for: change, epoch: "e").isEmpty)
        let onlineOnly = OsloNotificationEncoder(
            publisherID: "p", topic: "t", filter: try NotifyFilter(granularity: nil, chpids: nil, changes: "online"))
        #expect(onlineOnly.notifications(for: change, epoch: "e").isEmpty)
        #expect(throws: NotifyConfigurationError.self) {
            try NotifyFilter(granularity: "nope", chpids: nil, changes: nil)
        }
    }
}

@Suite struct NotificationOutboxTests {
    private func entry(_ sequence: UInt64, size: Int = 10) -> OsloNotification {
        OsloNotification(
            sequence: sequence, routingKey: "k", messageID: "m\(sequence)", body: Array(repeating: 0x20, count: size))
    }

    @Test func overflowBecomesMergedGapRanges() {
        let outbox = NotificationOutbox(maxEvents: 2, maxBytes: 1000)
        #expect(outbox.append([entry(1)], sequence: 1))
        #expect(outbox.append([entry(2)], sequence: 2))
        #expect(!outbox.append([entry(3)], sequence: 3))
        #expect(!outbox.append([entry(4)], sequence: 4))
        #expect(!outbox.append([entry(6)], sequence: 6))
        #expect(outbox.counters.dropped == 3)
        #expect(outbox.counters.pendingGap == [3...4, 6...6])
        outbox.confirm(1)
        #expect(outbox.counters.depth == 1 && outbox.counters.bytes == 10 && outbox.counters.confirmed == 1)
        #expect(outbox.peek(from: 0, count: 5).map(\.sequence) == [2])
        let gap = outbox.takeGap()
        #expect(gap?.ranges == [3...4, 6...6] && gap?.dropped == 3)
        #expect(outbox.takeGap() == nil)
        outbox.restoreGap(gap!)
        #expect(outbox.counters.pendingGap == [3...4, 6...6])
    }

    @Test func byteBoundRefusesAWholeChange() {
        let outbox = NotificationOutbox(maxEvents: 100, maxBytes: 25)
        #expect(outbox.append([entry(1)], sequence: 1))
        #expect(!outbox.append([entry(2), entry(2)], sequence: 2))
        #expect(outbox.counters.depth == 1 && outbox.counters.dropped == 2)
    }
}
