// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import NIOCore

extension ByteBuffer {
    /// Decimal, as QEMU (`%" PRId64`) and jansson print integers, straight into the buffer:
    /// `String(value)` went through the standard library's generic formatter, a measurable
    /// part of every reply that echoes an integer id.
    @inlinable
    package mutating func writeDecimal(_ value: Int64) {
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: 19 digits and a sign fit
        Swift.withUnsafeMutableBytes(of: &digits) { buffer in
            var start = buffer.count
            repeat {
                start -= 1
                buffer[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            if value < 0 {
                start -= 1
                buffer[start] = UInt8(ascii: "-")
            }
            writeBytes(UnsafeRawBufferPointer(rebasing: buffer[start...]))
        }
    }
}
