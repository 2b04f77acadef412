// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import JSONValues

#if canImport(Glibc)
import Glibc
#endif

/// The values inside a topology file's members (ids, numbers, choices), the errors the
/// decoder throws, and what it reads of a node.
extension TopologyDecoder {
    // MARK: Values

    func subchannelID(_ node: Node, path: @autoclosure () -> String) throws(TopologyFileError) -> SubchannelID {
        let parts = try string(node, path: path()) {
            Hex.parts($0, separator: UInt8(ascii: "."), maxDigits: (2, 1, 4))
        }
        if let (cssid, ssid, schno) = parts, ssid <= 3 {
            return SubchannelID(cssid: UInt8(cssid), ssid: UInt8(ssid), schno: UInt16(schno))
        }
        do {
            return try SubchannelID(parsing: text(node), argument: "subchannel")
        } catch {
            throw fail(path(), "'\(error.text)': \(error.reason)")
        }
    }

    func chpid(_ node: Node, path: @autoclosure () -> String) throws(TopologyFileError) -> ChannelPathID {
        let parts = try string(node, path: path()) {
            Hex.parts($0, separator: UInt8(ascii: "."), maxDigits: (2, 2, 0))
        }
        if let (cssid, chpid, _) = parts { return ChannelPathID(cssid: UInt8(cssid), chpid: UInt8(chpid)) }
        do {
            return try ChannelPathID(parsing: text(node), argument: "chpid")
        } catch {
            throw fail(path(), "'\(error.text)': \(error.reason)")
        }
    }

    /// `"0.0.4711"` (in the subchannel's own subchannel set), an integer, or null (no valid
    /// device number). `defaultSet`: `id` is not given but the default set of the entry (whose
    /// subchannel number is not known yet). `allowNull`: false where a device always has one.
    func devno(
        _ node: Node, of id: SubchannelID, defaultSet: Bool = false, allowNull: Bool = true,
        path: @autoclosure () -> String
    ) throws(TopologyFileError) -> Int? {
        switch node.kind {
        case .null where allowNull: return nil
        case .integer: return node.intValue!
        case .string:
            let parts = withBytes(node) { Hex.parts($0, separator: UInt8(ascii: "."), maxDigits: (2, 1, 4)) }
            let device: DeviceID
            if let (cssid, ssid, devno) = parts, ssid <= 3 {
                device = DeviceID(cssid: UInt8(cssid), ssid: UInt8(ssid), devno: UInt16(devno))
            } else {
                do {
                    device = try DeviceID(parsing: text(node), argument: "devno")
                } catch {
                    throw fail(path(), "'\(error.text)': \(error.reason)")
                }
            }
            guard device.cssid == id.cssid, device.ssid == id.ssid else {
                if defaultSet {
                    throw fail(
                        path(),
                        "device \(device) is not in subchannel set \(Hex.string(id.cssid)).\(id.ssid), where a "
                            + "device without \"subchannel\" goes "
                            + "(expected \(Hex.string(id.cssid)).\(id.ssid).\(Hex.string(device.devno, width: 4)))")
                }
                throw fail(
                    path(),
                    "device \(device) is not in the subchannel set of subchannel \(id) "
                        + "(expected \(Hex.string(id.cssid)).\(id.ssid).\(Hex.string(device.devno, width: 4)))")
            }
            return Int(device.devno)
        default:
            let example = "\(Hex.string(id.cssid)).\(id.ssid).4711"
            throw fail(
                path(),
                allowNull
                    ? "expected a device number like \"\(example)\", an integer or null, found \(describe(node))"
                    : "expected a device number like \"\(example)\" or an integer, found \(describe(node))")
        }
    }

    /// `"3390/0c"`: type (1-4 hex digits) / model (1-2 hex digits), as lscss prints them.
    func typeModel(_ node: Node, path: @autoclosure () -> String, example: String) throws(TopologyFileError) -> (
        type: Int, model: Int
    ) {
        let parts = try string(node, path: path(), expected: "a string like \"\(example)\"") {
            Hex.parts($0, separator: UInt8(ascii: "/"), maxDigits: (4, 2, 0))
        }
        guard let (type, model, _) = parts else {
            throw fail(path(), "'\(text(node))': expected type/model in hex, like \(example)")
        }
        return (type, model)
    }

