// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import JSONValues

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
///   ],
///   "channel-measurement": {"authorized": true, "chpids": [   (only when set)
///     {"chpid": "0.40", "cmg": 2, "load": {"util_part": 40.0}}
///   ]}
/// }
/// ```
/// `pchid` is left out when there is none; `enabled`, `online` and `isc` only when not their
/// defaults (false, true, 0); `qdio` only when the description states it (nil: derived from the control
/// unit, so generated and sysfs-read topologies never carry it); a guest's and a guest device's optional members only when set. A number out
/// of its field's range is written as a JSON integer, so that decoding it reports the range
/// error instead of a notation error.
enum TopologyEncoder {
    static func encode(_ topology: Topology) -> [UInt8] {
        var out = encodeMachine(topology)
        guard let measurement = topology.measurement else { return out }
        // The machine's part ends the document ("\n}\n"); the measurement section goes last.
        out.removeLast(3)
        out.append(text: ",\n  \"channel-measurement\": {\"authorized\": ")
        out.append(text: measurement.authorized ? "true" : "false")
        out.append(text: ", \"chpids\": [")
        for (index, path) in measurement.chpids.enumerated() {
            out.append(text: index == 0 ? "\n    {\"chpid\": \"" : ",\n    {\"chpid\": \"")
            chpid(path.id, to: &out)
            out.append(text: "\"")
            switch path.cmg {
            case .byType: break
            case .none: out.append(text: ", \"cmg\": \"none\"")
            case .group(let value):
                out.append(text: ", \"cmg\": ")
                out.append(decimal: value)
            }
            if !path.load.isEmpty {
                out.append(text: ", \"load\": {")
                for (slot, (key, value)) in path.load.sorted(by: { $0.key < $1.key }).enumerated() {
                    if slot > 0 { out.append(text: ", ") }
                    string(key, to: &out)
                    // Swift's shortest round-tripping form, which JSON reads back to the same double.
                    out.append(contentsOf: Array(": \(value)".utf8))
                }
                out.append(text: "}")
            }
            out.append(text: "}")
        }
        out.append(text: measurement.chpids.isEmpty ? "]}\n}\n" : "\n  ]}\n}\n")
        return out
    }

    /// Everything but the channel-measurement section, ending in "\n}\n".
    private static func encodeMachine(_ topology: Topology) -> [UInt8] {
        var out: [UInt8] = []
        // About 130 bytes per subchannel line with four paths, 20 more per extra path.
        out.reserveCapacity(512 + topology.channelPaths.count * 128 + topology.subchannels.count * 200)
        out.append(text: "{\n  \"format\": \"cssd-topology\",\n  \"version\": ")
        out.append(decimal: TopologyFile.version)
        out.append(text: ",\n")
        if let multipleCSS = topology.multipleCSSEnabled {
            out.append(text: "  \"multiple-css\": ")
            out.append(text: multipleCSS ? "true" : "false")
            out.append(text: ",\n")
        }

        out.append(text: "  \"channel-subsystems\": [")
        for (index, css) in topology.channelSubsystems.enumerated() {
            out.append(text: index == 0 ? "\n    {\"cssid\": " : ",\n    {\"cssid\": ")
            hexString(css.cssid, width: 1, max: 0xff, prefix: false, to: &out)
            out.append(text: "}")
        }
        out.append(text: topology.channelSubsystems.isEmpty ? "],\n" : "\n  ],\n")

        out.append(text: "  \"chpids\": [")
        for (index, path) in topology.channelPaths.enumerated() {
            out.append(text: index == 0 ? "\n    {\"chpid\": \"" : ",\n    {\"chpid\": \"")
            chpid(path.id, to: &out)
            out.append(text: "\", \"type\": ")
            hexString(path.type, width: 2, max: 0xff, prefix: true, to: &out)
            out.append(text: ", \"shared\": ")
            out.append(text: path.shared ? "true" : "false")
            if let pchid = path.pchid {
                out.append(text: ", \"pchid\": ")
                hexString(pchid, width: 4, max: 0xffff, prefix: true, to: &out)
            }
            out.append(text: ", \"vary\": \"")
            out.append(contentsOf: path.vary.rawValue.utf8)
            out.append(text: "\", \"configure\": \"")
            out.append(contentsOf: path.configure.description.utf8)
            out.append(text: "\"}")
        }
        out.append(text: topology.channelPaths.isEmpty ? "],\n" : "\n  ],\n")

        out.append(text: "  \"subchannels\": [")
        for (index, sch) in topology.subchannels.enumerated() {
            out.append(text: index == 0 ? "\n    {\"subchannel\": \"" : ",\n    {\"subchannel\": \"")
            threePart(Int(sch.id.cssid), Int(sch.id.ssid), Int(sch.id.schno), to: &out)
            if sch.type != .io {
                out.append(text: "\", \"type\": \"")
                out.append(contentsOf: sch.type.description.utf8)
            }
            out.append(text: "\", \"devno\": ")
            if let devno = sch.devno {
                if (0...0xffff).contains(devno) {
                    out.append(text: "\"")
                    threePart(Int(sch.id.cssid), Int(sch.id.ssid), devno, to: &out)
                    out.append(text: "\"")
                } else {
                    out.append(decimal: devno)
                }
            } else {
                out.append(text: "null")
            }
            out.append(text: ", \"dev-type\": ")
            typeModel(sch.devType, sch.devModel, to: &out)
            out.append(text: ", \"cu-type\": ")
            typeModel(sch.cuType, sch.cuModel, to: &out)
            if sch.enabled { out.append(text: ", \"enabled\": true") }
            if !sch.online { out.append(text: ", \"online\": false") }
            if sch.isc != 0 {
                out.append(text: ", \"isc\": ")
                out.append(decimal: sch.isc)
            }
            if let qdio = sch.qdio { out.append(text: qdio ? ", \"qdio\": true" : ", \"qdio\": false") }
            out.append(text: ", \"chpids\": [")
            for (slot, id) in sch.chpids.enumerated() {
                out.append(text: slot == 0 ? "\"" : ", \"")
                chpid(id, to: &out)
                out.append(text: "\"")
            }
            out.append(text: "]}")
        }
        if topology.guests.isEmpty {
            out.append(text: topology.subchannels.isEmpty ? "]\n}\n" : "\n  ]\n}\n")
            return out
        }
        out.append(text: topology.subchannels.isEmpty ? "],\n" : "\n  ],\n")
        out.append(text: "  \"guests\": [")
        for (index, guest) in topology.guests.enumerated() {
            out.append(text: index == 0 ? "\n    {\"name\": " : ",\n    {\"name\": ")
            string(guest.name, to: &out)
            if let strategy = guest.strategy {
                out.append(text: ", \"strategy\": ")
                string(strategy, to: &out)
            }
            if let capacity = guest.crwCapacity {
                out.append(text: ", \"crw-capacity\": ")
                out.append(decimal: capacity)
            }
            out.append(text: ", \"devices\": [")
            for (slot, device) in guest.devices.enumerated() {
                out.append(text: slot == 0 ? "\n      {" : ",\n      {")
                self.device(device, to: &out)
                out.append(text: "}")
            }
            out.append(text: guest.devices.isEmpty ? "]}" : "\n    ]}")
        }
        out.append(text: "\n  ]\n}\n")
        return out
    }

