// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import QMPWire

/// A command's arguments after validation against the schema, defaults filled in.
///
/// Because the dispatcher has already checked every member's presence and type, accessors
/// return nil only for absent optional members.
public struct Arguments {
    public let object: JSON

    public init(_ object: JSON) { self.object = object }

    public func has(_ name: String) -> Bool { object[name] != nil }
    public func string(_ name: String) -> String? { object[name]?.stringValue }
    public func int(_ name: String) -> Int? { object[name]?.intValue }
    public func bool(_ name: String) -> Bool? { object[name]?.boolValue }
    public func json(_ name: String) -> JSON? { object[name] }
    public func strings(_ name: String) -> [String]? { object[name]?.elements.compactMap(\.stringValue) }
}
