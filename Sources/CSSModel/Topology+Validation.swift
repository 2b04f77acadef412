// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

extension Topology {
    /// Checks that the model can be built: every id in range and defined once, every
    /// referenced css and chpid defined, one to eight distinct paths per subchannel, device
    /// numbers unique per subchannel set. Stops at the first problem in document order
    /// (channel subsystems, then channel paths, then subchannels), since a server refuses to
    /// start on any of them.
    /// - Throws: `TopologyError` naming the entry and the rule.
    public func validate() throws(TopologyError) {
        var cssDefined = [Bool](repeating: false, count: 256)
        for (index, css) in channelSubsystems.enumerated() {
            let field = "channelSubsystems[\(index)]"
            try check(css.cssid, 0xff, "cssid", field)
            guard !cssDefined[css.cssid] else {
                throw TopologyError(field: field, reason: "duplicate channel subsystem \(hex(css.cssid))")
            }
            cssDefined[css.cssid] = true
        }

        var pathDefined = [Bool](repeating: false, count: 0x10000)
        for (index, path) in channelPaths.enumerated() {
            let field = "channelPaths[\(index)]"
            guard cssDefined[Int(path.id.cssid)] else {
                throw TopologyError(
                    field: field, reason: "chpid \(path.id) is in channel subsystem \(hex(path.id.cssid)), which is not defined")
            }
            guard !pathDefined[Int(path.id.rawValue)] else {
                throw TopologyError(field: field, reason: "duplicate chpid \(path.id)")
            }
            pathDefined[Int(path.id.rawValue)] = true
            try check(path.type, 0xff, "type", field)
            if let pchid = path.pchid { try check(pchid, 0xffff, "pchid", field) }
        }

        // One bit per (cssid, ssid, number): 2^26 bits = 8 MiB would be wasteful for small
        // topologies, so bitmaps are made per subchannel set on first use.
        var idSeen: [UInt16: [UInt64]] = [:]
        var devnoSeen: [UInt16: [UInt64]] = [:]
        for (index, sch) in subchannels.enumerated() {
            let field = "subchannels[\(index)]"
            let id = sch.id
            guard cssDefined[Int(id.cssid)] else {
                throw TopologyError(
                    field: field, reason: "subchannel \(id) is in channel subsystem \(hex(id.cssid)), which is not defined")
            }
            let set = UInt16(id.cssid) << 2 | UInt16(id.ssid)
            guard testAndSet(&idSeen, set, Int(id.schno)) else {
                throw TopologyError(field: field, reason: "duplicate subchannel \(id)")
            }
            if let devno = sch.devno {
                try check(devno, 0xffff, "devno", field)
                guard testAndSet(&devnoSeen, set, devno) else {
                    let device = DeviceID(cssid: id.cssid, ssid: id.ssid, devno: UInt16(devno))
                    throw TopologyError(field: field, reason: "duplicate device number \(device)")
                }
            }
            try check(sch.devType, 0xffff, "devType", field)
            try check(sch.devModel, 0xff, "devModel", field)
            try check(sch.cuType, 0xffff, "cuType", field)
            try check(sch.cuModel, 0xff, "cuModel", field)
            try check(sch.isc, 7, "isc", field)
            guard !sch.chpids.isEmpty else {
                throw TopologyError(field: "\(field).chpids", reason: "subchannel \(id) needs at least one channel path")
            }
            guard sch.chpids.count <= 8 else {
                throw TopologyError(
                    field: "\(field).chpids",
                    reason: "subchannel \(id) has \(sch.chpids.count) channel paths; at most 8 are allowed")
            }
            for (slot, chpid) in sch.chpids.enumerated() {
                let slotField = "\(field).chpids[\(slot)]"
                guard chpid.cssid == id.cssid else {
                    throw TopologyError(
                        field: slotField,
                        reason: "chpid \(chpid) is not in channel subsystem \(hex(id.cssid)) of subchannel \(id)")
                }
                guard pathDefined[Int(chpid.rawValue)] else {
                    throw TopologyError(field: slotField, reason: "unknown chpid \(chpid): it is not in channelPaths")
                }
                guard !sch.chpids[..<slot].contains(chpid) else {
                    throw TopologyError(field: slotField, reason: "chpid \(chpid) is listed twice for subchannel \(id)")
                }
            }
        }
    }

    private func check(_ value: Int, _ max: Int, _ name: String, _ field: String) throws(TopologyError) {
        guard (0...max).contains(value) else {
            throw TopologyError(field: "\(field).\(name)", reason: "\(name) \(value) is out of range (0..0x\(hex(max)))")
        }
    }
}

/// Sets bit `number` of the bitmap for `set`; false if it was already set.
private func testAndSet(_ maps: inout [UInt16: [UInt64]], _ set: UInt16, _ number: Int) -> Bool {
    let word = number >> 6
    let bit = UInt64(1) << UInt64(number & 63)
    return maps[set, default: [UInt64](repeating: 0, count: 1024)].withUnsafeMutableBufferPointer { map in
        if map[word] & bit != 0 { return false }
        map[word] |= bit
        return true
    }
}