    /// `"virtio": {...}` or `"passthrough": {...}`, without the enclosing braces.
    static func device(_ device: Topology.GuestDevice, to out: inout [UInt8]) {
        switch device {
        case let .virtio(subchannel, devno, cuModel):
            out.append(text: "\"virtio\": {")
            if let subchannel {
                out.append(text: "\"subchannel\": \"")
                threePart(Int(subchannel.cssid), Int(subchannel.ssid), Int(subchannel.schno), to: &out)
                out.append(text: "\", ")
            }
            if let devno {
                out.append(text: "\"devno\": ")
                if (0...0xffff).contains(devno) {
                    // In the subchannel's set, or the default one's (fe.0).
                    let set = subchannel ?? TopologyDecoder.defaultVirtioSubchannel
                    out.append(text: "\"")
                    threePart(Int(set.cssid), Int(set.ssid), devno, to: &out)
                    out.append(text: "\"")
                } else {
                    out.append(decimal: devno)
                }
                out.append(text: ", ")
            }
            out.append(text: "\"cu-model\": ")
            hexString(cuModel, width: 2, max: 0xff, prefix: true, to: &out)
            out.append(text: "}")
        case let .passthrough(host, guestSubchannel, guestChpids):
            out.append(text: "\"passthrough\": {\"host-subchannel\": \"")
            threePart(Int(host.cssid), Int(host.ssid), Int(host.schno), to: &out)
            out.append(text: "\"")
            if let guestSubchannel {
                out.append(text: ", \"guest-subchannel\": \"")
                threePart(Int(guestSubchannel.cssid), Int(guestSubchannel.ssid), Int(guestSubchannel.schno), to: &out)
                out.append(text: "\"")
            }
            if let guestChpids {
                out.append(text: ", \"guest-chpids\": [")
                for (slot, id) in guestChpids.enumerated() {
                    out.append(text: slot == 0 ? "\"" : ", \"")
                    chpid(id, to: &out)
                    out.append(text: "\"")
                }
                out.append(text: "]")
            }
            out.append(text: "}")
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
                out.append(text: "\\u00")
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
            out.append(decimal: value)
            return
        }
        out.append(text: prefix ? "\"0x" : "\"")
        out.append(hex: value, width: width)
        out.append(UInt8(ascii: "\""))
    }
}
