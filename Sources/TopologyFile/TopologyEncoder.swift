// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// Writes the file format by hand rather than through jansson's dumper, for a layout that
/// diffs and greps well (one chpid or subchannel per line, keys always in the same order)
/// and for speed: the output is built in one byte buffer without a String per value.
///
/// Layout (see API/topology.md):
/// ```
/// {
///   "format": "cssd-topology",
///   "version": 1,
///   "multiple-css": true,                  (only when set explicitly)
///   "channel-subsystems": [
///     {"cssid": "0"}
///   ],
///   "chpids": [
///     {"chpid": "0.40", "type": "0x1a", "shared": true, "pchid": "0x0100", "vary": "online", "configure": "configured"}
///   ],
///   "subchannels": [
///     {"subchannel": "0.0.0000", "devno": "0.0.1000", "dev-type": "3390/0c", "cu-type": "3990/e9", "chpids": ["0.40", "0.41"]}
///   ],
///   "guests": [                            (only when there are guests)
///     {"name": "guest1", "strategy": "crw", "crw-capacity": 64, "devices": [
///       {"virtio": {"subchannel": "fe.0.0000", "devno": "fe.0.0000", "cu-model": "0x01"}},
///       {"passthrough": {"host-subchannel": "0.0.0003", "guest-subchannel": "fe.0.0002", "guest-chpids": ["fe.40"]}}
///     ]}
///   ]
/// }
/// ```
/// `pchid` is left out when there is none; `enabled` and `isc` only when not their defaults
/// (false, 0); a guest's and a guest device's optional members only when set. A number out
/// of its field's range is written as a JSON integer, so that decoding it reports the range
/// error instead of a notation error.
enum TopologyEncoder {
    static func encode(_ topology: Topology) -> [UInt8] {
        var out: [UInt8] = []
        // About 130 bytes per subchannel line with four paths, 20 more per extra path.
        out.reserveCapacity(512 + topology.channelPaths.count * 128 + topology.subchannels.count * 200)
        out.append("{\n  \"format\": \"cssd-topology\",\n  \"version\": ")
        out.appendDecimal(TopologyFile.version)
        out.append(",\n")
        if let multipleCSS = topology.multipleCSSEnabled {
            out.append("  \"multiple-css\": ")
            out.append(multipleCSS ? "true" : "false")
            out.append(",\n")
        }

        out.append("  \"channel-subsystems\": [")
        for (index, css) in topology.channelSubsystems.enumerated() {
            out.append(index == 0 ? "\n    {\"cssid\": " : ",\n    {\"cssid\": ")
            hexString(css.cssid, width: 1, max: 0xff, prefix: false, to: &out)
            out.append("}")
        }
        out.append(topology.channelSubsystems.isEmpty ? "],\n" : "\n  ],\n")

        out.append("  \"chpids\": [")
        for (index, path) in topology.channelPaths.enumerated() {
            out.append(index == 0 ? "\n    {\"chpid\": \"" : ",\n    {\"chpid\": \"")
            chpid(path.id, to: &out)
            out.append("\", \"type\": ")
            hexString(path.type, width: 2, max: 0xff, prefix: true, to: &out)
            out.append(", \"shared\": ")
            out.append(path.shared ? "true" : "false")
            if let pchid = path.pchid {
                out.append(", \"pchid\": ")
                hexString(pchid, width: 4, max: 0xffff, prefix: true, to: &out)
            }
            out.append(", \"vary\": \"")
            out.append(contentsOf: path.vary.rawValue.utf8)
            out.append("\", \"configure\": \"")
            out.append(contentsOf: path.configure.description.utf8)
            out.append("\"}")
        }
        out.append(topology.channelPaths.isEmpty ? "],\n" : "\n  ],\n")

        out.append("  \"subchannels\": [")
        for (index, sch) in topology.subchannels.enumerated() {
            out.append(index == 0 ? "\n    {\"subchannel\": \"" : ",\n    {\"subchannel\": \"")
            threePart(Int(sch.id.cssid), Int(sch.id.ssid), Int(sch.id.schno), to: &out)
            out.append("\", \"devno\": ")
            if let devno = sch.devno {
                if (0...0xffff).contains(devno) {
                    out.append("\"")
                    threePart(Int(sch.id.cssid), Int(sch.id.ssid), devno, to: &out)
                    out.append("\"")
                } else {
                    out.appendDecimal(devno)
                }
            } else {
                out.append("null")
            }
            out.append(", \"dev-type\": ")
            typeModel(sch.devType, sch.devModel, to: &out)
            out.append(", \"cu-type\": ")
            typeModel(sch.cuType, sch.cuModel, to: &out)
            if sch.enabled { out.append(", \"enabled\": true") }
            if sch.isc != 0 {
                out.append(", \"isc\": ")
                out.appendDecimal(sch.isc)
            }
            out.append(", \"chpids\": [")
            for (slot, id) in sch.chpids.enumerated() {
                out.append(slot == 0 ? "\"" : ", \"")
                chpid(id, to: &out)
                out.append("\"")
            }
            out.append("]}")
        }
        if topology.guests.isEmpty {
            out.append(topology.subchannels.isEmpty ? "]\n}\n" : "\n  ]\n}\n")
            return out
        }
        out.append(topology.subchannels.isEmpty ? "],\n" : "\n  ],\n")
        out.append("  \"guests\": [")
        for (index, guest) in topology.guests.enumerated() {
            out.append(index == 0 ? "\n    {\"name\": " : ",\n    {\"name\": ")
            string(guest.name, to: &out)
            if let strategy = guest.strategy {
                out.append(", \"strategy\": ")
                string(strategy, to: &out)
            }
            if let capacity = guest.crwCapacity {
                out.append(", \"crw-capacity\": ")
                out.appendDecimal(capacity)
            }
            out.append(", \"devices\": [")
            for (slot, device) in guest.devices.enumerated() {
                out.append(slot == 0 ? "\n      {" : ",\n      {")
                self.device(device, to: &out)
                out.append("}")
            }
            out.append(guest.devices.isEmpty ? "]}" : "\n    ]}")
        }
        out.append("\n  ]\n}\n")
        return out
    }

