// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// Locations in the checkout, from this file's path (Tests/TestSupport/Repository.swift).
package enum Repository {
    /// The checkout's root directory.
    package static let root: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }()

    /// Tests/fixtures.
    package static let fixtures: String = root + "/Tests/fixtures"
}
