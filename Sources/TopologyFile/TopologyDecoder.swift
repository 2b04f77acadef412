// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import JSONValues

#if canImport(Glibc)
import Glibc
#endif

/// Walks jansson's tree of a topology file into a `Topology`, checking the format: keys,
/// value types, id notation. Ranges, uniqueness and references are left to
/// `Topology.validate()`, which the caller runs next.
///
/// Works on borrowed `JSONNode`s (valid while the caller holds the root) and string bytes in
/// place: a 262,144-subchannel file has about four million values, and a Swift
/// object or String per value would cost more than jansson's parse. Field paths are only
/// formatted when an error is thrown.
struct TopologyDecoder {
    typealias Node = JSONNode

    let file: String

    // MARK: Keys

    static let topKeys: [StaticString] = [
        "format", "version", "multiple-css", "channel-subsystems", "chpids", "subchannels", "guests",
        "channel-measurement",
    ]
    static let cssKeys: [StaticString] = ["cssid"]
    static let chpidKeys: [StaticString] = ["chpid", "type", "shared", "pchid", "vary", "configure"]
    static let subchannelKeys: [StaticString] = [
        "subchannel", "devno", "dev-type", "cu-type", "enabled", "isc", "chpids", "type", "qdio", "online",
    ]
    static let measurementKeys: [StaticString] = ["authorized", "chpids"]
    static let measuredPathKeys: [StaticString] = ["chpid", "cmg", "load"]
    static let guestKeys: [StaticString] = ["name", "strategy", "crw-capacity", "devices"]
    static let guestDeviceKeys: [StaticString] = ["virtio", "passthrough"]
    static let virtioKeys: [StaticString] = ["subchannel", "devno", "cu-model"]
    static let passthroughKeys: [StaticString] = ["host-subchannel", "guest-subchannel", "guest-chpids"]
    /// Where a virtio device without a `subchannel` goes (its `devno` is in this set).
    static let defaultVirtioSubchannel = SubchannelID(cssid: 0xfe, ssid: 0, schno: 0)

    /// Visits an object's members in document order with the index of each key in `keys`;
    /// an unknown key is an error at `path.key` naming the accepted keys.
    @inline(__always)
    func members(
        _ object: Node, _ keys: [StaticString], path: @autoclosure () -> String,
        _ body: (Int, Node) throws(TopologyFileError) -> Void
    ) throws(TopologyFileError) {
        try object.forEachMember { (key, value) throws(TopologyFileError) in
            guard let index = Self.keyIndex(key, keys) else {
                let text = String(decoding: key, as: UTF8.self)
                let known = keys.map { "\($0)" }.joined(separator: ", ")
                let parent = path()
                throw fail(
                    parent.isEmpty ? text : "\(parent).\(text)", "unknown key \"\(text)\"; the keys here are: \(known)")
            }
            try body(index, value)
        }
    }

    @inline(__always)
    static func keyIndex(_ key: UnsafeBufferPointer<UInt8>, _ keys: [StaticString]) -> Int? {
        for index in keys.indices where keys[index].utf8CodeUnitCount == key.count {
            if key.isEmpty || memcmp(key.baseAddress!, keys[index].utf8Start, key.count) == 0 { return index }
        }
        return nil
    }

    // MARK: The document

    func document(_ root: Node) throws(TopologyFileError) -> Topology {
        guard root.kind == .object else {
            throw TopologyFileError(
                file: file, location: .file,
                message: "the top level must be an object (a topology file), found \(kindName(root))")
        }
        var values = [Node?](repeating: nil, count: Self.topKeys.count)
        var unknownKey: TopologyFileError?
        do {
            try members(root, Self.topKeys, path: "") { index, value in values[index] = value }
        } catch {
            unknownKey = error
        }
        // Say "not a topology file" before complaining about its keys.
        guard let format = values[0] else {
            throw fail("format", "missing; a topology file starts with \"format\": \"\(TopologyFile.formatName)\"")
        }
        guard format.kind == .string, stringEquals(format, TopologyFile.formatName) else {
            throw fail("format", "expected \"\(TopologyFile.formatName)\", found \(describe(format))")
        }
        guard let version = values[1] else {
            throw fail("version", "missing; this cssd reads version \(TopologyFile.version)")
        }
        guard version.intValue == TopologyFile.version else {
            throw fail(
                "version", "expected \(TopologyFile.version) (the version this cssd reads), found \(describe(version))")
        }
        if let unknownKey { throw unknownKey }

        var multipleCSS: Bool?
        if let value = values[2] { multipleCSS = try bool(value, path: "multiple-css") }

        let paths =
            try values[4].map { (list) throws(TopologyFileError) in try elements(list, "chpids", channelPath) } ?? []
        let subchannels =
            try values[5].map { (list) throws(TopologyFileError) in try elements(list, "subchannels", subchannel) }
            ?? []
        let subsystems =
            try values[3].map { (list) throws(TopologyFileError) in
                try elements(list, "channel-subsystems", channelSubsystem)
            } ?? Self.usedChannelSubsystems(paths, subchannels)
        let guests = try values[6].map { (list) throws(TopologyFileError) in try elements(list, "guests", guest) } ?? []
        let measurement = try values[7].map { (node) throws(TopologyFileError) in try self.measurement(node) }

        return Topology(
            channelSubsystems: subsystems, channelPaths: paths, subchannels: subchannels,
            multipleCSSEnabled: multipleCSS, guests: guests, measurement: measurement)
    }

