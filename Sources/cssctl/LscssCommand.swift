// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import ArgumentParser
import CSSModel
import JSONValues

/// `lscss` over QMP: the server's I/O subchannels in s390-tools' lscss layout, byte for byte.
struct LscssCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lscss",
        abstract: "List subchannels as s390-tools' lscss does (query-subchannels).",
        discussion: """
            RANGE selects subchannels as lscss does: an ID (0.0.004f, or 4f for
            0.0.004f), FROM-TO, or a comma-separated list of those; with -d they
            are device bus IDs instead.
            Use is 'yes' when the device is online (in use; query-subchannels
            leaves "online" out then), blank otherwise. VPM is the server's
            verified path mask (Linux's vpm file with the linux-sysfs backend);
            without one, the logical path mask less the paths that are not
            available or not operational. A subchannel without a valid device
            number shows Device 'none' and no device columns; one whose device
            is not there (query-subchannels "device": false) shows its number
            and no device columns, as lscss shows a subchannel without a ccw
            device. -t, and -d with a range, leave both out.
            Exit status: 0 success, 1 error reply, 2 connection or protocol
            failure, 64 usage error.
            """)

    @OptionGroup var server: ConnectionOptions

    @Flag(name: [.short, .long], help: "Show only subchannel set 0 of css 0, without the '0.0.' prefix.")
    var short = false

    @Flag(name: [.short, .long], help: "Print hex digits and 'yes' in uppercase.")
    var uppercase = false

    @Flag(help: "Add the VPM column (verified path mask).")
    var vpm = false

    @Flag(help: "Add the Avail. column: each device's availability (good, boxed, no path, no device).")
    var avail = false

    @Flag(name: [.short, .long], help: "RANGE selects device bus IDs instead of subchannel IDs.")
    var devrange = false

    @Option(
        name: [.customShort("t"), .long],
        help: "Only these device types: TYPE or TYPE/MODEL, comma-separated (3390,1732/01).")
    var devtype: String?

    @Flag(help: "Print the listed query-subchannels entries as JSON ({\"subchannels\": [...]}) instead.")
    var json = false

    @Argument(help: "Subchannels (or with -d devices) to list: ID, FROM-TO, comma-separated.")
    var range: [String] = []

    func validate() throws {
        _ = try ranges()
        _ = try deviceTypes()
    }

    @Flag(name: [.short, .long], help: "All subchannel types, each in its own section: I/O, CHSC, EADM (lscss -a).")
    var all = false

    @Flag(help: "I/O subchannels (the default; with --chsc or --eadm: in their own section too).")
    var io = false

    @Flag(help: "CHSC subchannels.")
    var chsc = false

    @Flag(help: "EADM subchannels.")
    var eadm = false

    @Flag(
        help: """
            I/O subchannels bound to vfio_ccw, with their mediated device's UUID ('none' without one) \
            (lscss --vfio; query-host-passthrough, linux-sysfs only).
            """)
    var vfio = false

    func run() throws {
        // lscss.c main: "--vfio can not be used with --io, -d, -t or --avail" (-a sets --io).
        if vfio && (io || all || devrange || devtype != nil || avail) {
            throw ValidationError("Invalid option combination: --vfio can not be used with --io, -d, -t or --avail")
        }
        let selection = Selection(
            ranges: try ranges(), byDevice: devrange, deviceTypes: try deviceTypes(), short: short)
        // lscss.c main: -a is --io --chsc --eadm; I/O alone when no type is asked for.
        let showCHSC = all || chsc
        let showEADM = all || eadm
        let showIO = all || io || (!showCHSC && !showEADM && !vfio)
        let sections = showCHSC || showEADM || vfio
        let table = Self.table(vpm: vpm, avail: avail)
        let otherTable = ListingTable(columns: [("Device", 8), ("Subchan.", 9)], separator: "-")
        try runningListing {
            var session = try ListingSession(socket: server.socket, timeoutSeconds: server.timeout)
            let listed = JSON.array()
            var started = false
            var others: [SubchannelType: [JSON]] = [:]
            // --vfio: the server's vfio_ccw-bound subchannels, by id, and their rows.
            let passthrough = vfio ? try Self.hostPassthrough(session: &session) : [:]
            var vfioRows = ""
            let vfioTable = Self.vfioTable(vpm: vpm)
            // The header goes out only once the first page came back, so that a failure prints
            // nothing on standard output.
            // Asked for only with --avail: a server older than the argument lists without it.
            let queries = Self.queries(ranges: selection.ranges, byDevice: devrange).map { query in
                avail ? query + [("availability", JSON.bool(true))] : query
            }
            try Self.forEachPage(session: &session, short: short, queries: queries) { page in
                var text = ""
                if !json && !started && showIO {
                    text = (sections ? "IO Subchannels and Devices:\n" : "") + table.header
                }
                started = true
                for subchannel in page {
                    let type = subchannel["type"]?.stringValue ?? "io"
                    if type == "io", vfio {
                        let id = subchannel["subchannel"]?.stringValue ?? ""
                        guard let bound = passthrough[id], selection.admitsOther(subchannel) else { continue }
                        if json {
                            listed.append(subchannel)
                        } else {
                            vfioRows += vfioTable.row(vfioColumns(subchannel, bound))
                        }
                    } else if type == "io" {
                        guard showIO, selection.admits(subchannel) else { continue }
                        if json { listed.append(subchannel) } else { text += table.row(columns(of: subchannel)) }
                    } else if let kind = SubchannelType.allCases.first(where: { $0.description == type }),
                        (kind == .chsc && showCHSC) || (kind == .eadm && showEADM), selection.admitsOther(subchannel)
                    {
                        if json { listed.append(subchannel) } else { others[kind, default: []].append(subchannel) }
                    }
                }
                writeOutput(text)
            }
            // After each section's subchannels, the devices without a subchannel, unless
            // subchannel ids were asked for (lscss.c print_subchannels_of_type,
            // print_defunct_devices).
            var orphans: [JSON] = []
            if selection.ranges.isEmpty || devrange {
                orphans = try Self.orphanedDevices(session: &session)
            }
            if json {
                var members: [(String, JSON)] = [("subchannels", listed)]
                let chosen = orphans.filter { selection.admitsOrphan($0) }
                if !chosen.isEmpty { members.append(("orphaned-devices", .array(chosen))) }
                writeOutput(JSON.object(members).serialized(pretty: true) + "\n")
                return
            }
            func orphanRows(_ columns: (JSON) -> [String], _ table: ListingTable) -> String {
                var text = ""
                for device in orphans {
                    // -s: lscss stops at the first device that is not 0.0.xxxx.
                    if short && !(device["devno"]?.stringValue ?? "").hasPrefix("0.0.") { break }
                    if selection.admitsOrphan(device) { text += table.row(columns(device)) }
                }
                return text
            }
            var text = showIO ? orphanRows(orphanColumns, table) : ""
            for (kind, title, shown) in [(SubchannelType.chsc, "CHSC", showCHSC), (.eadm, "EADM", showEADM)] where shown
            {
                // A header line before a section only when another type is listed too.
                let another = showIO || vfio || (kind == .chsc ? showEADM : showCHSC)
                text += (another ? "\n\(title) Subchannels:\n" : "") + otherTable.header
                for subchannel in others[kind] ?? [] {
                    let id = shortened(subchannel["subchannel"]?.stringValue ?? "")
                    text += otherTable.row([uppercase ? "N/A" : "n/a", uppercase ? id.uppercased() : id])
                }
                text += orphanRows(
                    { device in
                        let id = shortened(device["devno"]?.stringValue ?? "")
                        return [uppercase ? id.uppercased() : id, uppercase ? "N/A" : "n/a"]
                    }, otherTable)
            }
            if vfio {
                // lscss.c cmd_lscss: the title only when another type is listed too; no
                // defunct devices in this section (they have no driver link).
                text += (showCHSC || showEADM ? "\nI/O Subchannels used for VFIO:\n" : "") + vfioTable.header + vfioRows
            }
            writeOutput(text)
        }
    }

    /// query-host-passthrough, by subchannel id: each one's `mdev` (nil: none).
    static func hostPassthrough(session: inout ListingSession) throws -> [String: String?] {
        var bound: [String: String?] = [:]
        for entry in try session.execute("query-host-passthrough").elements {
            guard let id = entry["subchannel"]?.stringValue else { continue }
            // updateValue: assigning a nil mdev through the subscript would drop the entry.
            bound.updateValue(entry["mdev"]?.stringValue, forKey: id)
        }
        return bound
    }

    /// lscss.c cmd_lscss, the --vfio table: MDEV (37), Subchan., PIM, PAM, POM, [VPM], CHPIDs.
    static func vfioTable(vpm: Bool) -> ListingTable {
        var columns: [(String, Int)] = [("MDEV", 37), ("Subchan.", 9), ("PIM", 3), ("PAM", 3)]
        columns += vpm ? [("POM", 3), ("VPM", 3)] : [("POM", 4)]
        columns.append(("CHPIDs", 17))
        return ListingTable(columns: columns, separator: "-")
    }

    /// A vfio row (lscss.c print_sch_io with fill_vfio_devid): the mdev's UUID or `none`; VPM
    /// empty, as a subchannel bound to vfio_ccw has no `vpm` file.
    func vfioColumns(_ subchannel: JSON, _ mdev: String?) -> [String] {
        var values = [
            mdev ?? "none", shortened(subchannel["subchannel"]?.stringValue ?? ""),
            hexDigits(subchannel["pim"]?.intValue ?? 0, width: 2),
            hexDigits(subchannel["pam"]?.intValue ?? 0, width: 2),
            hexDigits(subchannel["pom"]?.intValue ?? 0, width: 2),
        ]
        if vpm { values.append("") }
        values.append(Self.chpidColumn(subchannel["chpids"]?.elements ?? []))
        return uppercase ? values.map { $0.uppercased() } : values
    }

    /// query-orphaned-devices; a server without it (older cssd) has none.
    static func orphanedDevices(session: inout ListingSession) throws -> [JSON] {
        do {
            return try session.execute("query-orphaned-devices").elements
        } catch let reply as ListingSession.ErrorReply where reply.text.hasPrefix("CommandNotFound:") {
            return []
        }
    }

    /// A defunct device's row: its bus id, subchannel `n/a`, its types and Use, nothing else.
    func orphanColumns(of device: JSON) -> [String] {
        var values = [
            shortened(device["devno"]?.stringValue ?? ""), "n/a",
            device["dev-type"]?.stringValue ?? "", device["cu-type"]?.stringValue ?? "",
            device["online"]?.boolValue == true ? "yes" : "", "", "", "",
        ]
        if vpm { values.append("") }
        values.append("")
        // Linux's available_show says so for a device in the orphanage.
        if avail { values.append("no device") }
        return uppercase ? values.map { $0.uppercased() } : values
    }

    // MARK: Querying

    /// Pages through query-subchannels (16384 a page, `next` back as `start`), once per query
    /// of `queries` (the arguments that select, `queries(ranges:byDevice:)`), in order.
    static func forEachPage(
        session: inout ListingSession, short: Bool, queries: [[(String, JSON)]] = [[]],
        _ body: ([JSON]) throws -> Void
    ) throws {
        for query in queries {
            var start = query.first { $0.0 == "start" }?.1.stringValue
            let selecting = query.filter { $0.0 != "start" }
            repeat {
                var arguments: [(String, JSON)] = [("limit", .integer(16384))]
                // -s shows only 0.0.xxxx: let the server leave the rest out.
                if short { arguments += [("cssid", .integer(0)), ("ssid", .integer(0))] }
                arguments += selecting
                if let start { arguments.append(("start", .string(start))) }
                let page = try session.execute("query-subchannels", arguments)
                try body(page["subchannels"]?.elements ?? [])
                start = page["next"]?.stringValue
            } while start != nil
        }
    }

    /// What the server is asked for, so that a range costs what it lists, not the machine's
    /// size: one walk per subchannel range, merged and in id order (the rows come in id order,
    /// as lscss prints them), each with `start` and `end`; for device ranges (-d) one walk
    /// with `devno-ranges` (device numbers do not follow subchannel ids, so one walk keeps the
    /// rows in order); without a range, everything. A range FROM > TO matches nothing, as in
    /// lscss. The listing's own selection still applies to every row.
    static func queries(ranges: [IDRange], byDevice: Bool) -> [[(String, JSON)]] {
        guard !ranges.isEmpty else { return [[]] }
        // lscss takes subchannel sets 0..f; QMP ids have 0..3: the range is cut to those.
        let nonEmpty = ranges.compactMap { range -> IDRange? in
            var lower = range.lower
            if lower.ssid > 3 { lower = BusID(cssid: lower.cssid + 1, ssid: 0, number: 0) }
            let upper = range.upper.ssid > 3 ? BusID(cssid: range.upper.cssid, ssid: 3, number: 0xffff) : range.upper
            guard lower.cssid <= 0xff, lower <= upper else { return nil }
            return IDRange(lower: lower, upper: upper)
        }
        if byDevice {
            // (None left: an empty list, which matches nothing, as lscss prints only the header.)
            // More than the server takes in one request: filtered here alone.
            guard nonEmpty.count <= 256 else { return [[]] }
            let list = nonEmpty.map { range in
                JSON.object([("first", .string(range.lower.text)), ("last", .string(range.upper.text))])
            }
            return [[("devno-ranges", .array(list))]]
        }
        var merged: [IDRange] = []
        for range in nonEmpty.sorted(by: { $0.lower < $1.lower }) {
            if let last = merged.last, range.lower <= last.upper {
                merged[merged.count - 1] = IDRange(lower: last.lower, upper: max(last.upper, range.upper))
            } else {
                merged.append(range)
            }
        }
        // None left: one walk that matches nothing ('end' before 'start'), so the header is printed.
        guard !merged.isEmpty else { return [[("start", .string("ff.3.ffff")), ("end", .string("0.0.0000"))]] }
        return merged.map { [("start", .string($0.lower.text)), ("end", .string($0.upper.text))] }
    }

    // MARK: Layout (lscss.c cmd_lscss and print_sch_io)

    static func table(vpm: Bool, avail: Bool = false) -> ListingTable {
        var columns: [(String, Int)] = [
            ("Device", 8), ("Subchan.", 9), ("DevType", 7), ("CU Type", 7), ("Use", 4), ("PIM", 3), ("PAM", 3),
        ]
        columns += vpm ? [("POM", 3), ("VPM", 3)] : [("POM", 4)]
        columns.append(("CHPIDs", 17))
        if avail { columns.append(("Avail.", 6)) }
        return ListingTable(columns: columns, separator: "-")
    }

    func columns(of subchannel: JSON) -> [String] {
        let devno = subchannel["devno"]?.stringValue ?? ""
        let hasDevice = Self.hasDevice(subchannel)
        let pim = subchannel["pim"]?.intValue ?? 0
        let pam = subchannel["pam"]?.intValue ?? 0
        let pom = subchannel["pom"]?.intValue ?? 0
        var values = [
            // Without a ccw device lscss shows dev_busid: the number, or "none" without one.
            devno.isEmpty ? "none" : shortened(devno),
            shortened(subchannel["subchannel"]?.stringValue ?? ""),
            hasDevice ? subchannel["dev-type"]?.stringValue ?? "" : "",
            hasDevice ? subchannel["cu-type"]?.stringValue ?? "" : "",
            // lscss.c fill_device_info: "yes" when the device's online file reads 1, else blank.
            hasDevice && subchannel["online"]?.boolValue != false ? "yes" : "",
            hexDigits(pim, width: 2), hexDigits(pam, width: 2), hexDigits(pom, width: 2),
        ]
        if vpm {
            // Linux's vpm as the server read it; a server without path verification (the
            // model) gives none, and then the paths that could be verified: logically
            // online, available and operational.
            let vpm = subchannel["vpm"]?.intValue ?? (subchannel["lpm"]?.intValue ?? 0) & pam & pom
            values.append(hexDigits(vpm, width: 2))
        }
        values.append(Self.chpidColumn(subchannel["chpids"]?.elements ?? []))
        // lscss.c fill_device_info: the device's availability file; blank without a device.
        if avail { values.append(hasDevice ? subchannel["availability"]?.stringValue ?? "" : "") }
        return uppercase ? values.map { $0.uppercased() } : values
    }

    /// Whether a ccw device is behind the subchannel: a device number, and no `"device":
    /// false` (lscss.c fill_io_devid: no device directory, no DevType, CU Type or Use).
    static func hasDevice(_ subchannel: JSON) -> Bool {
        !(subchannel["devno"]?.stringValue ?? "").isEmpty && subchannel["device"]?.boolValue != false
    }

    /// With -s the last four digits (lscss keeps only 0.0.xxxx ids then).
    private func shortened(_ id: String) -> String {
        short ? String(id.suffix(4)) : id
    }

    /// The sysfs chpids line without blanks, as "%.8s %.8s": `40414243 00000000`.
    static func chpidColumn(_ slots: [JSON]) -> String {
        var digits = ""
        for index in 0..<8 {
            // "0.4a" -> 4a; an empty slot (null) reads 00 in sysfs.
            let chpid = index < slots.count ? slots[index].stringValue.flatMap(LschpCommand.chpid) : nil
            digits += hexDigits(chpid?[1] ?? 0, width: 2)
        }
        return String(digits.prefix(8)) + " " + String(digits.dropFirst(8).prefix(8))
    }

    // MARK: Selection (lscss.c main, id_in_range, parse_devtype_str)

    /// A bus id as lscss compares them: cssid, ssid, number.
    struct BusID: Comparable {
        let cssid: Int, ssid: Int, number: Int

        /// ccw_parse_str: `0.0.004f`, or 1-4 hex digits for 0.0.xxxx; no 0x prefix.
        init?(_ text: Substring) {
            if let devno = Hex.number(text, maxDigits: 4) {
                (cssid, ssid, number) = (0, 0, devno)
            } else if let parts = Hex.parts(text, maxDigits: (2, 1, 4)) {
                (cssid, ssid, number) = parts
            } else {
                return nil
            }
        }

        static func < (a: BusID, b: BusID) -> Bool {
            (a.cssid, a.ssid, a.number) < (b.cssid, b.ssid, b.number)
        }

        init(cssid: Int, ssid: Int, number: Int) {
            (self.cssid, self.ssid, self.number) = (cssid, ssid, number)
        }

        /// `c.s.nnnn`, as QMP takes subchannel and device ids.
        var text: String {
            Hex.string(cssid) + "." + Hex.string(ssid) + "." + Hex.string(number, width: 4)
        }
    }

    /// FROM-TO as lscss's id_in_range compares it: FROM > TO matches nothing.
    struct IDRange {
        let lower: BusID, upper: BusID
        func contains(_ id: BusID) -> Bool { lower <= id && id <= upper }
    }

    /// RANGE arguments, joined with commas as lscss joins them.
    func ranges() throws -> [IDRange] {
        try range.joined(separator: ",").split(separator: ",").map { item in
            let ends = item.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            guard let lower = BusID(ends[0]) else { throw ValidationError("Invalid ID specified: \(ends[0])") }
            guard let upper = ends.count == 2 ? BusID(ends[1]) : lower else {
                throw ValidationError("Invalid ID specified: \(item)")
            }
            return IDRange(lower: lower, upper: upper)
        }
    }

    /// -t list: TYPE or TYPE/MODEL in hex.
    func deviceTypes() throws -> [(type: Int, model: Int?)]? {
        guard let devtype else { return nil }
        return try devtype.split(separator: ",").map { item in
            guard let parsed = Self.deviceType(item) else {
                throw ValidationError("Invalid device type specified: \(item)")
            }
            return parsed
        }
    }

    static func deviceType(_ text: Substring) -> (type: Int, model: Int?)? {
        if let type = Hex.number(text, maxDigits: 4) { return (type, nil) }
        return Hex.parts(text, separator: UInt8(ascii: "/"), maxDigits: (4, 2, 0)).map { ($0.0, $0.1) }
    }

    /// Which subchannels a listing shows.
    struct Selection {
        let ranges: [IDRange]
        let byDevice: Bool
        let deviceTypes: [(type: Int, model: Int?)]?
        let short: Bool

        /// A CHSC or EADM subchannel (lscss.c print_sch_chsc): -d with a range or -t leaves
        /// it out; a range selects by subchannel id.
        func admitsOther(_ subchannel: JSON) -> Bool {
            let id = subchannel["subchannel"]?.stringValue ?? ""
            if (byDevice && !ranges.isEmpty) || deviceTypes != nil { return false }
            if short && !id.hasPrefix("0.0.") { return false }
            if !ranges.isEmpty {
                guard let key = BusID(Substring(id)), ranges.contains(where: { $0.contains(key) }) else { return false }
            }
            return true
        }

        /// A device without a subchannel: -d ranges and -t types apply to it.
        func admitsOrphan(_ device: JSON) -> Bool {
            let devno = device["devno"]?.stringValue ?? ""
            if short && !devno.hasPrefix("0.0.") { return false }
            if byDevice && !ranges.isEmpty {
                guard let key = BusID(Substring(devno)), ranges.contains(where: { $0.contains(key) }) else {
                    return false
                }
            }
            if let deviceTypes {
                guard let type = LscssCommand.deviceType(Substring(device["dev-type"]?.stringValue ?? "")) else {
                    return false
                }
                return deviceTypes.contains { $0.type == type.type && ($0.model == nil || $0.model == type.model) }
            }
            return true
        }

        func admits(_ subchannel: JSON) -> Bool {
            let id = subchannel["subchannel"]?.stringValue ?? ""
            let devno = subchannel["devno"]?.stringValue ?? ""
            // -s: only 0.0.xxxx, for the subchannel and for its device ("none" never passes).
            if short && !(id.hasPrefix("0.0.") && devno.hasPrefix("0.0.")) { return false }
            if !ranges.isEmpty {
                // -d with a range matches device directories: none, no match (fill_io_devid).
                if byDevice && !LscssCommand.hasDevice(subchannel) { return false }
                guard let key = BusID(Substring(byDevice ? devno : id)),
                    ranges.contains(where: { $0.contains(key) })
                else { return false }
            }
            if let deviceTypes {
                // No device, no device type: lscss leaves such subchannels out of a -t listing.
                guard LscssCommand.hasDevice(subchannel),
                    let type = LscssCommand.deviceType(Substring(subchannel["dev-type"]?.stringValue ?? ""))
                else { return false }
                return deviceTypes.contains { $0.type == type.type && ($0.model == nil || $0.model == type.model) }
            }
            return true
        }
    }
}
