// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import ArgumentParser
import CSSModel
import JSONValues

/// `lschp` over QMP: the server's channel paths in s390-tools' lschp layout, byte for byte.
struct LschpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lschp",
        abstract: "List channel paths as s390-tools' lschp does (query-chpids).",
        discussion: """
            Columns: CHPID, Vary (1 online, 0 offline), Cfg. (0 standby,
            1 configured, 2 reserved, 3 not recognized), Type (hex), Cmg, Shared
            and PCHID; '-' where the server does not say. An internal channel id
            is shown in parentheses. CHPID arguments (0.40, or 40 for css 0)
            limit the listing to those paths.
            Exit status: 0 success, 1 error reply, 2 connection or protocol
            failure, 64 usage error.
            """)

    @OptionGroup var server: ConnectionOptions

    @Flag(help: "Print the query-chpids entries of the listed paths as JSON instead.")
    var json = false

    @Argument(help: "Only these channel paths: cssid.chpid (0.40) or chpid (40, css 0).")
    var chpids: [String] = []

    static let table = ListingTable(
        columns: [("CHPID", 6), ("Vary", 5), ("Cfg.", 5), ("Type", 5), ("Cmg", 4), ("Shared", 6), (" PCHID", 6)],
        separator: "=")

    func validate() throws {
        for text in chpids where Self.chpid(text) == nil {
            throw ValidationError("\(text) is not a valid channel-path ID")
        }
    }

    func run() throws {
        let wanted = Set(chpids.compactMap(Self.chpid))
        try runningListing {
            var session = try ListingSession(socket: server.socket, timeoutSeconds: server.timeout)
            let paths = try session.execute("query-chpids").elements.filter { path in
                wanted.isEmpty || Self.chpid(path["chpid"]?.stringValue ?? "").map(wanted.contains) == true
            }
            if json {
                writeOutput(JSON.array(paths).serialized(pretty: true) + "\n")
                return
            }
            var text = Self.table.header
            for path in paths { text += Self.table.row(Self.columns(of: path)) }
            writeOutput(text)
        }
    }

    /// A chpid argument or reply id as (cssid, chpid): `c.xx`, or `xx` meaning css 0 (as lschp
    /// takes `e0` for `0.e0`). Compared as numbers, so `0.4A` finds `0.4a`.
    static func chpid(_ text: String) -> [Int]? {
        if let chpid = Hex.number(text, maxDigits: 2) { return [0, chpid] }
        return Hex.parts(text, maxDigits: (2, 2, 0)).map { [$0.0, $0.1] }
    }

    /// One row, formatted as lschp.c's print_chpid formats the sysfs attributes.
    static func columns(of path: JSON) -> [String] {
        [
            path["chpid"]?.stringValue ?? "-",
            vary(path["vary"]?.stringValue),
            // lschp prints '-' when reading 'configure' fails (an empty file in a KVM guest).
            path["configure-known"]?.boolValue == false ? "-" : configure(path["configure"]?.stringValue),
            path["type"]?.intValue.map { hexDigits($0, width: 2) } ?? "-",
            // lschp: "%-3lx" and "%-6lx" of the number, '-' for "unknown".
            path["cmg"]?.intValue.map { ListingTable.padded(Hex.string($0), to: 3) } ?? "-",
            path["shared"]?.boolValue.map { ListingTable.padded($0 ? "1" : "0", to: 6) } ?? "-",
            pchid(path),
        ]
    }

    static func vary(_ state: String?) -> String {
        switch state {
        case "online": "1"
        case "offline": "0"
        default: "-"
        }
    }

    /// The number Linux's `configure` attribute shows.
    static func configure(_ state: String?) -> String {
        switch state {
        case "standby": "0"
        case "configured": "1"
        case "reserved": "2"
        case "not-recognized": "3"
        default: "-"
        }
    }

    /// " %4s " for a physical channel id, "(%4s)" for an internal one, '-' for none.
    static func pchid(_ path: JSON) -> String {
        guard let chid = path["pchid"]?.intValue else { return "-" }
        let digits = hexDigits(chid, width: 4)
        return path["chid-external"]?.boolValue == false ? "(\(digits))" : " \(digits) "
    }
}
