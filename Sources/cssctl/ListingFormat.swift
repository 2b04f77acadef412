// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import JSONValues
import QMPTransport
import QMPWire
import X509Credentials

#if canImport(Glibc)
import Glibc
#endif

/// A table laid out as s390-tools' libutil prints a "wide" record (util_rec.c): every column
/// left-aligned with `%-*s` and never truncated, one blank between columns, trailing blanks kept;
/// under the header a line of one separator character as long as the widths plus the gaps.
struct ListingTable {
    let columns: [(header: String, width: Int)]
    let separator: Character

    /// The header line and the separator line, each with its newline.
    var header: String {
        let rule = String(repeating: separator, count: columns.map(\.width).reduce(0, +) + columns.count - 1)
        return row(columns.map(\.header)) + rule + "\n"
    }

    /// One row and its newline; `values` has one entry per column.
    func row(_ values: [String]) -> String {
        var line = ""
        for (index, value) in values.enumerated() {
            if index > 0 { line += " " }
            line += Self.padded(value, to: columns[index].width)
        }
        return line + "\n"
    }

    /// `%-*s`: pads on the right, never cuts.
    static func padded(_ value: String, to width: Int) -> String {
        let count = value.utf8.count
        return count >= width ? value : value + String(repeating: " ", count: width - count)
    }
}

/// Lowercase hex, zero-padded to `width` digits (`%0*x`).
func hexDigits(_ value: Int, width: Int) -> String {
    Hex.string(value, width: width)
}

/// Writes text to standard output as it is (no newline added), through stdio's buffer.
func writeOutput(_ text: String) {
    print(text, terminator: "")
}

/// A connection for the listing commands: greeting, negotiation, then commands one at a time.
struct ListingSession {
    /// An error reply from the server: the listing commands print it and exit with status 1.
    struct ErrorReply: Error {
        /// `CLASS: desc`.
        let text: String
    }

    private let connection: QMPClientConnection
    private var requests = 0

    init(socket: String?, timeoutSeconds: Int, tls: TLSCredentials? = nil) throws(ClientFailure) {
        connection = try QMPClientConnection(
            connectingTo: QMPAddress.server(socket),
            replyTimeoutMilliseconds: Int32(timeoutSeconds == 0 ? -1 : timeoutSeconds * 1000), tls: tls)
        try connection.readGreeting()
        try connection.negotiate()
    }

    /// Runs `command` and returns its "return" value; events in between are skipped.
    mutating func execute(_ command: String, _ arguments: [(String, JSON)] = []) throws -> JSON {
        requests += 1
        let id = "cssctl-\(requests)"
        var request: [(String, JSON)] = [("execute", .string(command))]
        if !arguments.isEmpty { request.append(("arguments", .object(arguments))) }
        request.append(("id", .string(id)))
        try connection.writeAll(JSON.object(request).serialized() + "\n")
        while true {
            let (line, reply) = try connection.nextJSONLine()
            guard reply["id"]?.stringValue == id else { continue }  // events, or a stray reply
            if let error = reply["error"] { throw ErrorReply(text: qmpErrorText(error)) }
            guard let value = reply["return"] else {
                throw ClientFailure("\(connection.address): reply has neither return nor error: \(line.prefix(200))")
            }
            return value
        }
    }
}

/// Runs a listing: a connection failure exits with status 2, an error reply with status 1
/// (as `cssctl exec`).
func runningListing(_ body: () throws -> Void) throws {
    do {
        try reportingFailures(body)
    } catch let reply as ListingSession.ErrorReply {
        printError(reply.text)
        throw Exit.errorReply
    }
}
