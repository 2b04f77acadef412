// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import JSONValues
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Writes JSON text exactly as QEMU 7.2 writes it (qobject/qjson.c `to_json`, compact form),
/// for what a client sent and gets back (the `id`) and for texts that may quote its input
/// (error descriptions): byte for byte what QEMU would send.
///
/// Where QEMU and jansson's dumper differ:
/// - object members come in QEMU's QDict iteration order (`QDictOrder`), not insertion order;
/// - strings escape `"`, `\`, `\b \f \n \r \t` by name and every other code point below 0x20
///   or from 0x7F (DEL included, which jansson leaves as is) as `\uXXXX` with uppercase hex,
///   beyond the BMP as a surrogate pair;
/// - reals are printed with `%.17g` (`1500`, `-0`, `1e+100`), where jansson appends `.0` and
///   drops the exponent's `+`. QEMU prints infinities and NaN bare (`inf`), which is not JSON:
///   here they are `null` (docs/running.md, "Known differences").
enum QEMUJSONWriter {
    static func write(_ value: JSONNode, to out: inout ByteBuffer) {
        switch value.kind {
        case .object:
            var keys: [String] = []
            value.forEachMember { key, _ in keys.append(String(decoding: key, as: UTF8.self)) }
            out.writeInteger(UInt8(ascii: "{"))
            for (index, key) in QDictOrder.iterationOrder(keys).enumerated() {
                if index > 0 { out.writeStaticString(", ") }
                writeString(key.utf8, to: &out)
                out.writeStaticString(": ")
                write(value[key: key]!, to: &out)
            }
            out.writeInteger(UInt8(ascii: "}"))
        case .array:
            out.writeInteger(UInt8(ascii: "["))
            for index in 0..<value.count {
                if index > 0 { out.writeStaticString(", ") }
                write(value[index]!, to: &out)
            }
            out.writeInteger(UInt8(ascii: "]"))
        case .string:
            _ = value.withStringBytes { writeString($0, to: &out) }
        case .integer:
            out.writeDecimal(Int64(value.intValue!))  // the id of nearly every reply
        case .real:
            writeReal(value.realValue!, to: &out)
        case .bool:
            out.writeStaticString(value.boolValue! ? "true" : "false")
        case .null:
            out.writeStaticString("null")
        }
    }

    /// `%.17g`, as QEMU's qnum_to_string; `null` for infinities and NaN.
    static func writeReal(_ value: Double, to out: inout ByteBuffer) {
        guard value.isFinite else {
            out.writeStaticString("null")
            return
        }
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 32) { buffer in
            let count = withVaList([value]) { vsnprintf(buffer.baseAddress!, 32, "%.17g", $0) }
            out.writeBytes(UnsafeRawBufferPointer(start: buffer.baseAddress!, count: Int(min(count, 31))))
        }
    }

    /// A string as QEMU's `to_json_str` writes it, from UTF-8 bytes (NUL included).
    static func writeString<S: Sequence>(_ utf8: S, to out: inout ByteBuffer) where S.Element == UInt8 {
        out.writeInteger(UInt8(ascii: "\""))
        var decoder = UTF8()
        var bytes = utf8.makeIterator()
        loop: while true {
            switch decoder.decode(&bytes) {
            case .scalarValue(let scalar):
                writeScalar(scalar.value, to: &out)
            case .error:
                writeScalar(0xFFFD, to: &out)
            case .emptyInput:
                break loop
            }
        }
        out.writeInteger(UInt8(ascii: "\""))
    }

    @inline(__always)
    private static func writeScalar(_ code: UInt32, to out: inout ByteBuffer) {
        switch code {
        case 0x22: out.writeStaticString("\\\"")
        case 0x5C: out.writeStaticString("\\\\")
        case 0x08: out.writeStaticString("\\b")
        case 0x0C: out.writeStaticString("\\f")
        case 0x0A: out.writeStaticString("\\n")
        case 0x0D: out.writeStaticString("\\r")
        case 0x09: out.writeStaticString("\\t")
        case 0x20..<0x7F: out.writeInteger(UInt8(code))
        case 0x10000...:
            writeEscape(0xD800 + ((code - 0x10000) >> 10), to: &out)
            writeEscape(0xDC00 + ((code - 0x10000) & 0x3FF), to: &out)
        default: writeEscape(code, to: &out)
        }
    }

    @inline(__always)
    private static func writeEscape(_ unit: UInt32, to out: inout ByteBuffer) {
        let digits: StaticString = "0123456789ABCDEF"
        out.writeStaticString("\\u")
        for shift in stride(from: 12, through: 0, by: -4) {
            out.writeInteger(digits.utf8Start[Int((unit >> UInt32(shift)) & 0xF)])
        }
    }
}