    /// `channel-measurement`: `{"authorized": bool, "chpids": [{"chpid", "cmg", "load"}]}`.
    func measurement(_ node: Node) throws(TopologyFileError) -> Topology.Measurement {
        let path = "channel-measurement"
        try object(node, path: path)
        var result = Topology.Measurement()
        var list: Node?
        try members(node, Self.measurementKeys, path: path) { (key, value) throws(TopologyFileError) in
            if key == 0 {
                result.authorized = try bool(value, path: "\(path).authorized")
            } else {
                list = value
            }
        }
        if let list {
            result.chpids = try elements(list, "\(path).chpids", measuredPath)
        }
        return result
    }

    func measuredPath(_ node: Node, index: Int) throws(TopologyFileError) -> Topology.MeasuredPath {
        let path = "channel-measurement.chpids[\(index)]"
        try object(node, path: path)
        var values: (id: Node?, cmg: Node?, load: Node?)
        try members(node, Self.measuredPathKeys, path: path) { (key, value) throws(TopologyFileError) in
            switch key {
            case 0: values.id = value
            case 1: values.cmg = value
            default: values.load = value
            }
        }
        guard let idNode = values.id else { throw missing(path, "chpid") }
        var result = Topology.MeasuredPath(id: try chpid(idNode, path: "\(path).chpid"))
        if let node = values.cmg {
            if node.kind == .string, stringEquals(node, "none") {
                result.cmg = .none
            } else if let value = node.intValue {
                result.cmg = .group(value)
            } else {
                throw fail("\(path).cmg", "expected a group 1-5 or \"none\", found \(describe(node))")
            }
        }
        if let node = values.load {
            try object(node, path: "\(path).load")
            var load: [String: Double] = [:]
            try node.forEachMember { (key, value) throws(TopologyFileError) in
                let name = String(decoding: key, as: UTF8.self)
                guard value.kind == .integer || value.kind == .real,
                    let number = value.realValue ?? value.intValue.map(Double.init)
                else { throw fail("\(path).load.\(name)", "expected a number, found \(describe(value))") }
                load[name] = number
            }
            result.load = load
        }
        return result
    }

    /// Decodes every element of the array at `path` with `element(node, index)`.
    func elements<T>(
        _ list: Node, _ path: String, _ element: (Node, Int) throws(TopologyFileError) -> T
    ) throws(TopologyFileError) -> [T] {
        try array(list, path: path)
        let count = list.count
        var result: [T] = []
        result.reserveCapacity(count)
        for index in 0..<count { result.append(try element(list[index]!, index)) }
        return result
    }

    /// The default channel subsystems: every css that a chpid or subchannel is in, ascending.
    static func usedChannelSubsystems(
        _ paths: [Topology.ChannelPath], _ subchannels: [Topology.Subchannel]
    ) -> [Topology.ChannelSubsystem] {
        var used = [Bool](repeating: false, count: 256)
        for path in paths { used[Int(path.id.cssid)] = true }
        for sch in subchannels { used[Int(sch.id.cssid)] = true }
        return used.indices.filter { used[$0] }.map { Topology.ChannelSubsystem(cssid: $0) }
    }

    func channelSubsystem(_ node: Node, index: Int) throws(TopologyFileError) -> Topology.ChannelSubsystem {
        try object(node, path: "channel-subsystems[\(index)]")
        var cssid: Node?
        try members(node, Self.cssKeys, path: "channel-subsystems[\(index)]") { _, value in cssid = value }
        guard let cssid else { throw missing("channel-subsystems[\(index)]", "cssid") }
        return Topology.ChannelSubsystem(
            cssid: try hexNumber(cssid, path: "channel-subsystems[\(index)].cssid", example: "fe"))
    }

