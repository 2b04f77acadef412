// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

// The devices added and removed since the model was built (`DeviceDelta`) as bytes, for the
// runtime state (version 3): what makes a state dir's snapshot describe a layout other than the
// topology file's, so that a restart on that file comes back with the devices as they were.

extension DeviceDelta {
    /// The removed subchannel ids, ascending, then the added descriptions in subchannel-id
    /// order: id, devno, device and control-unit type and model, ISC, ENA, online, QDIO
    /// (0 derived, 1 no, 2 yes), the chpids. 4 + 4 bytes per removed device, 20 + 2 per path
    /// per added one.
    func write(to writer: inout StateWriter) {
        writer.put(UInt32(removed.count))
        for id in removed.sorted() { writer.put(id) }
        writer.put(UInt32(added.count))
        for id in added.keys.sorted() {
            let sch = added[id]!
            writer.put(id)
            writer.put(UInt16(sch.devno ?? 0))
            writer.put(UInt16(sch.devType))
            writer.put(UInt8(sch.devModel))
            writer.put(UInt16(sch.cuType))
            writer.put(UInt8(sch.cuModel))
            writer.put(UInt8(sch.isc))
            writer.put(sch.enabled)
            writer.put(sch.online)
            writer.put(UInt8(sch.qdio.map { $0 ? 2 : 1 } ?? 0))
            writer.put(UInt8(sch.chpids.count))
            for chpid in sch.chpids { writer.put(chpid.rawValue) }
        }
    }

    init(from reader: inout StateReader) throws(StateCodingError) {
        self.init()
        for _ in 0..<(try reader.count(each: 4)) { removed.insert(try reader.get()) }
        for _ in 0..<(try reader.count(each: 16)) {
            let id = try reader.subchannelID()
            let devno: UInt16 = try reader.get()
            let devType: UInt16 = try reader.get()
            let devModel: UInt8 = try reader.get()
            let cuType: UInt16 = try reader.get()
            let cuModel: UInt8 = try reader.get()
            let isc: UInt8 = try reader.get()
            let enabled = try reader.flag()
            let online = try reader.flag()
            let qdio: UInt8 = try reader.get()
            guard qdio <= 2 else { throw StateCodingError("added subchannel \(id): QDIO \(qdio)") }
            let count: UInt8 = try reader.get()
            var chpids: [ChannelPathID] = []
            for _ in 0..<count { chpids.append(try reader.channelPathID()) }
            added[id.rawValue] = Topology.Subchannel(
                id: id, devno: Int(devno), devType: Int(devType), devModel: Int(devModel), cuType: Int(cuType),
                cuModel: Int(cuModel), chpids: chpids, enabled: enabled, isc: Int(isc),
                qdio: qdio == 0 ? nil : qdio == 2, online: online)
        }
    }
}

extension Subsystem {
    /// Removes and adds the devices `delta` names (removals first, then additions in id order),
    /// on a model as built from its topology.
    /// - Throws: `StateCodingError` when a removed subchannel is not the topology's or has no
    ///   device, or an addition is refused (`addDevice`'s error text).
    mutating func apply(_ delta: DeviceDelta) throws(StateCodingError) {
        for raw in delta.removed.sorted() {
            let id = SubchannelID(
                cssid: UInt8(raw >> 24), ssid: UInt8(truncatingIfNeeded: raw >> 16),
                schno: UInt16(truncatingIfNeeded: raw))
            guard let device = subchannel(id)?.deviceID else {
                throw StateCodingError("removed subchannel \(id) is not a device of the topology")
            }
            do { try removeDevice(device) } catch { throw StateCodingError(error.description) }
        }
        for raw in delta.added.keys.sorted() {
            do { try addDevice(delta.added[raw]!) } catch { throw StateCodingError(error.description) }
        }
    }
}
