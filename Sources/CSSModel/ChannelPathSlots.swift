// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// The eight chpid bytes of a PMCW (`chpid[8]`), slot 0 first.
///
/// Stored in one `UInt64` instead of an array so that a subchannel record stays a flat,
/// allocation-free value: at 262,144 subchannels an array per subchannel would cost more than
/// the whole record. Which slots are meaningful is given by the PIM, not by this value.
package struct ChannelPathSlots: Hashable, Sendable, RandomAccessCollection, CustomStringConvertible {
    /// Slot 0 in the most significant byte, as the bytes lie in storage.
    package var rawValue: UInt64

    package init(rawValue: UInt64 = 0) { self.rawValue = rawValue }

    /// Slots from a list of up to eight chpids; missing slots are 0.
    /// - Precondition: `chpids.count <= 8`.
    package init<S: Sequence>(_ chpids: S) where S.Element == UInt8 {
        rawValue = 0
        var slot = 0
        for chpid in chpids {
            precondition(slot < 8, "a subchannel has at most 8 channel paths")
            self[slot] = chpid
            slot += 1
        }
    }

    package var startIndex: Int { 0 }
    package var endIndex: Int { 8 }

    /// The chpid in `slot` (0...7).
    package subscript(slot: Int) -> UInt8 {
        get { UInt8(truncatingIfNeeded: rawValue >> UInt64(56 - 8 * slot)) }
        set {
            let shift = UInt64(56 - 8 * slot)
            rawValue = rawValue & ~(0xff << shift) | UInt64(newValue) << shift
        }
    }

    /// Like lscss prints them: two groups of four, `40414243 00000000`.
    package var description: String {
        let digits = Hex.string(rawValue, width: 16)
        return String(digits.prefix(8)) + " " + String(digits.suffix(8))
    }
}

/// The bit of path-mask slot `slot`: slot 0 is 0x80.
@inline(__always)
package func pathMaskBit(slot: Int) -> UInt8 { 0x80 >> UInt8(slot) }
