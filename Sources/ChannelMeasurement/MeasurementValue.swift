// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// One of chpstat's key-value pairs (`struct cmg_pair_t`): a characteristic, a raw counter of
/// the last entry, or a metric over the last interval, under chpstat's key.
package struct MeasurementValue: Hashable, Sendable, CustomStringConvertible {
    /// The value's type, as chpstat prints it: `%u`, `%llu`, `%.1f`.
    package enum Number: Hashable, Sendable {
        case u32(UInt32)
        case u64(UInt64)
        case double(Double)

        /// The value as a double (exact for every u32; for a u64 above 2^53, the nearest).
        package var doubleValue: Double {
            switch self {
            case .u32(let value): Double(value)
            case .u64(let value): Double(value)
            case .double(let value): value
            }
        }
    }

    /// The unit, for scaling and for the QMP documentation (chpstat `cmg_unit_t`).
    package enum Unit: String, Hashable, Sendable {
        /// A count, a rate per second, or seconds (`interval`).
        case number
        /// Percent (0-100, more when a counter runs past its nominal maximum).
        case percent
        /// Bytes per second.
        case bytesPerSecond = "bytes-per-second"
    }

    /// chpstat's key, e.g. `util_part`.
    package let key: String
    /// The value; nil when it is not available (chpstat prints `-1` or `-1.0`).
    package let value: Number?
    package let unit: Unit

    package init(_ key: String, _ value: Number?, unit: Unit = .number) {
        self.key = key
        self.value = value
        self.unit = unit
    }

    package var description: String {
        guard let value else { return "\(key)=-" }
        switch value {
        case .u32(let number): return "\(key)=\(number)"
        case .u64(let number): return "\(key)=\(number)"
        case .double(let number): return "\(key)=\(number)"
        }
    }
}

extension Array where Element == MeasurementValue {
    /// The value under `key`, if present and available.
    package subscript(key: String) -> MeasurementValue.Number? {
        first { $0.key == key }?.value
    }
}