    /// `"virtio": {...}` or `"passthrough": {...}`, without the enclosing braces.
    static func device(_ device: Topology.GuestDevice, to out: inout [UInt8]) {
        switch device {
        case let .virtio(subchannel, devno, cuModel):
            out.append("\"virtio\": {")
            if let subchannel {
                out.append("\"subchannel\": \"")
                threePart(Int(subchannel.cssid), Int(subchannel.ssid), Int(subchannel.schno), to: &out)
                out.append("\", ")
            }
            if let devno {
                out.append("\"devno\": ")
                if (0...0xffff).contains(devno) {
                    // In the subchannel's set, or the default one's (fe.0).
                    let set = subchannel ?? TopologyDecoder.defaultVirtioSubchannel
                    out.append("\"")
                    threePart(Int(set.cssid), Int(set.ssid), devno, to: &out)
                    out.append("\"")
                } else {
                    out.appendDecimal(devno)
                }
                out.append(", ")
            }
            out.append("\"cu-model\": ")
            hexString(cuModel, width: 2, max: 0xff, prefix: true, to: &out)
            out.append("}")
        case let .passthrough(host, guestSubchannel, guestChpids):
            out.append("\"passthrough\": {\"host-subchannel\": \"")
            threePart(Int(host.cssid), Int(host.ssid), Int(host.schno), to: &out)
            out.append("\"")
            if let guestSubchannel {
                out.append(", \"guest-subchannel\": \"")
                threePart(Int(guestSubchannel.cssid), Int(guestSubchannel.ssid), Int(guestSubchannel.schno), to: &out)
                out.append("\"")
            }
            if let guestChpids {
                out.append(", \"guest-chpids\": [")
                for (slot, id) in guestChpids.enumerated() {
                    out.append(slot == 0 ? "\"" : ", \"")
                    chpid(id, to: &out)
                    out.append("\"")
                }
                out.append("]")
            }
            out.append("}")
        }
    }

    /// A JSON string: `"` and `\` escaped, control characters as `\u00XX`, the rest as UTF-8.
    static func string(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                out.append(UInt8(ascii: "\\"))
                out.append(byte)
            case 0..<0x20:
                out.append("\\u00")
                out.append(hex: byte, width: 2)
            default:
                out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// `0.4a`
    @inline(__always)
    static func chpid(_ id: ChannelPathID, to out: inout [UInt8]) {
        out.append(chpid: id.cssid, id.chpid)
    }

    /// `0.0.0042`
    @inline(__always)
    static func threePart(_ cssid: Int, _ ssid: Int, _ number: Int, to out: inout [UInt8]) {
        out.append(hex: cssid)
        out.append(UInt8(ascii: "."))
        out.append(hex: ssid)
        out.append(UInt8(ascii: "."))
        out.append(hex: number, width: 4)
    }

    /// `"3390/0c"`; the pair as an invalid string that names both numbers if either is out of
    /// range (the file has no other way to carry it; decoding then reports it).
    @inline(__always)
    static func typeModel(_ type: Int, _ model: Int, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        if (0...0xffff).contains(type), (0...0xff).contains(model) {
            out.append(hex: type, width: 4)
            out.append(UInt8(ascii: "/"))
            out.append(hex: model, width: 2)
        } else {
            out.append(contentsOf: "\(type)/\(model) (out of range)".utf8)
        }
        out.append(UInt8(ascii: "\""))
    }

    /// `"0x1a"` (or `"fe"` without prefix); a JSON integer when out of range.
    @inline(__always)
    static func hexString(_ value: Int, width: Int, max: Int, prefix: Bool, to out: inout [UInt8]) {
        guard (0...max).contains(value) else {
            out.appendDecimal(value)
            return
        }
        out.append(prefix ? "\"0x" : "\"")
        out.append(hex: value, width: width)
        out.append(UInt8(ascii: "\""))
    }
}
