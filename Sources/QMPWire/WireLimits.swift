// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// Per-connection bounds on what a client can make the server hold.
///
/// The nesting and token-count limits are QEMU's. The value size defaults lower than QEMU's
/// 64 MiB so that a thousand connections stay bounded; `cssd --max-request-size` raises it.
package struct WireLimits: Sendable, Equatable {
    /// Largest sum of token lengths in one value (QEMU: 64 MiB), and largest single token.
    package var maxValueSize: Int
    /// Most tokens in one value (QEMU: 2 Mi).
    package var maxTokens: Int
    /// Deepest nesting of objects and arrays (QEMU: 1024).
    package var maxNesting: Int

    package init(maxValueSize: Int = 1 << 20, maxTokens: Int = 2 << 20, maxNesting: Int = 1024) {
        self.maxValueSize = maxValueSize
        self.maxTokens = maxTokens
        self.maxNesting = maxNesting
    }

    /// QEMU 7.2's own limits.
    package static let qemu = WireLimits(maxValueSize: 64 << 20)

    /// Most bytes of one pending value the scanner may keep: its tokens plus as much
    /// whitespace again (whitespace inside a value beyond that is refused like an oversize token).
    package var maxBufferedValueBytes: Int { 2 * maxValueSize + 2 }
}
