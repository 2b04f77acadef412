// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// Where Linux puts the channel subsystem's objects in sysfs: the one place that turns a
/// chpid or subchannel id into its directory, for the readings (`SysfsMirror`) and the writes
/// (`SysfsBackend`) alike (drivers/s390/cio/css.c `css%x`, `0.%x.%04x`; chp.c `chp%x.%02x`).
struct SysfsPaths: Sendable {
    /// The directory that holds `devices/` and `bus/` (`/sys`).
    let root: String

    /// `ROOT/devices/cssN`, N the css id in hex.
    func css(_ cssid: UInt8) -> String {
        root + "/devices/css" + Hex.string(cssid)
    }

    /// `ROOT/devices/cssN/chpN.XX`.
    func channelPath(_ id: ChannelPathID) -> String {
        css(id.cssid) + "/" + Self.channelPathName(id)
    }

    /// `ROOT/devices/cssN/0.S.XXXX`.
    func subchannel(_ id: SubchannelID) -> String {
        css(id.cssid) + "/" + Self.subchannelName(id)
    }

    /// `chp0.4a`: a `ChannelPathID` prints in Linux's notation.
    static func channelPathName(_ id: ChannelPathID) -> String {
        "chp\(id)"
    }

    /// `0.S.XXXX`, the subchannel's bus id (its directory's name in `cssN`).
    static func subchannelName(_ id: SubchannelID) -> String {
        "0." + Hex.string(id.ssid) + "." + Hex.string(id.schno, width: 4)
    }
}
