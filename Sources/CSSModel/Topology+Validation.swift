// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

extension Topology {
    /// Checks that the model can be built: every id in range and defined once, every
    /// referenced css and chpid defined, one to eight distinct paths per subchannel, device
    /// numbers unique per subchannel set. Stops at the first problem in document order
    /// (channel subsystems, then channel paths, then subchannels), since a server refuses to
    /// start on any of them.
    /// - Throws: `TopologyError` naming the entry and the rule.
    package func validate() throws(TopologyError) {
        var cssDefined = [Bool](repeating: false, count: 256)
        for (index, css) in channelSubsystems.enumerated() {
            let field = { "channelSubsystems[\(index)]" }
            try check(css.cssid, 0xff, "cssid", field)
            guard !cssDefined[css.cssid] else {
                throw TopologyError(field: field(), reason: "duplicate channel subsystem \(Hex.string(css.cssid))")
            }
            cssDefined[css.cssid] = true
        }

        var pathDefined = [Bool](repeating: false, count: 0x10000)
        for (index, path) in channelPaths.enumerated() {
            let field = { "channelPaths[\(index)]" }
            guard cssDefined[Int(path.id.cssid)] else {
                throw TopologyError(
                    field: field(),
                    reason:
                        "chpid \(path.id) is in channel subsystem \(Hex.string(path.id.cssid)), which is not defined")
            }
            guard !pathDefined[Int(path.id.rawValue)] else {
                throw TopologyError(field: field(), reason: "duplicate chpid \(path.id)")
            }
            pathDefined[Int(path.id.rawValue)] = true
            try check(path.type, 0xff, "type", field)
            if let pchid = path.pchid { try check(pchid, 0xffff, "pchid", field) }
        }

        var idSeen = SetBitmaps()
        var devnoSeen = SetBitmaps()
        for index in subchannels.indices {
            let sch = subchannels[index]
            let field = { "subchannels[\(index)]" }
            let id = sch.id
            guard cssDefined[Int(id.cssid)] else {
                throw TopologyError(
                    field: field(),
                    reason: "subchannel \(id) is in channel subsystem \(Hex.string(id.cssid)), which is not defined")
            }
            let set = Int(id.cssid) << 2 | Int(id.ssid)
            guard idSeen.testAndSet(set: set, Int(id.schno)) else {
                throw TopologyError(field: field(), reason: "duplicate subchannel \(id)")
            }
            if let devno = sch.devno {
                try check(devno, 0xffff, "devno", field)
                guard devnoSeen.testAndSet(set: set, devno) else {
                    let device = DeviceID(cssid: id.cssid, ssid: id.ssid, devno: UInt16(devno))
                    throw TopologyError(field: field(), reason: "duplicate device number \(device)")
                }
            }
            try check(sch.devType, 0xffff, "devType", field)
            try check(sch.devModel, 0xff, "devModel", field)
            try check(sch.cuType, 0xffff, "cuType", field)
            try check(sch.cuModel, 0xff, "cuModel", field)
            try check(sch.isc, 7, "isc", field)
            if sch.type != .io {
                // CHSC, message and EADM subchannels have no device and no channel paths.
                guard sch.devno == nil, sch.chpids.isEmpty, sch.qdio != true else {
                    throw TopologyError(
                        field: field(),
                        reason:
                            "subchannel \(id) of type \(sch.type) can have no devno, no chpids and no QDIO facility (only I/O subchannels do)"
                    )
                }
                continue
            }
            guard !sch.chpids.isEmpty else {
                throw TopologyError(
                    field: "\(field()).chpids", reason: "subchannel \(id) needs at least one channel path")
            }
            guard sch.chpids.count <= 8 else {
                throw TopologyError(
                    field: "\(field()).chpids",
                    reason: "subchannel \(id) has \(sch.chpids.count) channel paths; at most 8 are allowed")
            }
            // Chpids already seen for this subchannel: 256 bits, one per chpid of its css.
            var seen: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
            for slot in 0..<sch.chpids.count {
                let chpid = sch.chpids[slot]
                let slotField = { "\(field()).chpids[\(slot)]" }
                guard chpid.cssid == id.cssid else {
                    throw TopologyError(
                        field: slotField(),
                        reason: "chpid \(chpid) is not in channel subsystem \(Hex.string(id.cssid)) of subchannel \(id)"
                    )
                }
                guard pathDefined[Int(chpid.rawValue)] else {
                    throw TopologyError(field: slotField(), reason: "unknown chpid \(chpid): it is not in channelPaths")
                }
                let bit = UInt64(1) << UInt64(chpid.chpid & 63)
                let repeated: Bool
                switch chpid.chpid >> 6 {
                case 0: (repeated, seen.0) = (seen.0 & bit != 0, seen.0 | bit)
                case 1: (repeated, seen.1) = (seen.1 & bit != 0, seen.1 | bit)
                case 2: (repeated, seen.2) = (seen.2 & bit != 0, seen.2 | bit)
                default: (repeated, seen.3) = (seen.3 & bit != 0, seen.3 | bit)
                }
                guard !repeated else {
                    throw TopologyError(
                        field: slotField(), reason: "chpid \(chpid) is listed twice for subchannel \(id)")
                }
            }
        }
    }

    /// `field` is only evaluated for an error: formatting it for every entry would dominate
    /// the validation of a large topology.
    private func check(_ value: Int, _ max: Int, _ name: String, _ field: () -> String) throws(TopologyError) {
        guard (0...max).contains(value) else {
            throw TopologyError(
                field: "\(field()).\(name)", reason: "\(name) \(value) is out of range (0..0x\(Hex.string(max)))")
        }
    }
}

/// One bit per number (0...0xffff) per subchannel set (cssid << 2 | ssid). A bitmap for all
/// 1024 sets would be 8 MiB, so each set's 8 KiB bitmap is made on first use.
private struct SetBitmaps {
    var offsets = [Int](repeating: -1, count: 1024)
    var words: [UInt64] = []

    /// Sets the bit; false if it was already set.
    mutating func testAndSet(set: Int, _ number: Int) -> Bool {
        if offsets[set] < 0 {
            offsets[set] = words.count
            words.append(contentsOf: repeatElement(0, count: 1024))
        }
        let word = offsets[set] + number >> 6
        let bit = UInt64(1) << UInt64(number & 63)
        if words[word] & bit != 0 { return false }
        words[word] |= bit
        return true
    }
}
