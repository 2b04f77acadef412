// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import JSONValues
import NIOCore

/// Writes server-to-client QMP messages: one JSON object per line, CRLF, ASCII only, with
/// QEMU's separators. Values are dumped by jansson straight into the output buffer.
package enum ReplyEncoder {
    /// Appends `value` as compact JSON, dumped by jansson straight into the buffer.
    static func write(tree value: JSON, to out: inout ByteBuffer) {
        var needed = 64
        while true {
            var required = 0
            let written = out.writeWithUnsafeMutableBytes(minimumWritableBytes: needed) { space in
                required = value.dump(into: space)
                return required <= space.count ? required : 0
            }
            if written == required { return }
            if required == 0 {
                // jansson refused the value (cannot happen for values it built); keep the line valid.
                out.writeStaticString("null")
                return
            }
            needed = required
        }
    }

    @inline(__always)
    package static func write(_ value: JSON, to out: inout ByteBuffer) {
        if let text = value.preserialized {
            out.writeBytes(text)
        } else {
            write(tree: value, to: &out)
        }
    }

    /// `{"return": VALUE, "id": ID}`: the value as jansson dumps it (our own data), the id as
    /// QEMU writes it (`QEMUJSONWriter`: what the client sent comes back as from QEMU).
    package static func writeReturn(_ value: JSON, id: QMPReplyID, to out: inout ByteBuffer) {
        out.writeStaticString("{\"return\": ")
        write(value, to: &out)
        writeID(id, to: &out)
    }

    /// `{"id": ID, "error": {"class": CLASS, "desc": DESC}}`, or without `"id"` when the request
    /// had none: the members in QEMU's QDict order (`id` before `error`, `return` before `id`),
    /// strings escaped as QEMU escapes them (the text may quote the client's input).
    package static func writeError(
        class errorClass: String, desc: String, id: QMPReplyID, to out: inout ByteBuffer
    ) {
        if let node = id.node {
            out.writeStaticString("{\"id\": ")
            withExtendedLifetime(id.owner) { QEMUJSONWriter.write(node, to: &out) }
            out.writeStaticString(", \"error\": {\"class\": ")
        } else {
            out.writeStaticString("{\"error\": {\"class\": ")
        }
        QEMUJSONWriter.writeString(errorClass.utf8, to: &out)
        out.writeStaticString(", \"desc\": ")
        QEMUJSONWriter.writeString(desc.utf8, to: &out)
        out.writeStaticString("}}\r\n")
    }

    /// `{"timestamp": {"seconds": S, "microseconds": US}, "event": NAME, "data": DATA}`
    package static func writeEvent(
        _ name: String, data: JSON?, seconds: Int, microseconds: Int, to out: inout ByteBuffer
    ) {
        out.writeStaticString("{\"timestamp\": {\"seconds\": ")
        out.writeString(String(seconds))
        out.writeStaticString(", \"microseconds\": ")
        out.writeString(String(microseconds))
        out.writeStaticString("}, \"event\": ")
        QEMUJSONWriter.writeString(name.utf8, to: &out)
        if let data {
            out.writeStaticString(", \"data\": ")
            write(data, to: &out)
        }
        out.writeStaticString("}\r\n")
    }

    /// A whole line for an arbitrary object (the greeting).
    package static func writeLine(_ value: JSON, to out: inout ByteBuffer) {
        write(value, to: &out)
        out.writeStaticString("\r\n")
    }

    private static func writeID(_ id: QMPReplyID, to out: inout ByteBuffer) {
        if let node = id.node {
            out.writeStaticString(", \"id\": ")
            withExtendedLifetime(id.owner) { QEMUJSONWriter.write(node, to: &out) }
        }
        out.writeStaticString("}\r\n")
    }
}
