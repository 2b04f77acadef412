// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// The fast path of decoding: reads the common subset of topology files straight from the
/// bytes into a `Topology`, with no JSON tree in between.
///
/// jansson builds a tree of about 4.5 million values for a 262,144-subchannel file, which
/// takes about 1.6 s in release on the development machine (then 0.25-0.8 s more to free it):
/// the whole start-up budget. This reader does the same file in a single pass.
///
/// It is deliberately partial: it accepts only what it is sure of (ASCII strings without
/// escapes, integers without fraction or exponent, known keys each once, the expected type
/// and notation for every value) and returns nil on anything else, whether a valid file in an
/// unusual spelling or a broken one. `TopologyFile.decode` then decodes the file again with
/// jansson and `TopologyDecoder`, which either accepts it or produces the error with its line,
/// column or field path. So every error and every unusual file goes through one decoder, and
/// for the files this reader accepts it gives exactly what `TopologyDecoder` gives (checked
/// by the tests).
struct FastTopologyReader {
    /// The next byte to read; the token readers (FastTopologyReader+Tokens.swift) advance it.
    var position: UnsafePointer<UInt8>
    /// One past the last byte.
    let end: UnsafePointer<UInt8>

    private init(_ bytes: UnsafeRawBufferPointer) {
        let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        position = base
        end = base + bytes.count
    }

    /// The topology, or nil when the file is not in the subset (see the type's comment).
    static func read(_ bytes: UnsafeRawBufferPointer) -> Topology? {
        guard bytes.count > 0 else { return nil }
        var reader = FastTopologyReader(bytes)
        reader.skipSpace()
        guard let topology = reader.document() else { return nil }
        reader.skipSpace()
        return reader.position == reader.end ? topology : nil
    }

    // MARK: The document

    private mutating func document() -> Topology? {
        guard consume(UInt8(ascii: "{")) else { return nil }
        var first = true
        var seen: UInt32 = 0
        var formatOK = false
        var versionOK = false
        var multipleCSS: Bool?
        var subsystems: [Topology.ChannelSubsystem]?
        var paths: [Topology.ChannelPath] = []
        var subchannels: [Topology.Subchannel] = []
        var guests: [Topology.Guest] = []
        while true {
            guard let key = member(&first, TopologyDecoder.topKeys, &seen) else { return nil }
            switch key {
            case Self.endOfObject:
                guard formatOK, versionOK else { return nil }
                return Topology(
                    channelSubsystems: subsystems ?? TopologyDecoder.usedChannelSubsystems(paths, subchannels),
                    channelPaths: paths, subchannels: subchannels, multipleCSSEnabled: multipleCSS, guests: guests)
            case 0:
                guard let text = string(), text.elementsEqual(TopologyFile.formatName.utf8) else { return nil }
                formatOK = true
            case 1:
                guard integer() == TopologyFile.version else { return nil }
                versionOK = true
            case 2:
                guard let value = bool() else { return nil }
                multipleCSS = value
            case 3:
                var list: [Topology.ChannelSubsystem] = []
                guard
                    array({ reader in
                        guard let css = reader.channelSubsystem() else { return false }
                        list.append(css)
                        return true
                    })
                else { return nil }
                subsystems = list
            case 4:
                guard
                    array({ reader in
                        guard let path = reader.channelPath() else { return false }
                        paths.append(path)
                        return true
                    })
                else { return nil }
            case 5:
                // A quarter of a million entries: reserve by a cheap estimate (a line is at
                // least 90 bytes) rather than grow by doubling.
                subchannels.reserveCapacity(min((end - position) / 90 + 16, 1 << 20))
                guard
                    array({ reader in
                        guard let sch = reader.subchannel() else { return false }
                        subchannels.append(sch)
                        return true
                    })
                else { return nil }
            case 6:
                guard
                    array({ reader in
                        guard let guest = reader.guest() else { return false }
                        guests.append(guest)
                        return true
                    })
                else { return nil }
            default:
                // channel-measurement: rare and small, left to the tree decoder.
                return nil
            }
        }
    }

    private mutating func channelSubsystem() -> Topology.ChannelSubsystem? {
        guard consume(UInt8(ascii: "{")) else { return nil }
        var first = true
        var seen: UInt32 = 0
        var cssid: Int?
        while true {
            guard let key = member(&first, TopologyDecoder.cssKeys, &seen) else { return nil }
            if key == Self.endOfObject { break }
            guard let value = hexNumber() else { return nil }
            cssid = value
        }
        return cssid.map { Topology.ChannelSubsystem(cssid: $0) }
    }

    private mutating func channelPath() -> Topology.ChannelPath? {
        guard consume(UInt8(ascii: "{")) else { return nil }
        var first = true
        var seen: UInt32 = 0
        var id: ChannelPathID?
        var type: Int?
        var path = Topology.ChannelPath(id: ChannelPathID(cssid: 0, chpid: 0), type: 0)
        while true {
            guard let key = member(&first, TopologyDecoder.chpidKeys, &seen) else { return nil }
            switch key {
            case Self.endOfObject:
                guard let id, let type else { return nil }
                path.id = id
                path.type = type
                return path
            case 0:
                guard let value = chpid() else { return nil }
                id = value
            case 1:
                guard let value = hexNumber() else { return nil }
                type = value
            case 2:
                guard let value = bool() else { return nil }
                path.shared = value
            case 3:
                if consumeLiteral("null") {
                    path.pchid = nil
                } else {
                    guard let value = hexNumber() else { return nil }
                    path.pchid = value
                }
            case 4:
                guard let text = string() else { return nil }
                guard let state = VaryState.allCases.first(where: { text.elementsEqual($0.rawValue.utf8) }) else {
                    return nil
                }
                path.vary = state
            default:
                guard let text = string() else { return nil }
                guard let state = ConfigureState.allCases.first(where: { text.elementsEqual($0.description.utf8) })
                else { return nil }
                path.configure = state
            }
        }
    }

