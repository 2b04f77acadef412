// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import ArgumentParser

/// `--socket` and `--timeout`, shared by the subcommands that run commands and wait for replies.
struct ConnectionOptions: ParsableArguments {
    @Option(help: "unix:PATH, tcp:HOST:PORT or a socket path (default: $CSSD_SOCKET, else ./cssd.sock).")
    var socket: String?

    @Option(help: "Give up when the server stays silent this many seconds (0: wait forever).")
    var timeout: Int = 60

    func validate() throws {
        guard timeout >= 0, timeout <= Int(Int32.max / 1000) else { throw ValidationError("--timeout out of range") }
    }

    /// The address to connect to.
    func address() throws(ClientFailure) -> ServerAddress {
        try ServerAddress(parsing: socket ?? ServerAddress.defaultText)
    }

    /// poll(2)'s wait for one reply, in milliseconds (-1: forever).
    var waitMilliseconds: Int32 { Int32(timeout == 0 ? -1 : timeout * 1000) }
}
