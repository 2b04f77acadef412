// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import NIOCore
import QMPWire
import Testing

@testable import PathEvents
@testable import QMPServer

@Suite("path event text")
struct PathEventEncoderTests {
    private static let time = EventTime(seconds: 1_795_000_000, microseconds: 42)

    private static func queued(_ event: PathEvent) -> PathEventDelivery {
        .event(QueuedPathEvent(sequence: 7, time: time, event: event, change: 1_234_567_890_123))
    }

    static let deliveries: [PathEventDelivery] = [
        queued(
            .channelPath(
                ChannelPathEvent(
                    chpid: ChannelPathID(cssid: 0, chpid: 0x4a), change: .offline, vary: .offline,
                    configure: .configured,
                    subchannels: 42, crw: nil))),
        queued(
            .channelPath(
                ChannelPathEvent(
                    chpid: ChannelPathID(cssid: 0xfe, chpid: 0), change: .permanentError, vary: .online,
                    configure: .notRecognized,
                    subchannels: 0, crw: 0x5406_0040))),
        queued(
            .subchannel(
                SubchannelPathEvent(
                    subchannel: SubchannelID(cssid: 0, ssid: 3, schno: 0xffff),
                    device: DeviceID(cssid: 0, ssid: 3, devno: 0x1234),
                    chpid: ChannelPathID(cssid: 0, chpid: 0x40), change: .temporaryError, pim: 0xff, pam: 0x80, pom: 0,
                    lpm: 1,
                    pnom: 0x7f))),
        queued(
            .subchannel(
                SubchannelPathEvent(
                    subchannel: SubchannelID(cssid: 1, ssid: 0, schno: 1), device: nil,
                    chpid: ChannelPathID(cssid: 1, chpid: 0xff), change: .reset, pim: 0, pam: 0, pom: 0, lpm: 0, pnom: 0
                ))),
        .event(
            QueuedPathEvent(
                sequence: 1, time: EventTime(seconds: 0, microseconds: 999_999),
                event: .channelPath(
                    ChannelPathEvent(
                        chpid: ChannelPathID(cssid: 0x10, chpid: 0x0a), change: .recovered, vary: .online,
                        configure: .standby,
                        subchannels: 65_536, crw: 0xffff_ffff)), change: 0)),
        .event(
            QueuedPathEvent(
                sequence: 3, time: time, event: .gap(PathEventGap(first: 5, last: 9, reason: .journal)), change: 4)),
        .dropped(123_456),
    ]

    /// The direct writer's line is exactly what the generic encoder makes of the reference data.
    @Test(arguments: deliveries)
    func matchesGenericEncoder(_ delivery: PathEventDelivery) {
        var fast = ByteBuffer()
        var encoder = PathEventEncoder(epoch: "0123456789abcdef")
        // Twice: the second line reuses the kept timestamp.
        encoder.write(delivery, subscription: 99, clock: { Self.time }, to: &fast)
        fast.clear()
        encoder.write(delivery, subscription: 99, clock: { Self.time }, to: &fast)
        var reference = ByteBuffer()
        var time = Self.time
        if case .event(let queued) = delivery { time = queued.time }
        ReplyEncoder.writeEvent(
            PathEventEncoder.name(delivery),
            data: PathEventEncoder.data(delivery, subscription: 99, epoch: "0123456789abcdef"),
            seconds: time.seconds, microseconds: time.microseconds, to: &reference)
        #expect(fast.readString(length: fast.readableBytes) == reference.readString(length: reference.readableBytes))
    }

    /// epoch and sequence close every path event's data, after the members QEMU-style clients
    /// already know (a client that compares the leading members byte for byte keeps working).
    @Test func epochAndSequenceComeLast() {
        var out = ByteBuffer()
        var encoder = PathEventEncoder(epoch: "00000000000000aa")
        encoder.write(Self.deliveries[0], subscription: 1, clock: { Self.time }, to: &out)
        let line = out.readString(length: out.readableBytes)!
        let tail = #""subchannels": 42, "epoch": "00000000000000aa", "sequence": 1234567890123}}"#
        #expect(line.hasSuffix(tail + "\r\n"))
    }
}