    private mutating func subchannel() -> Topology.Subchannel? {
        guard consume(UInt8(ascii: "{")) else { return nil }
        var first = true
        var seen: UInt32 = 0
        var id: SubchannelID?
        // The device number as written: nil absent, .some(nil) null, or a number with the
        // css and subchannel set it names (checked against the id at the end).
        var devno: (value: Int, set: Int?)??
        var device = (type: 0, model: 0)
        var cu: (type: Int, model: Int)?
        var enabled = false
        var online = true
        var isc = 0
        var chpids: [ChannelPathID]?
        while true {
            guard let key = member(&first, TopologyDecoder.subchannelKeys, &seen) else { return nil }
            switch key {
            case Self.endOfObject:
                guard let id, let devno, let cu, let chpids else { return nil }
                if let set = devno?.set, set != Int(id.rawValue >> 16) { return nil }
                return Topology.Subchannel(
                    id: id, devno: devno?.value, devType: device.type, devModel: device.model, cuType: cu.type,
                    cuModel: cu.model, chpids: chpids, enabled: enabled, isc: isc, online: online)
            case 0:
                guard let value = subchannelID() else { return nil }
                id = value
            case 1:
                if consumeLiteral("null") {
                    devno = .some(nil)
                } else {
                    guard let value = devnoValue() else { return nil }
                    devno = value
                }
            case 2:
                guard let pair = typeModel() else { return nil }
                device = pair
            case 3:
                guard let pair = typeModel() else { return nil }
                cu = pair
            case 4:
                guard let value = bool() else { return nil }
                enabled = value
            case 5:
                guard let value = integer() else { return nil }
                isc = value
            case 6:
                guard let list = chpidList() else { return nil }
                chpids = list
            case 9:
                guard let value = bool() else { return nil }
                online = value
            default:
                return nil  // "type", "qdio": rare, the full decoder reads them
            }
        }
    }

    // MARK: Guests

    private mutating func guest() -> Topology.Guest? {
        guard consume(UInt8(ascii: "{")) else { return nil }
        var first = true
        var seen: UInt32 = 0
        var name: String?
        var guest = Topology.Guest(name: "")
        while true {
            guard let key = member(&first, TopologyDecoder.guestKeys, &seen) else { return nil }
            switch key {
            case Self.endOfObject:
                guard let name else { return nil }
                guest.name = name
                return guest
            case 0:
                guard let text = string() else { return nil }
                name = String(decoding: text, as: UTF8.self)
            case 1:
                guard let text = string() else { return nil }
                guest.strategy = String(decoding: text, as: UTF8.self)
            case 2:
                guard let value = integer() else { return nil }
                guest.crwCapacity = value
            default:
                var devices: [Topology.GuestDevice] = []
                guard
                    array({ reader in
                        guard let device = reader.guestDevice() else { return false }
                        devices.append(device)
                        return true
                    })
                else { return nil }
                guest.devices = devices
            }
        }
    }

    /// An object with exactly one member, "virtio" or "passthrough".
    private mutating func guestDevice() -> Topology.GuestDevice? {
        guard consume(UInt8(ascii: "{")) else { return nil }
        var first = true
        var seen: UInt32 = 0
        let device: Topology.GuestDevice?
        switch member(&first, TopologyDecoder.guestDeviceKeys, &seen) {
        case 0: device = virtio()
        case 1: device = passthrough()
        default: return nil
        }
        guard let device, member(&first, TopologyDecoder.guestDeviceKeys, &seen) == Self.endOfObject else {
            return nil
        }
        return device
    }

    private mutating func virtio() -> Topology.GuestDevice? {
        guard consume(UInt8(ascii: "{")) else { return nil }
        var first = true
        var seen: UInt32 = 0
        var id: SubchannelID?
        // As for a subchannel: the number, and the css and set a string names.
        var devno: (value: Int, set: Int?)?
        var cuModel: Int?
        while true {
            guard let key = member(&first, TopologyDecoder.virtioKeys, &seen) else { return nil }
            switch key {
            case Self.endOfObject:
                guard let cuModel else { return nil }
                let set = Int((id ?? TopologyDecoder.defaultVirtioSubchannel).rawValue >> 16)
                if let given = devno?.set, given != set { return nil }
                return .virtio(subchannel: id, devno: devno?.value, cuModel: cuModel)
            case 0:
                guard let value = subchannelID() else { return nil }
                id = value
            case 1:
                guard let value = devnoValue() else { return nil }
                devno = value
            default:
                guard let value = hexNumber() else { return nil }
                cuModel = value
            }
        }
    }

    private mutating func passthrough() -> Topology.GuestDevice? {
        guard consume(UInt8(ascii: "{")) else { return nil }
        var first = true
        var seen: UInt32 = 0
        var host: SubchannelID?
        var guestSubchannel: SubchannelID?
        var guestChpids: [ChannelPathID]?
        while true {
            guard let key = member(&first, TopologyDecoder.passthroughKeys, &seen) else { return nil }
            switch key {
            case Self.endOfObject:
                guard let host else { return nil }
                return .passthrough(host: host, guestSubchannel: guestSubchannel, guestChpids: guestChpids)
            case 0:
                guard let value = subchannelID() else { return nil }
                host = value
            case 1:
                guard let value = subchannelID() else { return nil }
                guestSubchannel = value
            default:
                guard let list = chpidList() else { return nil }
                guestChpids = list
            }
        }
    }
}
