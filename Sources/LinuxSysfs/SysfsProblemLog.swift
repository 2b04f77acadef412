// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// What the readings could not read, for the server's log and its metrics: each message is
/// logged once (a failing file is not logged every tick) until the tree lists cleanly again;
/// each read error is counted by kind every time (`cssd_backend_read_errors_total{kind}`).
/// Used under the follower's lock, like the mirror that owns it.
final class SysfsProblemLog {
    /// Kinds of read errors, as `cssd_backend_read_errors_total{kind}` labels them.
    enum Kind: String, CaseIterable {
        case missing, unreadable, malformed
    }

    /// Where messages go: (warning?, text).
    var log: @Sendable (_ warning: Bool, _ message: String) -> Void = { _, _ in }
    /// Messages already logged.
    private var logged: Set<String>
    /// Read errors since the last `takeErrors()`.
    private var pending: [Kind: Int] = [:]

    /// - Parameter alreadyLogged: messages logged elsewhere (the start-up reading's problems).
    init(alreadyLogged: [String] = []) {
        logged = Set(alreadyLogged)
    }

    /// Logs `message` once; with a `kind`, a read error, counted every time. Problems without
    /// a kind (a chpid's `configure` that SCLP cannot tell, as in a KVM guest) are how the
    /// machine is, not failed readings.
    func note(_ message: String, kind: Kind? = nil) {
        if let kind { pending[kind, default: 0] += 1 }
        if logged.insert(message).inserted { log(true, "sysfs: " + message) }
    }

    /// Read errors counted since the last `takeErrors()`.
    var hasPendingErrors: Bool { !pending.isEmpty }

    /// The read errors counted since the last call (the follower adds them to its totals).
    func takeErrors() -> [Kind: Int] {
        defer { pending = [:] }
        return pending
    }

    /// The tree listed cleanly: failures of the tree as a whole are logged again if they recur.
    func recovered() {
        if logged.contains(where: Self.isAboutTheTree) {
            log(true, "sysfs: the tree is readable again")
            logged = logged.filter { !Self.isAboutTheTree($0) }
        }
    }

    private static func isAboutTheTree(_ message: String) -> Bool {
        message.contains("has gone") || message.hasPrefix("listing ") || message.hasPrefix("reading the tree")
    }
}
