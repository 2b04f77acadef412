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
///   ]
/// }
/// ```
/// `pchid` is left out when there is none; `enabled` and `isc` only when not their defaults
/// (false, 0). A number out of its field's range is written as a JSON integer, so that
/// decoding it reports the range error instead of a notation error.
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
        out.append(topology.subchannels.isEmpty ? "]\n}\n" : "\n  ]\n}\n")
        return out
    }

    /// `0.4a`
    @inline(__always)
    static func chpid(_ id: ChannelPathID, to out: inout [UInt8]) {
        appendHex(Int(id.cssid), width: 1, to: &out)
        out.append(UInt8(ascii: "."))
        appendHex(Int(id.chpid), width: 2, to: &out)
    }

    /// `0.0.0042`
    @inline(__always)
    static func threePart(_ cssid: Int, _ ssid: Int, _ number: Int, to out: inout [UInt8]) {
        appendHex(cssid, width: 1, to: &out)
        out.append(UInt8(ascii: "."))
        appendHex(ssid, width: 1, to: &out)
        out.append(UInt8(ascii: "."))
        appendHex(number, width: 4, to: &out)
    }

    /// `"3390/0c"`; the pair as an invalid string that names both numbers if either is out of
    /// range (the file has no other way to carry it; decoding then reports it).
    @inline(__always)
    static func typeModel(_ type: Int, _ model: Int, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        if (0...0xffff).contains(type), (0...0xff).contains(model) {
            appendHex(type, width: 4, to: &out)
            out.append(UInt8(ascii: "/"))
            appendHex(model, width: 2, to: &out)
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
        appendHex(value, width: width, to: &out)
        out.append(UInt8(ascii: "\""))
    }
}
