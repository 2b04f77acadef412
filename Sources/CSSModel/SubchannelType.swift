// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// The subchannel type (PMCW `st`, bits 8-10 of word 6; `PMCW.Characteristics.subchannelType`;
/// Linux `cssN/0.S.XXXX/type`, css.c SUBCHANNEL_TYPE_*). Only I/O subchannels have a device
/// and paths; the others are served so that a listing of a real machine is complete.
package enum SubchannelType: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case io = 0
    case chsc = 1
    case message = 2
    case eadm = 3

    /// `io`, `chsc`, `message`, `eadm`: the names of topology files and QMP replies.
    package var description: String {
        switch self {
        case .io: return "io"
        case .chsc: return "chsc"
        case .message: return "message"
        case .eadm: return "eadm"
        }
    }
}

extension Subchannel {
    /// The type, from the PMCW's `st` field (MSCH cannot change it). A value the architecture
    /// does not define (4-7; the model never makes one) reads as `.io`.
    package var type: SubchannelType {
        SubchannelType(rawValue: UInt8((schib.pmcw.chars & PMCW.Characteristics.subchannelType) >> 21)) ?? .io
    }
}
