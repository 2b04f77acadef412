// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CJansson

#if canImport(Glibc)
import Glibc
#endif

/// A borrowed view of one value inside a `JSON` tree, for readers that walk large documents
/// (topology files: about four million values at 262,144 subchannels) without a Swift object
/// or String per value.
///
/// A node does not own its value: it is valid only inside the `JSON.withNode(_:)` call that
/// produced it (or a node derived from that one), while the tree's owner is alive. Strings and
/// keys are handed out as UTF-8 bytes in place (jansson guarantees valid UTF-8; NUL bytes
/// occur only where the parser allowed `\u0000`). The accessors the request path uses are
/// `@inlinable`: the QMP envelope check walks a request through them.
package struct JSONNode {
    @usableFromInline let raw: UnsafeMutablePointer<json_t>

    @usableFromInline init(_ raw: UnsafeMutablePointer<json_t>) { self.raw = raw }

    /// The value's kind.
    @inlinable
    package var kind: JSON.Kind {
        switch raw.pointee.type {
        case JSON_OBJECT: .object
        case JSON_ARRAY: .array
        case JSON_STRING: .string
        case JSON_INTEGER: .integer
        case JSON_REAL: .real
        case JSON_TRUE, JSON_FALSE: .bool
        default: .null
        }
    }

    /// An integer's value (jansson's `json_int_t`, 64 bits); nil for any other kind.
    @inlinable
    package var intValue: Int? { raw.pointee.type == JSON_INTEGER ? Int(json_integer_value(raw)) : nil }

    /// A real number's value; nil for any other kind (integers included).
    @inlinable
    package var realValue: Double? { raw.pointee.type == JSON_REAL ? json_real_value(raw) : nil }

    /// `true` or `false`; nil for any other kind.
    @inlinable
    package var boolValue: Bool? {
        switch raw.pointee.type {
        case JSON_TRUE: true
        case JSON_FALSE: false
        default: nil
        }
    }

    /// Runs `body` on a string's UTF-8 bytes in place.
    /// - Returns: what `body` returns, or nil when the node is not a string.
    @inlinable @inline(__always)
    package func withStringBytes<T, E: Error>(_ body: (UnsafeBufferPointer<UInt8>) throws(E) -> T) throws(E) -> T? {
        guard raw.pointee.type == JSON_STRING, let chars = json_string_value(raw) else { return nil }
        let length = json_string_length(raw)
        return try chars.withMemoryRebound(to: UInt8.self, capacity: length) { (bytes) throws(E) -> T in
            try body(UnsafeBufferPointer(start: bytes, count: length))
        }
    }

    /// A string's text, decoded as UTF-8; nil for any other kind.
    package var stringValue: String? { withStringBytes { String(decoding: $0, as: UTF8.self) } }

    /// The number of elements of an array or members of an object; 0 for a scalar.
    @inlinable
    package var count: Int {
        switch raw.pointee.type {
        case JSON_ARRAY: json_array_size(raw)
        case JSON_OBJECT: json_object_size(raw)
        default: 0
        }
    }

    /// An array's element at `index` (`0..<count`); nil when out of range or not an array.
    @inlinable
    package subscript(index: Int) -> JSONNode? {
        json_array_get(raw, index).map(JSONNode.init)
    }

    /// An object's member `key` (looked up as a C string: up to its first NUL); nil when there
    /// is none or the node is not an object.
    @inlinable
    package subscript(key key: String) -> JSONNode? {
        key.withCString { json_object_get(raw, $0) }.map(JSONNode.init)
    }

    /// Visits an object's members in document order (jansson keeps insertion order), each key
    /// as its UTF-8 bytes; does nothing for any other kind.
    @inlinable @inline(__always)
    package func forEachMember<E: Error>(_ body: (UnsafeBufferPointer<UInt8>, JSONNode) throws(E) -> Void) throws(E) {
        var iter = json_object_iter(raw)
        while let current = iter {
            let key = json_object_iter_key(current)!
            let length = json_object_iter_key_len(current)
            let value = JSONNode(json_object_iter_value(current)!)
            try key.withMemoryRebound(to: UInt8.self, capacity: length) { (bytes) throws(E) in
                try body(UnsafeBufferPointer(start: bytes, count: length), value)
            }
            iter = json_object_iter_next(raw, current)
        }
    }
}

extension JSON {
    /// A borrowed view of this value for a holder that keeps `self` alive as long as it uses
    /// the view (and every node reached from it), as `QMPRequest` holds its message.
    package var unownedNode: JSONNode { JSONNode(raw) }

    /// Runs `body` with a borrowed view of this value; the view (and every node reached from
    /// it) must not escape `body`.
    package func withNode<T, E: Error>(_ body: (JSONNode) throws(E) -> T) throws(E) -> T {
        try withExtendedLifetime(self) { () throws(E) -> T in try body(JSONNode(raw)) }
    }

    /// Where and why a document is not JSON, as jansson reports it.
    package struct SyntaxError: Error, Sendable, Equatable {
        /// 1-based line and column of the problem.
        package let line: Int
        package let column: Int
        /// jansson's text (`'[' or '{' expected near 'x'`, `duplicate object key`, ...).
        package let message: String
    }

    /// Parses a whole document (a file): strict JSON (RFC 8259, no QEMU extensions), any
    /// top-level value, a repeated key is an error, and so is `\u0000`.
    /// - Throws: `SyntaxError` with the line and column of the first problem.
    package static func parseDocument(_ bytes: UnsafeRawBufferPointer) throws(SyntaxError) -> JSON {
        var error = json_error_t()
        let flags = Int(JSON_DECODE_ANY | JSON_REJECT_DUPLICATES)
        guard
            let root = json_loadb(
                bytes.baseAddress?.assumingMemoryBound(to: CChar.self) ?? emptyCString, bytes.count, flags, &error)
        else {
            let message = withUnsafeBytes(of: &error.text) { raw in
                let text = raw.bindMemory(to: UInt8.self)
                return String(decoding: text.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            throw SyntaxError(line: Int(error.line), column: Int(error.column), message: message)
        }
        return JSON(owning: root)
    }
}