    /// An integer, or a hex string with an optional 0x prefix.
    func hexNumber(_ node: Node, path: @autoclosure () -> String, example: String) throws(TopologyFileError) -> Int {
        switch node.kind {
        case .integer: return node.intValue!
        case .string:
            guard let value = withBytes(node, Hex.prefixedNumber) else {
                throw fail(path(), "'\(text(node))': expected a hex number like \(example) (0x optional) or an integer")
            }
            return value
        default:
            throw fail(path(), "expected a hex string like \"\(example)\" or an integer, found \(describe(node))")
        }
    }

    func integer(_ node: Node, path: @autoclosure () -> String) throws(TopologyFileError) -> Int {
        guard let value = node.intValue else { throw fail(path(), "expected an integer, found \(describe(node))") }
        return value
    }

    func bool(_ node: Node, path: @autoclosure () -> String) throws(TopologyFileError) -> Bool {
        switch node.boolValue {
        case true?: return true
        case false?: return false
        case nil: throw fail(path(), "expected true or false, found \(describe(node))")
        }
    }

    /// The index of the string in `names`.
    func choice(_ node: Node, _ names: [String], path: @autoclosure () -> String) throws(TopologyFileError) -> Int {
        let quoted = names.map { "\"\($0)\"" }.joined(separator: ", ")
        guard node.kind == .string else { throw fail(path(), "expected one of \(quoted), found \(describe(node))") }
        let value = text(node)
        guard let index = names.firstIndex(of: value) else {
            throw fail(path(), "'\(value)' is not one of \(quoted)")
        }
        return index
    }

    func object(_ node: Node, path: @autoclosure () -> String) throws(TopologyFileError) {
        guard node.kind == .object else { throw fail(path(), "expected an object, found \(describe(node))") }
    }

    func array(_ node: Node, path: @autoclosure () -> String) throws(TopologyFileError) {
        guard node.kind == .array else { throw fail(path(), "expected an array, found \(describe(node))") }
    }

    /// Runs `body` on a string's bytes; a non-string is an error.
    @inline(__always)
    func string<T>(
        _ node: Node, path: @autoclosure () -> String, expected: String = "a string",
        _ body: (UnsafeBufferPointer<UInt8>) -> T
    ) throws(TopologyFileError) -> T {
        guard node.kind == .string else { throw fail(path(), "expected \(expected), found \(describe(node))") }
        return withBytes(node, body)
    }

    // MARK: Errors

    func fail(_ path: String, _ message: String) -> TopologyFileError {
        TopologyFileError(file: file, location: .field(path), message: message)
    }

    func missing(_ path: String, _ key: String) -> TopologyFileError {
        fail(path, "missing required key \"\(key)\"")
    }
}

// MARK: Node helpers

@inline(__always)
func withBytes<T>(_ node: JSONNode, _ body: (UnsafeBufferPointer<UInt8>) -> T) -> T {
    node.withStringBytes(body)!
}

func text(_ node: JSONNode) -> String {
    withBytes(node) { String(decoding: $0, as: UTF8.self) }
}

func stringEquals(_ node: JSONNode, _ value: String) -> Bool {
    withBytes(node) { $0.elementsEqual(value.utf8) }
}

func kindName(_ node: JSONNode) -> String {
    switch node.kind {
    case .object: "an object"
    case .array: "an array"
    case .string: "a string"
    case .integer: "an integer"
    case .real: "a real number"
    case .bool: "a boolean"
    case .null: "null"
    }
}

/// The kind and, for a scalar, the value: `a string "x"`, `an integer 5`, `true`, `null`.
func describe(_ node: JSONNode) -> String {
    switch node.kind {
    case .string: "the string \"\(text(node))\""
    case .integer: "the integer \(node.intValue!)"
    case .real: "the number \(node.realValue!)"
    case .bool: node.boolValue! ? "true" : "false"
    default: kindName(node)
    }
}
