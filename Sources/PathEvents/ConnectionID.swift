// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// A client connection: the server numbers its connections from 1 in the order it accepts
/// them (`ServerState.makeConnectionID`) and never reuses a number. Path-event subscriptions
/// belong to one (their owner); clients see the number as `id` in `query-connections`, and the
/// audit log as `connection`.
package struct ConnectionID: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    /// The number clients see.
    package let number: Int

    package init(_ number: Int) { self.number = number }
    package init(integerLiteral number: Int) { self.number = number }

    package static func < (lhs: ConnectionID, rhs: ConnectionID) -> Bool { lhs.number < rhs.number }

    /// The number in decimal, as clients see it.
    package var description: String { String(number) }
}
