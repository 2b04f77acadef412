// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

// The encoder writes the file into a byte array, so that a quarter of a million subchannels
// make no Swift String per value; hex goes through CSSModel's `append(hex:width:)`.

extension Array where Element == UInt8 {
    @inline(__always)
    mutating func append(_ text: StaticString) {
        append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func appendDecimal(_ value: Int) {
        append(contentsOf: String(value).utf8)
    }
}
