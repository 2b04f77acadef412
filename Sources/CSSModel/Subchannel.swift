// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// One I/O subchannel: its id, the device behind it, and its SCHIB.
///
/// This is also the model's storage record, kept flat (64 bytes, no references) so that
/// hundreds of thousands of them sit in one array without per-subchannel allocations.
package struct Subchannel: Hashable, Sendable {
    package internal(set) var schib: SCHIB
    package let id: SubchannelID
    /// Device type (lscss DevType `3390/0c`: type 0x3390, model 0x0c).
    package let devType: UInt16
    /// Control-unit type (lscss CU Type `3990/e9`).
    package let cuType: UInt16
    package let devModel: UInt8
    package let cuModel: UInt8
    /// The paths the operating system has verified, when a backend observes them (Linux's
    /// `vpm` attribute, `sch->vpm`, packed into the model's slots like the PMCW masks); nil
    /// when nobody says (the model itself has no path verification). Linux leaves a device
    /// that is not online at 00, whatever its LPM.
    package internal(set) var verifiedPathMask: UInt8?
    /// False when the subchannel has a device number but no device behind it that the
    /// operating system could bind (Linux: `dev_busid` names it, but the subchannel directory
    /// has no ccw device, e.g. after the only path was varied offline). The model's own
    /// subchannels always have their device.
    package internal(set) var hasDevice: Bool = true
    /// Whether the device is online (Linux's ccw device `online` attribute; lscss's Use
    /// column): from the topology's `online`, which a linux-sysfs reading sets from the file.
    /// `isInUse` combines it with the device being there.
    package internal(set) var isOnline: Bool = true

    package init(id: SubchannelID, devType: UInt16, devModel: UInt8, cuType: UInt16, cuModel: UInt8, schib: SCHIB) {
        self.schib = schib
        self.id = id
        self.devType = devType
        self.cuType = cuType
        self.devModel = devModel
        self.cuModel = cuModel
    }

    /// The device's bus id `cssid.ssid.devno`, or nil when DNV is 0.
    package var deviceID: DeviceID? {
        schib.pmcw.deviceNumberValid ? DeviceID(cssid: id.cssid, ssid: id.ssid, devno: schib.pmcw.devno) : nil
    }

    /// The installed chpids, slot 0 first (slots whose PIM bit is set).
    package var channelPaths: [ChannelPathID?] {
        (0..<8).map { slot in
            schib.pmcw.pim & pathMaskBit(slot: slot) != 0
                ? ChannelPathID(cssid: id.cssid, chpid: schib.pmcw.chpids[slot]) : nil
        }
    }

    /// The slot holding `chpid` among the installed paths, if any.
    package func slot(of chpid: ChannelPathID) -> Int? {
        guard chpid.cssid == id.cssid else { return nil }
        for slot in 0..<8 where schib.pmcw.pim & pathMaskBit(slot: slot) != 0 {
            if schib.pmcw.chpids[slot] == chpid.chpid { return slot }
        }
        return nil
    }
}