    func channelPath(_ node: Node, index: Int) throws(TopologyFileError) -> Topology.ChannelPath {
        try object(node, path: "chpids[\(index)]")
        var values: (id: Node?, type: Node?, shared: Node?, pchid: Node?, vary: Node?, configure: Node?)
        try members(node, Self.chpidKeys, path: "chpids[\(index)]") { key, value in
            switch key {
            case 0: values.id = value
            case 1: values.type = value
            case 2: values.shared = value
            case 3: values.pchid = value
            case 4: values.vary = value
            default: values.configure = value
            }
        }
        guard let idNode = values.id else { throw missing("chpids[\(index)]", "chpid") }
        let id = try chpid(idNode, path: "chpids[\(index)].chpid")
        guard let typeNode = values.type else { throw missing("chpids[\(index)]", "type") }
        let type = try hexNumber(typeNode, path: "chpids[\(index)].type", example: "0x1a")
        var path = Topology.ChannelPath(id: id, type: type)
        if let node = values.shared { path.shared = try bool(node, path: "chpids[\(index)].shared") }
        if let node = values.pchid, node.kind != .null {
            path.pchid = try hexNumber(node, path: "chpids[\(index)].pchid", example: "0x01c0")
        }
        if let node = values.vary {
            let names = VaryState.allCases.map(\.rawValue)
            path.vary = VaryState.allCases[try choice(node, names, path: "chpids[\(index)].vary")]
        }
        if let node = values.configure {
            let names = ConfigureState.allCases.map(\.description)
            path.configure = ConfigureState.allCases[try choice(node, names, path: "chpids[\(index)].configure")]
        }
        return path
    }

    func subchannel(_ node: Node, index: Int) throws(TopologyFileError) -> Topology.Subchannel {
        try object(node, path: "subchannels[\(index)]")
        var values:
            (
                id: Node?, devno: Node?, devType: Node?, cuType: Node?, enabled: Node?, isc: Node?, chpids: Node?,
                type: Node?, qdio: Node?, online: Node?
            )
        try members(node, Self.subchannelKeys, path: "subchannels[\(index)]") { key, value in
            switch key {
            case 0: values.id = value
            case 1: values.devno = value
            case 2: values.devType = value
            case 3: values.cuType = value
            case 4: values.enabled = value
            case 5: values.isc = value
            case 6: values.chpids = value
            case 7: values.type = value
            case 8: values.qdio = value
            default: values.online = value
            }
        }
        var qdio: Bool?
        if let node = values.qdio { qdio = try bool(node, path: "subchannels[\(index)].qdio") }
        guard let idNode = values.id else { throw missing("subchannels[\(index)]", "subchannel") }
        let id = try subchannelID(idNode, path: "subchannels[\(index)].subchannel")
        var type = SubchannelType.io
        if let node = values.type {
            let names = SubchannelType.allCases.map(\.description)
            type = SubchannelType.allCases[try choice(node, names, path: "subchannels[\(index)].type")]
        }
        if type != .io {
            // No device, no paths: only the id (and isc) mean something.
            var isc = 0
            if let node = values.isc { isc = try integer(node, path: "subchannels[\(index)].isc") }
            var sch = Topology.Subchannel(
                id: id, devno: nil, devType: 0, devModel: 0, cuType: 0, cuModel: 0, chpids: [], isc: isc, type: type,
                qdio: qdio)
            if let node = values.devno { sch.devno = try self.devno(node, of: id, path: "subchannels[\(index)].devno") }
            if let list = values.chpids {
                try array(list, path: "subchannels[\(index)].chpids")
                for slot in 0..<list.count {
                    sch.chpids.append(try chpid(list[slot]!, path: "subchannels[\(index)].chpids[\(slot)]"))
                }
            }
            return sch  // validate() refuses a devno, chpids or QDIO on it
        }
        guard let devnoNode = values.devno else { throw missing("subchannels[\(index)]", "devno") }
        let devno = try self.devno(devnoNode, of: id, path: "subchannels[\(index)].devno")
        var device = (type: 0, model: 0)
        if let node = values.devType {
            device = try typeModel(node, path: "subchannels[\(index)].dev-type", example: "3390/0c")
        }
        guard let cuNode = values.cuType else { throw missing("subchannels[\(index)]", "cu-type") }
        let cu = try typeModel(cuNode, path: "subchannels[\(index)].cu-type", example: "3990/e9")
        var enabled = false
        if let node = values.enabled { enabled = try bool(node, path: "subchannels[\(index)].enabled") }
        var isc = 0
        if let node = values.isc { isc = try integer(node, path: "subchannels[\(index)].isc") }
        var online = true
        if let node = values.online { online = try bool(node, path: "subchannels[\(index)].online") }
        guard let list = values.chpids else { throw missing("subchannels[\(index)]", "chpids") }
        try array(list, path: "subchannels[\(index)].chpids")
        let count = list.count
        var chpids: [ChannelPathID] = []
        chpids.reserveCapacity(count)
        for slot in 0..<count {
            chpids.append(try chpid(list[slot]!, path: "subchannels[\(index)].chpids[\(slot)]"))
        }
        return Topology.Subchannel(
            id: id, devno: devno, devType: device.type, devModel: device.model, cuType: cu.type,
            cuModel: cu.model, chpids: chpids, enabled: enabled, isc: isc, qdio: qdio, online: online)
    }

