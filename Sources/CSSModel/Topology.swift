// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// A description of a machine's I/O configuration: what a topology file decodes into, what
/// the embedded default and the synthetic generator produce, and what `Subsystem(topology:)`
/// builds the model from.
///
/// Numbers that come from a file are plain `Int`s so that `validate()` can name an
/// out-of-range value precisely instead of the decoder trapping on a narrow type; ids are the
/// typed ids, whose parsers already report range errors.
package struct Topology: Hashable, Sendable {
    /// One channel subsystem (css) image.
    package struct ChannelSubsystem: Hashable, Sendable {
        /// 0...0xff; QEMU's virtual css is 0xfe.
        package var cssid: Int

        package init(cssid: Int) { self.cssid = cssid }
    }

    /// One channel path and its initial states.
    package struct ChannelPath: Hashable, Sendable {
        package var id: ChannelPathID
        /// The descriptor type, 0...0xff (0x1a FICON, 0x11 OSD, 0x32 virtio, ...).
        package var type: Int
        package var shared: Bool
        /// Physical channel id, 0...0xffff, if any.
        package var pchid: Int?
        package var vary: VaryState
        package var configure: ConfigureState

        package init(
            id: ChannelPathID, type: Int, shared: Bool = false, pchid: Int? = nil,
            vary: VaryState = .online, configure: ConfigureState = .configured
        ) {
            self.id = id
            self.type = type
            self.shared = shared
            self.pchid = pchid
            self.vary = vary
            self.configure = configure
        }
    }

    /// One I/O subchannel with its device.
    package struct Subchannel: Hashable, Sendable {
        package var id: SubchannelID
        /// Device number, 0...0xffff, unique within the subchannel set; nil for a subchannel
        /// without a valid device number (DNV = 0).
        package var devno: Int?
        /// Device type and model (lscss DevType `3390/0c`).
        package var devType: Int
        package var devModel: Int
        /// Control-unit type and model (lscss CU Type `3990/e9`).
        package var cuType: Int
        package var cuModel: Int
        /// The installed paths, slot 0 first: one to eight chpids of the subchannel's own css.
        package var chpids: [ChannelPathID]
        /// ENA in the PMCW (the OS has the subchannel enabled for I/O).
        package var enabled: Bool
        /// Whether the device is online, i.e. in use: Linux's ccw device `online` attribute,
        /// which lscss shows as `yes` in its Use column. Default true: a model device is in use
        /// unless its description says otherwise, so that the last-path interlock protects it.
        /// Means nothing for a subchannel without a device number.
        package var online: Bool
        /// Interruption subclass, 0...7.
        package var isc: Int
        /// I/O (the default) or a subchannel without device and paths (CHSC, message, EADM),
        /// which must then have no `devno` and no `chpids`.
        package var type: SubchannelType
        /// Whether the subchannel has the QDIO facility (PMCW QF), as the description states it;
        /// nil: derived from the control unit (`hasQDIO`).
        package var qdio: Bool?

        package init(
            id: SubchannelID, devno: Int?, devType: Int, devModel: Int, cuType: Int, cuModel: Int,
            chpids: [ChannelPathID], enabled: Bool = false, isc: Int = 0, type: SubchannelType = .io,
            qdio: Bool? = nil, online: Bool = true
        ) {
            self.online = online
            self.qdio = qdio
            self.type = type
            self.id = id
            self.devno = devno
            self.devType = devType
            self.devModel = devModel
            self.cuType = cuType
            self.cuModel = cuModel
            self.chpids = chpids
            self.enabled = enabled
            self.isc = isc
        }

        /// The QDIO facility as the model builds the PMCW: `qdio` when the description states
        /// it, otherwise true exactly for an I/O subchannel on the QDIO control unit
        /// (`Topology.qdioControlUnitType`, 1731). Linux exposes no `qf` attribute in sysfs, so
        /// the linux-sysfs backend relies on this derivation.
        package var hasQDIO: Bool { type == .io && (qdio ?? (cuType == Topology.qdioControlUnitType)) }
    }

    /// The control-unit type of every QDIO device: 1731 is the QDIO control unit that OSA-Express
    /// (OSD 1731/01, OSX and OSM 1731/02, OSN 1731/06), FCP (1731/03) and HiperSockets (IQD 1731/05) devices
    /// (device type 1732) report (Linux qeth_core_main.c `qeth_ids`, zfcp_ccw.c
    /// `zfcp_ccw_device_id`). Non-QDIO devices on the same adapters (OSA in OSE mode, LCS, CTC)
    /// report other control units (3088).
    package static let qdioControlUnitType = 0x1731

    /// A guest (a KVM virtual machine) with its virtio-ccw and passthrough (vfio-ccw) devices,
    /// as the description declares it. Plain data: the names, the strategy and every device are
    /// checked when the guests are built on the host (`Guests(topology:host:)` in VFIOCCW),
    /// not by `validate()`.
    package struct Guest: Hashable, Sendable {
        /// 1-64 characters of a-z, A-Z, 0-9, '-', '_', '.'; unique among the guests.
        package var name: String
        /// How host path events reach the guest: "per-device", "crw" or "lazy"; nil: "crw".
        package var strategy: String?
        /// The guest's CRW queue size; nil: 64.
        package var crwCapacity: Int?
        /// In order: each is added to the guest in turn, so defaulted ids depend on the ones before.
        package var devices: [GuestDevice]

        package init(name: String, strategy: String? = nil, crwCapacity: Int? = nil, devices: [GuestDevice] = []) {
            self.name = name
            self.strategy = strategy
            self.crwCapacity = crwCapacity
            self.devices = devices
        }
    }

    /// One device of a guest.
    package enum GuestDevice: Hashable, Sendable {
        /// A virtio-ccw device on the virtual channel path fe.00 (control unit 3832/`cuModel`,
        /// the virtio device id). `subchannel`: its guest subchannel, default the first free one
        /// in fe.0; `devno`: 0...0xffff in that subchannel set, default the subchannel number.
        case virtio(subchannel: SubchannelID?, devno: Int?, cuModel: Int)
        /// Host subchannel `host` passed through (vfio-ccw). `guestSubchannel`: default the
        /// first free one in fe.0; `guestChpids`: one per installed host path in slot order,
        /// default the host chpid numbers in the guest subchannel's css (identity).
        case passthrough(host: SubchannelID, guestSubchannel: SubchannelID?, guestChpids: [ChannelPathID]?)
    }

    package var channelSubsystems: [ChannelSubsystem]
    package var channelPaths: [ChannelPath]
    package var subchannels: [Subchannel]
    /// Whether the program has multiple-css support enabled (MCSSE), which makes channel-path
    /// reports chained with a cssid word. nil: enabled when any css other than 0 is defined.
    package var multipleCSSEnabled: Bool?
    /// Guests running on this machine, in the order they are built.
    package var guests: [Guest]
    /// The channel-measurement facility's set-up (Topology+Measurement.swift); nil: the defaults.
    package var measurement: Measurement?

    package init(
        channelSubsystems: [ChannelSubsystem], channelPaths: [ChannelPath], subchannels: [Subchannel],
        multipleCSSEnabled: Bool? = nil, guests: [Guest] = [], measurement: Measurement? = nil
    ) {
        self.channelSubsystems = channelSubsystems
        self.channelPaths = channelPaths
        self.subchannels = subchannels
        self.multipleCSSEnabled = multipleCSSEnabled
        self.guests = guests
        self.measurement = measurement
    }

    /// MCSSE as the model will use it.
    package var resolvedMultipleCSSEnabled: Bool {
        multipleCSSEnabled ?? channelSubsystems.contains { $0.cssid != 0 }
    }
}

/// A topology that cannot be built. `field` locates the offending entry the way a file
/// decoder can map to a line (`subchannels[3].chpids[1]`); `reason` names the id and the rule.
package struct TopologyError: CSSModelError, Equatable {
    package let field: String
    package let reason: String

    package init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    package var description: String { "\(field): \(reason)" }
}
