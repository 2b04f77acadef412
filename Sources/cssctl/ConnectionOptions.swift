// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import ArgumentParser
import QMPTransport
import X509Credentials

/// `--socket` and `--timeout`, shared by the subcommands that run commands and wait for replies.
struct ConnectionOptions: ParsableArguments {
    @Option(
        help:
            "unix:PATH, tcp:HOST:PORT or a socket path (default: $CSSD_SOCKET, else /run/cssd/qmp.sock when it exists, else ./cssd.sock)."
    )
    var socket: String?

    @Option(help: "Give up when the server stays silent this many seconds (0: wait forever).")
    var timeout: Int = 60

    @Option(
        name: .customLong("tls-creds"),
        help:
            "TLS with a client certificate for tcp: sockets: a directory with ca-cert.pem, client-cert.pem, client-key.pem (QEMU's layout)."
    )
    var tlsCreds: String?

    /// The client credentials of --tls-creds, or nil.
    func tlsCredentials() throws(ClientFailure) -> TLSCredentials? {
        try loadClientCredentials(tlsCreds)
    }

    func validate() throws {
        guard timeout >= 0, timeout <= Int(Int32.max / 1000) else { throw ValidationError("--timeout out of range") }
    }

    /// The address to connect to.
    func address() throws(ClientFailure) -> QMPAddress {
        try QMPAddress.server(socket)
    }

    /// poll(2)'s wait for one reply, in milliseconds (-1: forever).
    var waitMilliseconds: Int32 { Int32(timeout == 0 ? -1 : timeout * 1000) }
}

extension ConnectionOptions {
    /// The options every connecting subcommand takes, which users put before the subcommand as
    /// they do with git and virsh (`cssctl --socket S lschp`). Each takes a value; `--tls-creds`
    /// (the client certificate for a TLS listener) belongs to the same group.
    static let names: Set<String> = ["--socket", "--timeout", "--tls-creds"]

    /// Moves connection options given before a subcommand's name to just after it, where that
    /// subcommand parses them (`--socket S --timeout 5 lscss -s` -> `lscss --socket S --timeout 5
    /// -s`); a line that starts any other way is returned as it is. Without this, ArgumentParser
    /// gives a line that does not start with a subcommand's name to the default subcommand
    /// (`exec`), which sent `lschp` to the server as a QMP command. Each subcommand keeps its
    /// own meaning of the options: `events --timeout` is its idle timeout, `bench --timeout` its
    /// stall timeout, and a subcommand that does not connect refuses them as unknown options.
    static func movedAfterSubcommand(_ arguments: [String], subcommands: Set<String>) -> [String] {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if names.contains(argument) {
                index += 2  // the option and its value
            } else if let equals = argument.firstIndex(of: "="), names.contains(String(argument[..<equals])) {
                index += 1
            } else {
                break
            }
        }
        guard index > 0, index < arguments.count, subcommands.contains(arguments[index]) else { return arguments }
        return [arguments[index]] + arguments[..<index] + arguments[(index + 1)...]
    }
}

/// Reads a client credentials directory; a problem is a ClientFailure naming the file.
func loadClientCredentials(_ directory: String?) throws(ClientFailure) -> TLSCredentials? {
    guard let directory else { return nil }
    do {
        return try TLSCredentials(directory: directory, endpoint: .client)
    } catch {
        throw ClientFailure("--tls-creds: \(error)")
    }
}
