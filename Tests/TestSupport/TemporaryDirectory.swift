// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A new, empty directory `NSTemporaryDirectory()/PREFIX-UUID`; the caller removes it (a state
/// dir a failed test leaves behind is there to be looked at).
package func makeTemporaryDirectory(prefix: String) -> String {
    let path = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// A temporary directory for unix sockets, removed on deinit. Under /tmp with a short name: a
/// socket path holds at most 107 bytes (sockaddr_un.sun_path).
package final class TemporaryDirectory: Sendable {
    package let path: String

    package init() {
        var template = Array("/tmp/cssd-test-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// PATH/NAME.
    package func file(_ name: String) -> String { "\(path)/\(name)" }
}
