// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CJansson

#if canImport(Glibc)
import Glibc
#endif

/// A JSON value held by jansson. Owns exactly one reference to its `json_t`.
///
/// Values are built by jansson's loader (requests) or by the constructors below (replies), and
/// serialised with jansson's dumper. A value is confined to the thread that uses it: jansson's
/// reference counts are not meant to be shared across threads here.
package final class JSON {
    /// The underlying jansson value; never NULL. jansson stays inside JSONValues: other modules
    /// see values and nodes (`JSONNode`), never `json_t`.
    @usableFromInline let raw: UnsafeMutablePointer<json_t>

    /// JSON text made by a dedicated writer, sent as is in place of `raw` (which is null).
    /// For large replies of a fixed shape, where building a jansson tree only to dump it
    /// again would cost more than everything else together; valid only as a command's whole
    /// return value. A `constant` value has both: its tree, and the text dumped from it once.
    package let preserialized: [UInt8]?

    /// Takes ownership of one reference (a "new reference" in jansson's terms).
    init(owning raw: UnsafeMutablePointer<json_t>) {
        self.raw = raw
        self.preserialized = nil
    }

    /// Adds a reference to a borrowed value.
    init(borrowing raw: UnsafeMutablePointer<json_t>) {
        self.raw = cssd_json_incref(raw)!
        self.preserialized = nil
    }

    /// A value of its own for a node inside a tree (one more reference to it): it stays valid
    /// after the tree's owner is gone.
    package convenience init(retaining node: JSONNode) { self.init(borrowing: node.raw) }

    /// A value whose text is already written (see `preserialized`).
    package init(preserialized text: [UInt8]) {
        self.raw = json_null()!
        self.preserialized = text
    }

    /// `value` with its text written once and kept beside its tree (`preserialized`), for a
    /// constant reply sent again and again (query-version, query-commands,
    /// query-qmp-schema): dumping the same tree per request was a third of the server's CPU
    /// for a pipelined query-version. The text is jansson's, as `ReplyEncoder` writes a tree;
    /// the tree stays usable inside other values (the greeting holds the version). Neither
    /// may change afterwards.
    package init(constant value: JSON) {
        self.raw = cssd_json_incref(value.raw)!
        if let text = value.preserialized {
            self.preserialized = text
            return
        }
        let size = json_dumpb(value.raw, nil, 0, JSONDumpFlags.standard)
        self.preserialized = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = json_dumpb(
                value.raw, UnsafeMutableRawPointer(buffer.baseAddress)?.assumingMemoryBound(to: CChar.self), size,
                JSONDumpFlags.standard)
        }
    }

    deinit { cssd_json_decref(raw) }

    /// Hands the reference over to the caller, who must balance it (e.g. with a `_new` setter).
    func retainedRaw() -> UnsafeMutablePointer<json_t> { cssd_json_incref(raw)! }

    // MARK: Kinds

    package enum Kind: Sendable, Equatable {
        case object, array, string, integer, real, bool, null
    }

    package var kind: Kind {
        switch json_typeof_wrapper(raw) {
        case JSON_OBJECT: return .object
        case JSON_ARRAY: return .array
        case JSON_STRING: return .string
        case JSON_INTEGER: return .integer
        case JSON_REAL: return .real
        case JSON_TRUE, JSON_FALSE: return .bool
        default: return .null
        }
    }

    package var isObject: Bool { kind == .object }
    package var isString: Bool { kind == .string }

    // MARK: Constructors

    package static func string(_ value: String) -> JSON {
        var value = value
        return value.withUTF8 { bytes in
            // json_stringn validates UTF-8, which a Swift String always is; NULs are allowed.
            bytes.withMemoryRebound(to: CChar.self) { chars in
                JSON(owning: json_stringn(chars.baseAddress ?? emptyCString, chars.count)!)
            }
        }
    }

    package static func integer(_ value: Int) -> JSON { JSON(owning: json_integer(json_int_t(value))!) }
    package static func real(_ value: Double) -> JSON { JSON(owning: json_real(value) ?? json_null()!) }
    package static func bool(_ value: Bool) -> JSON { JSON(owning: value ? json_true()! : json_false()!) }
    package static var null: JSON { JSON(owning: json_null()!) }

    /// A string from UTF-8 bytes the caller has already checked (QEMU's parser decodes its
    /// strings itself: jansson's check would only repeat it). NUL bytes are allowed.
    package static func string(checkedUTF8 bytes: UnsafeBufferPointer<UInt8>) -> JSON {
        bytes.withMemoryRebound(to: CChar.self) {
            JSON(owning: json_stringn_nocheck($0.baseAddress ?? emptyCString, $0.count)!)
        }
    }

    package static func array(_ elements: [JSON] = []) -> JSON {
        let array = JSON(owning: json_array()!)
        for element in elements { array.append(element) }
        return array
    }

    /// An object whose keys keep the given order (jansson preserves insertion order).
    package static func object(_ members: KeyValuePairs<String, JSON>) -> JSON {
        let object = JSON(owning: json_object()!)
        for (key, value) in members { object[key] = value }
        return object
    }

    package static func object(_ members: [(String, JSON)]) -> JSON {
        let object = JSON(owning: json_object()!)
        for (key, value) in members { object[key] = value }
        return object
    }

    package static func emptyObject() -> JSON { JSON(owning: json_object()!) }

    // MARK: Accessors

    /// The string's bytes decoded as UTF-8 (jansson guarantees valid UTF-8, NULs included).
    package var stringValue: String? {
        guard let chars = json_string_value(raw) else { return nil }
        let length = json_string_length(raw)
        return chars.withMemoryRebound(to: UInt8.self, capacity: length) {
            String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
        }
    }

    package var intValue: Int? { kind == .integer ? Int(json_integer_value(raw)) : nil }
    package var doubleValue: Double? {
        switch kind {
        case .integer: return Double(json_integer_value(raw))
        case .real: return json_real_value(raw)
        default: return nil
        }
    }
    package var boolValue: Bool? {
        switch json_typeof_wrapper(raw) {
        case JSON_TRUE: return true
        case JSON_FALSE: return false
        default: return nil
        }
    }

    package var count: Int {
        switch kind {
        case .array: return json_array_size(raw)
        case .object: return json_object_size(raw)
        default: return 0
        }
    }

    package subscript(index: Int) -> JSON? {
        guard let element = json_array_get(raw, index) else { return nil }
        return JSON(borrowing: element)
    }

    package subscript(key: String) -> JSON? {
        get {
            guard let member = json_object_get(raw, key) else { return nil }
            return JSON(borrowing: member)
        }
        set {
            if let newValue {
                _ = cssd_json_object_set_new(raw, key, newValue.retainedRaw())
            } else {
                _ = json_object_del(raw, key)
            }
        }
    }

    /// Adds the member `key` (a string value, NULs included) to this object, unless the object
    /// already has a member of that name.
    /// - Returns: false, and the object unchanged, when `key` is already a member.
    package func addMember(key: JSON, value: JSON) -> Bool {
        let keyLength = json_string_length(key.raw)
        let keyChars = json_string_value(key.raw)!
        if json_object_getn(raw, keyChars, keyLength) != nil { return false }
        _ = json_object_setn_new_nocheck(raw, keyChars, keyLength, value.retainedRaw())
        return true
    }

    package func append(_ element: JSON) {
        _ = cssd_json_array_append_new(raw, element.retainedRaw())
    }

    /// The object's members in order, keys decoded as UTF-8.
    package var members: [(key: String, value: JSON)] {
        var result: [(key: String, value: JSON)] = []
        var iter = json_object_iter(raw)
        while let current = iter {
            result.append((JSON.iteratorKey(current), JSON(borrowing: json_object_iter_value(current)!)))
            iter = json_object_iter_next(raw, current)
        }
        return result
    }

    package var elements: [JSON] { (0..<count).compactMap { self[$0] } }

    /// The key at an object iterator, NULs included.
    static func iteratorKey(_ iter: UnsafeMutableRawPointer) -> String {
        let keyPointer = json_object_iter_key(iter)!
        let keyLength = json_object_iter_key_len(iter)
        return keyPointer.withMemoryRebound(to: UInt8.self, capacity: keyLength) {
            String(decoding: UnsafeBufferPointer(start: $0, count: keyLength), as: UTF8.self)
        }
    }

    // MARK: Comparison and text

    /// Structural equality as jansson defines it (objects compare regardless of key order).
    package func isEqual(to other: JSON) -> Bool { json_equal(raw, other.raw) != 0 }

    /// Compact single-line text with QEMU's separators (`": "`, `", "`), ASCII only.
    package func serialized(pretty: Bool = false) -> String {
        let flags = (pretty ? jsonIndent(2) : 0) | JSONDumpFlags.standard
        guard let text = json_dumps(raw, flags) else { return "null" }
        defer { free(text) }
        return String(cString: text)
    }

    /// Writes the value's compact text (as `serialized()`, without a terminating NUL) into
    /// `buffer`, when it fits.
    /// - Returns: the text's length in bytes; when larger than `buffer.count`, nothing usable
    ///   was written and the caller retries with that much room. 0: jansson refused the value
    ///   (it does not for values it built).
    package func dump(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        json_dumpb(raw, buffer.baseAddress?.assumingMemoryBound(to: CChar.self), buffer.count, JSONDumpFlags.standard)
    }

    /// Parses one complete JSON text with jansson (strict JSON, no QEMU extensions).
    package static func parse(_ text: String) -> JSON? {
        var text = text
        return text.withUTF8 { parse(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// Parses one complete JSON text given as UTF-8 bytes (strict JSON, `\u0000` allowed,
    /// duplicate keys refused).
    /// - Returns: the value, or nil when the bytes are not one JSON text.
    package static func parse(bytes: UnsafeRawBufferPointer) -> JSON? {
        var error = json_error_t()
        return json_loadb(
            bytes.baseAddress?.assumingMemoryBound(to: CChar.self) ?? emptyCString, bytes.count,
            JSONLoadFlags.standard, &error
        ).map { JSON(owning: $0) }
    }
}

extension JSON: CustomStringConvertible {
    package var description: String { serialized() }
}

/// Flags for jansson's loader and dumper used throughout the wire code.
enum JSONLoadFlags {
    /// Any top-level value; duplicate keys are errors (QEMU rejects them too); `\u0000` is
    /// allowed in strings (QEMU accepts it, and jansson strings carry their length).
    static let standard = Int(JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)
}

enum JSONDumpFlags {
    /// No indentation but QEMU's spaced separators; ASCII output; scalars allowed at top level.
    static let standard = Int(JSON_ENSURE_ASCII | JSON_ENCODE_ANY)
}

@inline(__always) func jsonIndent(_ n: Int) -> Int { n & 0x1F }

@inline(__always) func json_typeof_wrapper(_ raw: UnsafeMutablePointer<json_t>) -> json_type {
    raw.pointee.type
}

/// A valid pointer for zero-length strings.
nonisolated(unsafe) let emptyCString: UnsafePointer<CChar> = {
    let p = UnsafeMutablePointer<CChar>.allocate(capacity: 1)
    p.pointee = 0
    return UnsafePointer(p)
}()
