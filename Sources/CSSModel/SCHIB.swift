// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// The subchannel-information block that STSCH stores and MSCH reads: PMCW (28 bytes),
/// SCSW (12), measurement-block address (8) and a model-dependent area (4) = 52 bytes,
/// big-endian, in that order.
package struct SCHIB: Hashable, Sendable {
    /// Architected size in bytes.
    package static let size = 52

    package var pmcw: PMCW
    package var scsw: SCSW
    /// Measurement-block address.
    package var mba: UInt64
    /// The model-dependent area, as 4 bytes read big-endian.
    package var mda: UInt32

    package init(pmcw: PMCW = PMCW(), scsw: SCSW = SCSW(), mba: UInt64 = 0, mda: UInt32 = 0) {
        self.pmcw = pmcw
        self.scsw = scsw
        self.mba = mba
        self.mda = mda
    }

    /// The 52 architected bytes.
    package var bytes: [UInt8] {
        var writer = ByteWriter(capacity: SCHIB.size)
        pmcw.write(to: &writer)
        scsw.write(to: &writer)
        writer.put(mba)
        writer.put(mda)
        return writer.bytes
    }

    /// The 52 bytes as 104 lowercase hex digits (what `store-subchannel` returns as `raw`).
    package var hexString: String {
        var text = ""
        text.reserveCapacity(2 * SCHIB.size)
        for byte in bytes { text += Hex.string(byte, width: 2) }
        return text
    }

    /// Decodes the 52 architected bytes.
    /// - Throws: `ControlBlockSizeError` unless exactly 52 bytes are given.
    package init<C: Collection>(bytes: C) throws(ControlBlockSizeError) where C.Element == UInt8 {
        guard bytes.count == SCHIB.size else {
            throw ControlBlockSizeError(block: "SCHIB", expected: SCHIB.size, actual: bytes.count)
        }
        var reader = ByteReader(bytes)
        pmcw = PMCW(from: &reader)
        scsw = SCSW(from: &reader)
        mba = reader.get()
        mda = reader.get()
    }
}
