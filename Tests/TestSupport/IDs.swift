// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// The channel-path ID written as Linux and QEMU write it ("0.40": cssid.chpid, hex); traps on
/// text that is not one, which in a test is a typo in the test.
package func chp(_ text: String) -> ChannelPathID { try! ChannelPathID(parsing: text) }

/// The subchannel ID written as Linux writes it ("0.0.0000": cssid.ssid.schno, hex); traps on
/// text that is not one.
package func sch(_ text: String) -> SubchannelID { try! SubchannelID(parsing: text) }