    // MARK: Guests

    func guest(_ node: Node, index: Int) throws(TopologyFileError) -> Topology.Guest {
        let path = "guests[\(index)]"
        try object(node, path: path)
        var values: (name: Node?, strategy: Node?, crwCapacity: Node?, devices: Node?)
        try members(node, Self.guestKeys, path: path) { key, value in
            switch key {
            case 0: values.name = value
            case 1: values.strategy = value
            case 2: values.crwCapacity = value
            default: values.devices = value
            }
        }
        guard let nameNode = values.name else { throw missing(path, "name") }
        var guest = Topology.Guest(
            name: try string(nameNode, path: "\(path).name") { String(decoding: $0, as: UTF8.self) })
        if let node = values.strategy {
            guest.strategy = try string(
                node, path: "\(path).strategy", expected: "a string (\"per-device\", \"crw\" or \"lazy\")"
            ) { String(decoding: $0, as: UTF8.self) }
        }
        if let node = values.crwCapacity { guest.crwCapacity = try integer(node, path: "\(path).crw-capacity") }
        if let list = values.devices {
            guest.devices = try elements(list, "\(path).devices") { (device, slot) throws(TopologyFileError) in
                try guestDevice(device, path: "\(path).devices[\(slot)]")
            }
        }
        return guest
    }

    /// `{"virtio": {...}}` or `{"passthrough": {...}}`: an object with exactly one of the two.
    func guestDevice(_ node: Node, path: String) throws(TopologyFileError) -> Topology.GuestDevice {
        try object(node, path: path)
        var found: (kind: Int, value: Node)?
        var count = 0
        try members(node, Self.guestDeviceKeys, path: path) { key, value in
            found = (key, value)
            count += 1
        }
        guard let found, count == 1 else {
            throw fail(
                path, "expected exactly one key, \"virtio\" or \"passthrough\", found \(count == 0 ? "none" : "both")")
        }
        return found.kind == 0
            ? try virtio(found.value, path: "\(path).virtio")
            : try passthrough(found.value, path: "\(path).passthrough")
    }

    func virtio(_ node: Node, path: String) throws(TopologyFileError) -> Topology.GuestDevice {
        try object(node, path: path)
        var values: (subchannel: Node?, devno: Node?, cuModel: Node?)
        try members(node, Self.virtioKeys, path: path) { key, value in
            switch key {
            case 0: values.subchannel = value
            case 1: values.devno = value
            default: values.cuModel = value
            }
        }
        let id = try values.subchannel.map { (node) throws(TopologyFileError) in
            try subchannelID(node, path: "\(path).subchannel")
        }
        var devno: Int?
        if let node = values.devno {
            devno = try self.devno(
                node, of: id ?? Self.defaultVirtioSubchannel, defaultSet: id == nil, allowNull: false,
                path: "\(path).devno")
        }
        guard let cuNode = values.cuModel else { throw missing(path, "cu-model") }
        let cuModel = try hexNumber(cuNode, path: "\(path).cu-model", example: "0x01")
        return .virtio(subchannel: id, devno: devno, cuModel: cuModel)
    }

    func passthrough(_ node: Node, path: String) throws(TopologyFileError) -> Topology.GuestDevice {
        try object(node, path: path)
        var values: (host: Node?, guestSubchannel: Node?, guestChpids: Node?)
        try members(node, Self.passthroughKeys, path: path) { key, value in
            switch key {
            case 0: values.host = value
            case 1: values.guestSubchannel = value
            default: values.guestChpids = value
            }
        }
        guard let hostNode = values.host else { throw missing(path, "host-subchannel") }
        let host = try subchannelID(hostNode, path: "\(path).host-subchannel")
        let guestSubchannel = try values.guestSubchannel.map { (node) throws(TopologyFileError) in
            try subchannelID(node, path: "\(path).guest-subchannel")
        }
        let guestChpids = try values.guestChpids.map { (list) throws(TopologyFileError) in
            try elements(list, "\(path).guest-chpids") { (node, slot) throws(TopologyFileError) in
                try chpid(node, path: "\(path).guest-chpids[\(slot)]")
            }
        }
        return .passthrough(host: host, guestSubchannel: guestSubchannel, guestChpids: guestChpids)
    }
}
