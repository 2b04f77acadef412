// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Logging
import NIOConcurrencyHelpers
import NIOSSL
import X509Credentials

#if canImport(Glibc)
import Glibc
#endif

/// The TLS credentials (`--tls-creds`) and authorization policy (`--tls-authz`) of the tcp
/// listeners, reloadable while the server runs. One instance can serve every TLS endpoint of
/// the process (QMP listeners, a metrics endpoint), so that one SIGHUP reloads them all.
///
/// Each accepted connection takes the current `Snapshot`; a reload (SIGHUP, or the authz file
/// changing) replaces it for later connections and never disturbs open ones. A reload that
/// fails keeps the previous credentials or policy and says why. Loading reads files: call
/// `init` and the reloads off the event loop.
package final class TransportSecurity: Sendable {
    /// What one connection is checked with.
    package struct Snapshot: Sendable {
        package let credentials: TLSCredentials
        package let context: NIOSSLContext
        /// nil: every client with a valid certificate is authorized (QEMU without tls-authz).
        package let authz: AuthzPolicy?

        /// The TLS handler of one accepted connection: this context, the client's chain
        /// verified by `ClientChainVerifier` (the chain kept for the CRL check of every member).
        package func makeServerHandler() -> NIOSSLServerHandler {
            credentials.verifier.makeServerHandler(context: context)
        }
    }

    package let credentialsDirectory: String
    package let authzFile: String?
    private let state: NIOLockedValueBox<(snapshot: Snapshot, authzStamp: FileStamp?)>

    /// Loads both; a problem with either refuses (the error names the file).
    package init(credentialsDirectory: String, authzFile: String?) throws {
        self.credentialsDirectory = credentialsDirectory
        self.authzFile = authzFile
        let credentials = try TLSCredentials(directory: credentialsDirectory, endpoint: .server)
        let context = try credentials.makeServerContext()
        let stamp = authzFile.map(FileStamp.init(path:))
        var authz: AuthzPolicy?
        if let authzFile { authz = try AuthzPolicy.load(file: authzFile) }
        state = NIOLockedValueBox((Snapshot(credentials: credentials, context: context, authz: authz), stamp))
    }

    package var current: Snapshot { state.withLockedValue { $0.snapshot } }

    /// Reads the credentials and the policy again (SIGHUP). Returns whether both were taken.
    @discardableResult
    package func reload(logger: Logger) -> Bool {
        var ok = true
        do {
            let credentials = try TLSCredentials(directory: credentialsDirectory, endpoint: .server)
            let context = try credentials.makeServerContext()
            state.withLockedValue {
                $0.snapshot = Snapshot(credentials: credentials, context: context, authz: $0.snapshot.authz)
            }
            logger.notice("TLS credentials reloaded", metadata: ["directory": "\(credentialsDirectory)"])
        } catch {
            ok = false
            logger.error(
                "TLS credentials not reloaded, keeping the previous ones",
                metadata: ["directory": "\(credentialsDirectory)", "error": "\(error)"])
        }
        if authzFile != nil { ok = reloadAuthz(logger: logger, reason: "reload") && ok }
        return ok
    }

    /// Reloads the policy if its file changed since it was last read (QEMU's `refresh=on`).
    package func reloadAuthzIfChanged(logger: Logger) {
        guard let authzFile else { return }
        let stamp = FileStamp(path: authzFile)
        guard state.withLockedValue({ $0.authzStamp != stamp }) else { return }
        reloadAuthz(logger: logger, reason: "file changed")
    }

    @discardableResult
    private func reloadAuthz(logger: Logger, reason: String) -> Bool {
        guard let authzFile else { return true }
        let stamp = FileStamp(path: authzFile)
        do throws(AuthzPolicyError) {
            let policy = try AuthzPolicy.load(file: authzFile)
            state.withLockedValue {
                $0.authzStamp = stamp
                $0.snapshot = Snapshot(
                    credentials: $0.snapshot.credentials, context: $0.snapshot.context, authz: policy)
            }
            logger.notice(
                "authorization policy reloaded",
                metadata: [
                    "file": "\(authzFile)", "reason": "\(reason)", "rules": "\(policy.rules.count)",
                    "default": "\(policy.policy.rawValue)",
                ])
            return true
        } catch {
            // Remember the bad version too: it is reported once, not every second.
            state.withLockedValue { $0.authzStamp = stamp }
            logger.error(
                "authorization policy not reloaded, keeping the previous one",
                metadata: ["file": "\(authzFile)", "reason": "\(reason)", "error": "\(error)"])
            return false
        }
    }
}

/// What tells that a file changed: inode, size and modification time (ns).
package struct FileStamp: Equatable, Sendable {
    let inode: UInt64
    let size: Int64
    let seconds: Int
    let nanoseconds: Int

    package init(path: String) {
        var info = stat()
        if stat(path, &info) == 0 {
            inode = UInt64(info.st_ino)
            size = Int64(info.st_size)
            seconds = info.st_mtim.tv_sec
            nanoseconds = info.st_mtim.tv_nsec
        } else {
            inode = 0
            size = -1
            seconds = 0
            nanoseconds = 0
        }
    }
}
