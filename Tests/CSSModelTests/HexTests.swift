// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import Testing

/// The one hex reader and writer every module uses (ids, sysfs, topology files, listings).
@Suite("Hex notation")
struct HexTests {
    @Test("parts: digit counts per part, either case, nothing else")
    func parts() {
        func three(_ text: String) -> [Int]? { Hex.parts(text, maxDigits: (2, 1, 4)).map { [$0.0, $0.1, $0.2] } }
        #expect(three("0.0.0042") == [0, 0, 0x42])
        #expect(three("fe.3.FFFF") == [0xfe, 3, 0xffff])
        #expect(three("0.0.42") == [0, 0, 0x42])
        for bad in [
            "", "0.0", "0.0.0.0", "0..0042", "0.0.00042", "100.0.0", "0.10.0", "0.0.004g", " 0.0.0", "+0.0.0", "0.0.",
            ".0.0",
        ] {
            #expect(three(bad) == nil, "\(bad)")
        }
        #expect(
            Hex.parts("3390/0c", separator: UInt8(ascii: "/"), maxDigits: (4, 2, 0)).map { [$0.0, $0.1] } == [
                0x3390, 0x0c,
            ])
        #expect(Hex.parts("0.4A", maxDigits: (2, 2, 0)).map { [$0.0, $0.1] } == [0, 0x4a])
        #expect(Hex.parts("0.4a.0", maxDigits: (2, 2, 0)) == nil)
        // A Substring and a non-contiguous (bridged-like) view read the same.
        #expect(Hex.parts("x0.40x".dropFirst().dropLast(), maxDigits: (2, 2, 0)).map { [$0.0, $0.1] } == [0, 0x40])
    }

    @Test("number: 1...maxDigits digits; no sign, prefix or blank (sysfs attributes)")
    func number() {
        #expect(Hex.number("1a", maxDigits: 2) == 0x1a)
        #expect(Hex.number("ffffffff", maxDigits: 8) == 0xffff_ffff)
        for bad in ["", "123", "-1", "+1", "0x1", " 1", "1 ", "1.2", "ｆ"] {
            #expect(Hex.number(bad, maxDigits: 2) == nil, "\(bad)")
        }
    }

    @Test("prefixedNumber: an optional 0x, then 1...8 digits")
    func prefixedNumber() {
        #expect(Hex.prefixedNumber("0x1a") == 0x1a)
        #expect(Hex.prefixedNumber("0X1A") == 0x1a)
        #expect(Hex.prefixedNumber("fe") == 0xfe)
        #expect(Hex.prefixedNumber("01c0") == 0x1c0)
        #expect(Hex.prefixedNumber("0x") == nil)
        #expect(Hex.prefixedNumber("0x123456789") == nil)
        #expect(Hex.prefixedNumber("12345678") == 0x1234_5678)
        #expect(Hex.prefixedNumber("") == nil)
    }

    @Test("string and append(hex:): lowercase, zero-padded to at least width digits")
    func formatting() {
        #expect(Hex.string(0) == "0")
        #expect(Hex.string(0x4a, width: 2) == "4a")
        #expect(Hex.string(UInt8(5), width: 2) == "05")
        #expect(Hex.string(UInt16(0x42), width: 4) == "0042")
        #expect(Hex.string(0x12345, width: 4) == "12345")
        #expect(Hex.string(UInt64.max, width: 16) == "ffffffffffffffff")
        #expect(Hex.string(-0x1a) == "-1a")
        var bytes: [UInt8] = []
        bytes.append(hex: 0xabc, width: 8)
        bytes.append(UInt8(ascii: " "))
        bytes.append(busID: 0xfe, 3, 0x42)
        bytes.append(UInt8(ascii: " "))
        bytes.append(chpid: 0, 0x4)
        #expect(String(decoding: bytes, as: UTF8.self) == "00000abc fe.3.0042 0.04")
        for value in [0, 1, 0xf, 0x10, 0xff, 0x100, 0xfff_ffff, Int.max] {
            for width in [1, 2, 4, 8] {
                let expected = String(value, radix: 16)
                let padded = String(repeating: "0", count: max(0, width - expected.count)) + expected
                #expect(Hex.string(value, width: width) == padded)
            }
        }
    }
}
