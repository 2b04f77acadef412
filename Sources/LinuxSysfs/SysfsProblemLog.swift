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

    /// Where messages go: (warning?, text). Messages noted before it is set are kept and
    /// sent when it is: the backend's start-up measurement pass runs before the follower
    /// starts and attaches the server's log, and its problems are noted only once.
    var log: @Sendable (_ warning: Bool, _ message: String) -> Void = { _, _ in } {
        didSet {
            attached = true
            for message in unsent { log(true, "sysfs: " + message) }
            unsent = []
        }
    }
    /// Messages already logged (or kept in `unsent`).
    private var logged: Set<String>
    /// Whether `log` was set.
    private var attached = false
    /// Messages noted before `log` was set, in order.
    private var unsent: [String] = []
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
        guard logged.insert(message).inserted else { return }
        if attached { log(true, "sysfs: " + message) } else { unsent.append(message) }
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
