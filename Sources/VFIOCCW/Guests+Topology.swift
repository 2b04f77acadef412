// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

extension Guests {
    /// The guests a topology declares, built on `host` (the subsystem built from the same
    /// topology): each guest in order, each of its devices in order, through `addGuest`,
    /// `addVirtio` and `attachPassthrough`, so defaulted ids and the clash rules are exactly
    /// those of the commands. Strategy default "crw", CRW queue capacity default 64.
    /// - Throws: `TopologyError` at the first problem, its `field` naming the entry the way
    ///   `Topology.validate()` does (`guests[1].strategy`, `guests[0].devices[3]`; map it with
    ///   `TopologyFileError(file:validation:)` for a file) and its reason the `VFIOError`'s
    ///   description, e.g. the clash with the virtual chpid and the free chpid and css proposed.
    package init(topology: Topology, host: Subsystem) throws(TopologyError) {
        self.init()
        for (index, guest) in topology.guests.enumerated() {
            try add(guest, field: "guests[\(index)]", host: host)
        }
    }

    private mutating func add(_ guest: Topology.Guest, field: String, host: Subsystem) throws(TopologyError) {
        var strategy = PathEventStrategy.crw
        if let name = guest.strategy {
            guard let value = PathEventStrategy(rawValue: name) else {
                let names = PathEventStrategy.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
                throw TopologyError(field: "\(field).strategy", reason: "'\(name)' is not one of \(names)")
            }
            strategy = value
        }
        let capacity = guest.crwCapacity ?? 64
        guard (2...0x10000).contains(capacity) else {
            throw TopologyError(
                field: "\(field).crwCapacity", reason: "CRW queue capacity \(capacity) is out of range (2..65536)")
        }
        do throws(VFIOError) {
            try addGuest(guest.name, strategy: strategy, crwCapacity: capacity)
        } catch {
            let place = if case .duplicateGuest = error { field } else { "\(field).name" }
            throw TopologyError(field: place, reason: error.description)
        }
        for (index, device) in guest.devices.enumerated() {
            let deviceField = "\(field).devices[\(index)]"
            if case let .virtio(_, devno, cuModel) = device {
                if let devno, !(0...0xffff).contains(devno) {
                    throw TopologyError(
                        field: "\(deviceField).virtio.devno", reason: "devno \(devno) is out of range (0..0xffff)")
                }
                guard (0...0xff).contains(cuModel) else {
                    throw TopologyError(
                        field: "\(deviceField).virtio.cuModel", reason: "cuModel \(cuModel) is out of range (0..0xff)")
                }
            }
            do throws(VFIOError) {
                switch device {
                case let .virtio(subchannel, devno, cuModel):
                    try addVirtio(
                        to: guest.name, id: subchannel, devno: devno.map { UInt16($0) }, cuModel: UInt8(cuModel))
                case let .passthrough(hostID, guestSubchannel, guestChpids):
                    try attachPassthrough(
                        to: guest.name, host: hostID, guestSubchannel: guestSubchannel, guestChpids: guestChpids,
                        in: host)
                }
            } catch {
                throw TopologyError(field: deviceField, reason: error.description)
            }
        }
    }
}
