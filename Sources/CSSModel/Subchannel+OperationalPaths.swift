// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// A subchannel's operational paths and whether its device is in use: the one definition that
/// the impact query, the last-path interlock and the redundancy metrics share.
///
/// A path is *operational* when its bit is set in PIM & PAM & POM & LPM, as Linux's cio keeps
/// it: `sch->lpm = pim & pam & pom & opm` (drivers/s390/cio/cio.c `cio_update_schib`, where
/// `opm` holds the chpids varied online, which is the model's LPM). A device whose mask is 0
/// has lost its last path (dasd: "No operational channel path is left for the device"). An I/O
/// subchannel with mask 0 is exactly one that `Subsystem.subchannelsWithoutOperationalPath`
/// counts (`PMCW.hasOperationalPath` false), so the two never disagree.
///
/// A device is *in use* when it is online (Linux's ccw device `online` attribute, lscss's Use
/// column) and there: an I/O subchannel with a valid device number, a device behind it
/// (`Subchannel.hasDevice`) and `isOnline`. The model's devices are in use unless the topology
/// says `"online": false`; on linux-sysfs `online` is read from the file.
package struct OperationalPaths: Hashable, Sendable {
    /// PIM & PAM & POM & LPM, bit 0x80 = slot 0 (as in the SCHIB); always 0 for a subchannel
    /// that is not an I/O subchannel.
    package let mask: UInt8
    /// Whether the device is online and there (see the type's doc).
    package let inUse: Bool
    /// Whether this is an I/O subchannel with a valid device number: a device that can lose
    /// paths at all. CHSC, message and EADM subchannels and DNV-0 subchannels are not devices.
    package let isDevice: Bool

    package init(mask: UInt8, inUse: Bool, isDevice: Bool) {
        self.mask = mask
        self.inUse = inUse
        self.isDevice = isDevice
    }

    /// How many paths are operational, 0...8.
    package var count: Int { mask.nonzeroBitCount }

    /// Whether the device runs on exactly one operational path (lost its redundancy).
    package var isSinglePath: Bool { isDevice && count == 1 }

    /// Whether the device has no operational path left.
    package var isWithoutPath: Bool { isDevice && mask == 0 }

    /// The operational mask after the paths in `removed` (slot bits) are taken away.
    package func removing(_ removed: UInt8) -> UInt8 { mask & ~removed }
}

extension Subchannel {
    /// The subchannel's operational paths and whether its device is in use (`OperationalPaths`).
    /// O(1), no allocation: the redundancy metrics call it for every member of a chpid.
    package var operationalPaths: OperationalPaths {
        let pmcw = schib.pmcw
        let isIO = pmcw.chars & PMCW.Characteristics.subchannelType == 0
        let isDevice = isIO && pmcw.deviceNumberValid
        return OperationalPaths(
            mask: isIO ? pmcw.pim & pmcw.pam & pmcw.pom & pmcw.lpm : 0,
            inUse: isDevice && hasDevice && isOnline, isDevice: isDevice)
    }

    /// Whether the device is in use: online and there (`OperationalPaths.inUse`).
    package var isInUse: Bool { operationalPaths.inUse }
}

extension Subsystem {
    /// The operational paths of subchannel `id` (`OperationalPaths`), in O(1).
    /// - Throws: `ModelError.unknownSubchannel` for an id the model does not have.
    package func operationalPaths(of id: SubchannelID) throws(ModelError) -> OperationalPaths {
        guard let subchannel = subchannel(id) else { throw .unknownSubchannel(id) }
        return subchannel.operationalPaths
    }
}
