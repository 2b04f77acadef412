// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import NIOCore
import Testing

@testable import QMPWire

@Suite("Decimal digits written by hand")
struct ASCIIWritingTests {
    @Test(
        "writeDecimal prints what String(_:) prints",
        arguments: [0, 1, -1, 9, 10, -10, 4096, 1_000_000, Int64.max, Int64.min, Int64.min + 1, Int64.max - 1])
    func decimal(_ value: Int64) {
        var buffer = ByteBuffer(string: "x")
        buffer.writeDecimal(value)
        #expect(buffer.readString(length: buffer.readableBytes) == "x" + String(value))
    }
}
