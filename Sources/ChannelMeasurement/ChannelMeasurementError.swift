// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// The root of every error this module throws.
///
/// ```
/// ChannelMeasurementError
/// ├── MeasurementBlockError  a block of the wrong size, or a CMG chpstat does not know (1-5)
/// └── ChannelLoadError       a model load naming a metric the chpid's CMG cannot be driven by
/// ```
/// Per-chpid problems found while tracking (a timestamp that did not move, a counter that went
/// backwards) are not thrown: they are `MeasurementProblem`s in the chpid's report, so that the
/// other chpids are still served.
package protocol ChannelMeasurementError: Error, CustomStringConvertible, Sendable {}

/// A measurement block that cannot be decoded: the kernel hands out whole blocks only
/// (drivers/s390/cio/chp.c `chp_measurement_copy_block`), so any other size is a defect of
/// the source, never something to pad.
package enum MeasurementBlockError: ChannelMeasurementError, Hashable {
    /// `block` (`measurement_chars_full`, `measurement_chars`, `measurement`,
    /// `ext_measurement`) has `actual` bytes instead of `expected`.
    case wrongSize(block: String, expected: Int, actual: Int)
    /// The CMG is none of 1-5 (chpstat v2.43.0 `cmg_get` knows only these).
    case unknownCMG(Int)

    package var description: String {
        switch self {
        case .wrongSize(let block, let expected, let actual):
            "\(block) must be \(expected) bytes, got \(actual)"
        case .unknownCMG(let value): "unknown channel-measurement group \(value) (known: 1-5)"
        }
    }
}
