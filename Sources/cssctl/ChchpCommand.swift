// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import ArgumentParser
import CSSModel
import JSONValues

/// `chchp` over QMP: s390-tools' chchp command line (zconf/chp/chchp.c, v2.43.0) and messages,
/// carried out with `vary-path` and `configure-chpid` instead of writes to sysfs.
struct ChchpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chchp",
        abstract: "Modify channel-path state as s390-tools' chchp does (vary-path, configure-chpid).",
        discussion: """
            CHPID is a hexadecimal channel-path id, 0.40 or 40 (css 0); several are
            given as a blank- or comma-separated list, a range (0.40-0.43) or both
            (0.40-0.43,0.4c); an empty list is refused (chchp does
            nothing and exits 0). Each path is reported as chchp does ("Vary offline
            0.40... done."); an id the server does not have is skipped ("Skipping
            unknown channel-path 0.41"). The first failure ends the run ("failed - "
            and the server's reason), as in chchp. --attribute takes the sysfs
            attributes chchp writes, over QMP: status=online|offline (also on, off,
            1, 0) and configure=0|1. cssd refuses to take the last path of a device in
            use (failed - GenericError: ...); --force does it anyway.
            Examples:
              cssctl chchp -v 0 0.40              (vary 0.40 offline)
              cssctl chchp -c 1 0.40-0.43,0.4c    (configure five paths)
              cssctl chchp -a status=online 40

            Exit status: 0 success, 1 a change failed (or an error reply), 2 connection or
            protocol failure, 64 usage error.
            """)

    @OptionGroup var server: ConnectionOptions

    @Option(
        name: [.customShort("v"), .customLong("vary")], help: "Logically vary channel-path to VALUE (1=on, 0=off).")
    var vary: String?

    @Option(
        name: [.customShort("c"), .customLong("configure")], help: "Configure channel-path to VALUE (1=on, 0=standby).")
    var configure: String?

    @Option(
        name: [.customShort("a"), .customLong("attribute")],
        help: ArgumentHelp("Set channel-path attribute KEY to VALUE.", valueName: "KEY=VALUE"))
    var attribute: String?

    @Flag(
        help: """
            Vary offline or configure standby even when it takes the last path of a device in \
            use (cssd's last-path interlock; chchp has no such check).
            """)
    var force = false

    @Argument(help: "Channel paths: 0.40, 40, lists and ranges (0.40-0.43,0.4c).")
    var chpids: [String] = []

    /// What to do with each path: a QMP command and the line chchp prints before it.
    struct Change: Equatable {
        enum Kind: Equatable {
            case vary(online: Bool)
            case configure(configured: Bool)
            /// A sysfs attribute that is not one chchp's commands write: it fails as chchp's
            /// write would, with this reason.
            case refused(reason: String)
        }
        var kind: Kind
        /// `Vary offline`, `Configure standby`, `Attribute status=online`.
        var label: String
    }

    func validate() throws {
        _ = try change()
        // Unlike chchp, an empty list ("", ",": an empty shell variable) is refused too: chchp
        // exits 0 having changed nothing, and the script that called it believes it did.
        guard !chpids.isEmpty, !(try Self.expand(chpids)).isEmpty else {
            throw ValidationError("Need to specify at least one channel-path ID")
        }
    }

    /// The one change asked for, with chchp's messages for a wrong or missing one.
    func change() throws(ValidationError) -> Change {
        let given = [vary, configure, attribute].compactMap { $0 }
        guard given.count <= 1 else { throw ValidationError("Only one of --vary, --configure or --attribute allowed") }
        if let vary {
            guard vary == "0" || vary == "1" else {
                throw ValidationError("Invalid value for --vary (only 0 or 1 allowed)")
            }
            return Change(kind: .vary(online: vary == "1"), label: vary == "1" ? "Vary online" : "Vary offline")
        }
        if let configure {
            guard configure == "0" || configure == "1" else {
                throw ValidationError("Invalid value for --configure (only 0 or 1 allowed)")
            }
            return Change(
                kind: .configure(configured: configure == "1"),
                label: configure == "1" ? "Configure online" : "Configure standby")
        }
        if let attribute {
            guard let equals = attribute.firstIndex(of: "="), equals != attribute.startIndex,
                attribute.index(after: equals) != attribute.endIndex
            else { throw ValidationError("--attribute requires an argument") }
            let key = String(attribute[..<equals])
            let value = String(attribute[attribute.index(after: equals)...])
            return Change(kind: Self.attributeChange(key: key, value: value), label: "Attribute \(key)=\(value)")
        }
        throw ValidationError("One of --vary, --configure or --attribute required")
    }

    /// A sysfs attribute write as the kernel takes it (drivers/s390/cio/chp.c: `status` takes
    /// on/online/1 and off/offline/0, `configure` 0 and 1); the other attributes of a channel
    /// path are read-only, anything else does not exist (chchp's two "failed - " reasons).
    static func attributeChange(key: String, value: String) -> Change.Kind {
        switch key {
        case "status":
            switch value.lowercased() {
            case "on", "online", "1": return .vary(online: true)
            case "off", "offline", "0": return .vary(online: false)
            default: return .refused(reason: "write failed")
            }
        case "configure":
            switch value {
            case "1": return .configure(configured: true)
            case "0": return .configure(configured: false)
            default: return .refused(reason: "write failed")
            }
        case "type", "cmg", "shared", "chid", "chid_external", "esc", "speed_bps", "measurement_chars",
            "measurement_chars_full", "measurement", "ext_measurement":
            return .refused(reason: "attribute not writable")
        default:
            return .refused(reason: "no such attribute")
        }
    }

    /// The paths of the arguments, in order: each argument is a comma-separated list of ids and
    /// ranges `FROM-TO` (descending ranges count down; a range may cross into another css), as
    /// chchp's main loop walks them. Errors carry chchp's messages.
    static func expand(_ arguments: [String]) throws(ValidationError) -> [(cssid: Int, chpid: Int)] {
        var out: [(cssid: Int, chpid: Int)] = []
        for item in arguments.joined(separator: ",").split(separator: ",", omittingEmptySubsequences: true) {
            let ends = item.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            let from = try id(ends[0], whole: item)
            guard ends.count == 2 else {
                out.append(from)
                continue
            }
            guard !ends[1].isEmpty else { throw ValidationError("Invalid channel-path identifier range \(ends[0])") }
            let to = try id(ends[1], whole: item)
            let (a, b) = (from.cssid * 256 + from.chpid, to.cssid * 256 + to.chpid)
            for linear in stride(from: a, through: b, by: a <= b ? 1 : -1) { out.append((linear / 256, linear % 256)) }
        }
        return out
    }

    /// One id: `CSSID.CHPID` or `CHPID` (css 0), hexadecimal, each at most ff.
    static func id(_ text: Substring, whole: Substring) throws(ValidationError) -> (cssid: Int, chpid: Int) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        let numbers = parts.map { part in Hex.number(String(part), maxDigits: 2) }
        switch (parts.count, numbers.first ?? nil, numbers.last ?? nil) {
        case (1, _, .some(let chpid)): return (0, chpid)
        case (2, .some(let cssid), .some(let chpid)): return (cssid, chpid)
        default: throw ValidationError("Invalid channel-path identifier '\(text)'")
        }
    }

    /// chchp's `%x.%02x`.
    static func name(_ path: (cssid: Int, chpid: Int)) -> String {
        "\(Hex.string(path.cssid)).\(Hex.string(path.chpid, width: 2))"
    }

    func run() throws {
        let change = try change()
        let paths = try Self.expand(chpids)
        let forced: [(String, JSON)] = force ? [("force", .bool(true))] : []
        try runningListing {
            var session = try ListingSession(
                socket: server.socket, timeoutSeconds: server.timeout, tls: try server.tlsCredentials())
            let known = Set(
                try session.execute("query-chpids").elements.compactMap { path in
                    path["chpid"]?.stringValue.flatMap { LschpCommand.chpid($0) }
                })
            for path in paths {
                let name = Self.name(path)
                guard known.contains([path.cssid, path.chpid]) else {
                    writeOutput("Skipping unknown channel-path \(name)\n")
                    continue
                }
                writeOutput("\(change.label) \(name)... ")
                do {
                    switch change.kind {
                    case .vary(let online):
                        _ = try session.execute(
                            "vary-path",
                            [("chpid", .string(name)), ("state", .string(online ? "online" : "offline"))] + forced)
                    case .configure(let configured):
                        _ = try session.execute(
                            "configure-chpid",
                            [("chpid", .string(name)), ("state", .string(configured ? "configured" : "standby"))]
                                + forced)
                    case .refused(let reason):
                        writeOutput("failed - \(reason)\n")
                        throw Exit.errorReply
                    }
                } catch let reply as ListingSession.ErrorReply {
                    writeOutput("failed - \(reply.text)\n")
                    throw Exit.errorReply
                }
                writeOutput("done.\n")
            }
        }
    }
}
