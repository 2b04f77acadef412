// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// The values of the subset (ids, masks, hex numbers) and the JSON tokens under them, read in
/// place from the bytes.
extension FastTopologyReader {
    // MARK: Values

    mutating func subchannelID() -> SubchannelID? {
        guard let text = string(),
            let (cssid, ssid, schno) = Hex.parts(text, separator: UInt8(ascii: "."), maxDigits: (2, 1, 4)),
            ssid <= 3
        else { return nil }
        return SubchannelID(cssid: UInt8(cssid), ssid: UInt8(ssid), schno: UInt16(schno))
    }

    mutating func chpid() -> ChannelPathID? {
        guard let text = string(),
            let (cssid, chpid, _) = Hex.parts(text, separator: UInt8(ascii: "."), maxDigits: (2, 2, 0))
        else { return nil }
        return ChannelPathID(cssid: UInt8(cssid), chpid: UInt8(chpid))
    }

    /// `["0.40", ...]`: a subchannel's paths or a guest device's chpids.
    mutating func chpidList() -> [ChannelPathID]? {
        var list: [ChannelPathID] = []
        list.reserveCapacity(8)
        guard
            array({ reader in
                guard let chpid = reader.chpid() else { return false }
                list.append(chpid)
                return true
            })
        else { return nil }
        return list
    }

    /// A device number: `"c.s.dddd"` (the number, and css << 8 | set for the caller to check),
    /// or a bare integer (no set).
    mutating func devnoValue() -> (value: Int, set: Int?)? {
        guard peek() == UInt8(ascii: "\"") else { return integer().map { ($0, nil) } }
        guard let text = string(),
            let (cssid, ssid, number) = Hex.parts(text, separator: UInt8(ascii: "."), maxDigits: (2, 1, 4)),
            ssid <= 3
        else { return nil }
        return (number, cssid << 8 | ssid)
    }

    mutating func typeModel() -> (type: Int, model: Int)? {
        guard let text = string(),
            let (type, model, _) = Hex.parts(text, separator: UInt8(ascii: "/"), maxDigits: (4, 2, 0))
        else { return nil }
        return (type, model)
    }

    mutating func hexNumber() -> Int? {
        if peek() == UInt8(ascii: "\"") {
            guard let text = string() else { return nil }
            return Hex.prefixedNumber(text)
        }
        return integer()
    }

    // MARK: JSON tokens

    static let endOfObject = -1

    /// The next member's key index in `keys` (the value is next), or `endOfObject` after the
    /// closing brace; nil for anything else, an unknown key, or a key seen before.
    @inline(__always)
    mutating func member(_ first: inout Bool, _ keys: [StaticString], _ seen: inout UInt32) -> Int? {
        skipSpace()
        if consume(UInt8(ascii: "}")) { return Self.endOfObject }
        if !first {
            guard consume(UInt8(ascii: ",")) else { return nil }
            skipSpace()
        }
        first = false
        guard let key = string() else { return nil }
        guard
            let index = keys.firstIndex(where: {
                $0.utf8CodeUnitCount == key.count
                    && key.elementsEqual(UnsafeBufferPointer(start: $0.utf8Start, count: $0.utf8CodeUnitCount))
            })
        else {
            return nil
        }
        let bit = UInt32(1) << UInt32(index)
        guard seen & bit == 0 else { return nil }
        seen |= bit
        skipSpace()
        guard consume(UInt8(ascii: ":")) else { return nil }
        skipSpace()
        return index
    }

    /// An array whose elements `element` reads (it returns false to give up).
    @inline(__always)
    mutating func array(_ element: (inout FastTopologyReader) -> Bool) -> Bool {
        guard consume(UInt8(ascii: "[")) else { return false }
        skipSpace()
        if consume(UInt8(ascii: "]")) { return true }
        while true {
            skipSpace()
            guard element(&self) else { return false }
            skipSpace()
            if consume(UInt8(ascii: "]")) { return true }
            guard consume(UInt8(ascii: ",")) else { return false }
        }
    }

    /// A string's bytes, if it is printable ASCII without escapes.
    @inline(__always)
    mutating func string() -> UnsafeBufferPointer<UInt8>? {
        guard consume(UInt8(ascii: "\"")) else { return nil }
        let start = position
        while position < end {
            let byte = position.pointee
            if byte == UInt8(ascii: "\"") {
                let text = UnsafeBufferPointer(start: start, count: position - start)
                position += 1
                return text
            }
            guard byte >= 0x20, byte < 0x7f, byte != UInt8(ascii: "\\") else { return nil }
            position += 1
        }
        return nil
    }

    /// An integer as JSON writes it, without fraction or exponent, of at most 18 digits.
    mutating func integer() -> Int? {
        let negative = consume(UInt8(ascii: "-"))
        let start = position
        var value = 0
        while position < end, position.pointee &- UInt8(ascii: "0") < 10 {
            guard position - start < 18 else { return nil }
            value = value * 10 + Int(position.pointee &- UInt8(ascii: "0"))
            position += 1
        }
        let digits = position - start
        guard digits > 0, digits == 1 || start.pointee != UInt8(ascii: "0") else { return nil }
        if position < end {
            let next = position.pointee
            guard next != UInt8(ascii: "."), next | 0x20 != UInt8(ascii: "e") else { return nil }
        }
        return negative ? -value : value
    }

    mutating func bool() -> Bool? {
        if consumeLiteral("true") { return true }
        if consumeLiteral("false") { return false }
        return nil
    }

    @inline(__always)
    mutating func consumeLiteral(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard end - position >= count,
            UnsafeBufferPointer(start: position, count: count).elementsEqual(
                UnsafeBufferPointer(start: literal.utf8Start, count: count))
        else { return false }
        // A literal must end where a token ends ("truex" is not true).
        if end - position > count {
            let next = position[count]
            guard !(next >= UInt8(ascii: "a") && next <= UInt8(ascii: "z")) else { return false }
        }
        position += count
        return true
    }

    @inline(__always)
    func peek() -> UInt8? { position < end ? position.pointee : nil }

    @inline(__always)
    mutating func consume(_ byte: UInt8) -> Bool {
        guard position < end, position.pointee == byte else { return false }
        position += 1
        return true
    }

    @inline(__always)
    mutating func skipSpace() {
        while position < end {
            switch position.pointee {
            case 0x20, 0x0a, 0x0d, 0x09: position += 1
            default: return
            }
        }
    }
}
