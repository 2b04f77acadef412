// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import TestSupport
import Testing

@testable import VFIOCCW

/// Linux vfio-ccw refuses a subchannel whose PMCW has the QDIO facility
/// (`vfio_ccw_sch_probe`: "vfio: ccw: does not support QDIO"); so does `attachPassthrough`.
@Suite struct QDIOPassthroughTests {
    /// The embedded machine: OSA (QDIO) 0.0.0000-0.0.0002, DASDs from 0.0.0003.
    static func setUp() throws -> (Subsystem, Guests) {
        let topology = Topology.embeddedDefault
        let host = try Subsystem(topology: topology)
        return (host, try Guests(topology: topology, host: host))
    }

    @Test(arguments: ["0.0.0000", "0.0.0001", "0.0.0002"])
    func osaSubchannelsAreRefusedAndNothingChanges(_ id: String) throws {
        var (host, guests) = try Self.setUp()
        let before = try guests.guest("guest1")
        #expect(host.subchannel(sch(id))!.schib.pmcw.hasQDIOFacility)
        // Whatever the placement asked for: the facility is checked first.
        for (guestSubchannel, guestChpids) in [(nil, nil), (sch("0.0.0000"), [chp("0.00")])]
            as [(SubchannelID?, [ChannelPathID]?)]
        {
            #expect(throws: VFIOError.qdioSubchannel(sch(id))) {
                try guests.attachPassthrough(
                    to: "guest1", host: sch(id), guestSubchannel: guestSubchannel, guestChpids: guestChpids, in: host)
            }
        }
        #expect(try guests.guest("guest1").devices == before.devices)
        #expect(try guests.guest("guest1").chpidMap == before.chpidMap)
        #expect(guests.binding(of: sch(id)) == nil)
        let error = VFIOError.qdioSubchannel(sch(id))
        #expect(!error.isNotFound)
        #expect(
            error.description
                == "host subchannel \(id) has the QDIO facility (an OSA, HiperSockets or FCP device): vfio-ccw does "
                + "not support QDIO, so it cannot be passed through (Linux: \"vfio: ccw: does not support QDIO: \(id)\")"
        )
        // A host path event on the OSA chpid reaches no guest: nothing of it is passed through.
        let change = try host.configurePath(chp("0.60"), to: .standby)
        #expect(guests.hostPathChanged(change, as: .standby).isEmpty)
    }

    /// A DASD beside it still attaches (the refusal is about the subchannel, not the guest).
    @Test func aDASDStillAttaches() throws {
        let (host, setUpGuests) = try Self.setUp()
        var guests = setUpGuests
        let dasd = try #require(host.subchannels.first { $0.deviceID?.devno == 0x3000 })
        #expect(!dasd.schib.pmcw.hasQDIOFacility)
        let device = try guests.attachPassthrough(to: "guest1", host: dasd.id, in: host)
        #expect(device.host == dasd.id)
    }

    /// A topology whose guest passes a QDIO subchannel through is refused, naming the device.
    @Test func aTopologyPassingQDIOThroughIsRefused() throws {
        var topology = Topology.embeddedDefault
        topology.guests[0].devices.append(.passthrough(host: sch("0.0.0001"), guestSubchannel: nil, guestChpids: nil))
        let host = try Subsystem(topology: topology)
        let index = topology.guests[0].devices.count - 1
        #expect(
            throws: TopologyError(
                field: "guests[0].devices[\(index)]", reason: VFIOError.qdioSubchannel(sch("0.0.0001")).description)
        ) { try Guests(topology: topology, host: host) }
        // Stated otherwise in the description, the same device attaches.
        topology.subchannels[1].qdio = false
        let guests = try Guests(topology: topology, host: try Subsystem(topology: topology))
        #expect(guests.binding(of: sch("0.0.0001")) != nil)
    }
}
