// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// The characteristics a CMG defines in words 3-7 of its CMCB, named as chpstat's
/// `cmcb2_t` ... `cmcb5_t` name them. Fields a CMG does not define are 0.
///
/// | CMG | word 3 | word 4 | word 5 | word 6 | word 7 |
/// |---|---|---|---|---|---|
/// | 2 | max_bus_cycles | max_channel_work_units | max_write_data_units | max_read_data_units | data_unit_size |
/// | 3 | data_unit_size | data_unit_size_cpc | msg_unit_size | msg_unit_size_cpc | - |
/// | 4, 5 | max_bus_cycles | max_channel_work_units | max_write_data_units | max_read_data_units | byte 28 dpu_num_cores, bytes 29-31 data_unit_size |
///
/// CMG 4 and 5 also have `dpu_id` (byte 9), which only the full CMCB carries.
package struct CMGCharacteristics: Hashable, Sendable {
    package let cmg: CMG
    /// The block they were taken from.
    package let cmcb: CMCB
    /// Whether the block was read whole (`measurement_chars_full`); else words 0-2 are zero
    /// and `dpu_id` is not available.
    package let full: Bool

    package init(cmg: CMG, cmcb: CMCB, full: Bool) {
        self.cmg = cmg
        self.cmcb = cmcb
        self.full = full
    }

    /// Bus cycles per second at 100 % (CMG 2, 4, 5).
    package var maxBusCycles: UInt32 { cmg.countsWorkUnits ? cmcb[word: 3] : 0 }
    /// Channel work units per second at 100 % (CMG 2, 4, 5).
    package var maxChannelWorkUnits: UInt32 { cmg.countsWorkUnits ? cmcb[word: 4] : 0 }
    /// Data units written per second at 100 % (CMG 2, 4, 5).
    package var maxWriteDataUnits: UInt32 { cmg.countsWorkUnits ? cmcb[word: 5] : 0 }
    /// Data units read per second at 100 % (CMG 2, 4, 5).
    package var maxReadDataUnits: UInt32 { cmg.countsWorkUnits ? cmcb[word: 6] : 0 }
    /// Bytes per data unit: word 7 (CMG 2), its low 24 bits (CMG 4, 5), word 3 (CMG 3).
    package var dataUnitSize: UInt32 {
        switch cmg {
        case .cmg1: 0
        case .cmg2: cmcb[word: 7]
        case .cmg3: cmcb[word: 3]
        case .cmg4, .cmg5: cmcb[word: 7] & 0x00ff_ffff
        }
    }
    /// The DPU's cores (CMG 4, 5: byte 28).
    package var dpuNumCores: UInt32 { cmg == .cmg4 || cmg == .cmg5 ? cmcb[word: 7] >> 24 : 0 }
    /// The DPU's id (CMG 4, 5: byte 9; nil unless the full CMCB was read).
    package var dpuID: UInt32? { (cmg == .cmg4 || cmg == .cmg5) && full ? UInt32(cmcb.dpuID) : nil }
    /// Bytes per data unit for the whole machine (CMG 3: word 4).
    package var dataUnitSizeCPC: UInt32 { cmg == .cmg3 ? cmcb[word: 4] : 0 }
    /// Bytes per message unit (CMG 3: word 5).
    package var msgUnitSize: UInt32 { cmg == .cmg3 ? cmcb[word: 5] : 0 }
    /// Bytes per message unit for the whole machine (CMG 3: word 6).
    package var msgUnitSizeCPC: UInt32 { cmg == .cmg3 ? cmcb[word: 6] : 0 }

    /// chpstat's `characteristics` group, in its key order (`pr_chars`); empty for CMG 1.
    package var values: [MeasurementValue] {
        switch cmg {
        case .cmg1:
            return []
        case .cmg2:
            return [
                MeasurementValue("max_bus_cycles", .u32(maxBusCycles)),
                MeasurementValue("max_channel_work_units", .u32(maxChannelWorkUnits)),
                MeasurementValue("max_write_data_units", .u32(maxWriteDataUnits)),
                MeasurementValue("max_read_data_units", .u32(maxReadDataUnits)),
                MeasurementValue("data_unit_size", .u32(dataUnitSize)),
            ]
        case .cmg3:
            return [
                MeasurementValue("data_unit_size", .u32(dataUnitSize)),
                MeasurementValue("data_unit_size_cpc", .u32(dataUnitSizeCPC)),
                MeasurementValue("msg_unit_size", .u32(msgUnitSize)),
                MeasurementValue("msg_unit_size_cpc", .u32(msgUnitSizeCPC)),
            ]
        case .cmg4, .cmg5:
            return [
                MeasurementValue("dpu_id", dpuID.map { .u32($0) }),
                MeasurementValue("max_bus_cycles", .u32(maxBusCycles)),
                MeasurementValue("max_channel_work_units", .u32(maxChannelWorkUnits)),
                MeasurementValue("max_write_data_units", .u32(maxWriteDataUnits)),
                MeasurementValue("max_read_data_units", .u32(maxReadDataUnits)),
                MeasurementValue("dpu_num_cores", .u32(dpuNumCores)),
                MeasurementValue("data_unit_size", .u32(dataUnitSize)),
            ]
        }
    }
}
