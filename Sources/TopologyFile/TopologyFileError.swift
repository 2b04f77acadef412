// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

/// A topology file that cannot be used. The description names the file and where in it the
/// problem is: `FILE:LINE:COLUMN: ...` for JSON syntax, `FILE: FIELD: ...` for a field
/// (`subchannels[3].chpids[1]`), `FILE: ...` for the file as a whole (cannot be read, not an
/// object). See API/topology.md for the forms.
package struct TopologyFileError: Error, Equatable, Sendable, CustomStringConvertible {
    package enum Location: Equatable, Sendable {
        /// The whole file: it cannot be read, or its top level is not an object.
        case file
        /// A JSON syntax error at a 1-based line and column, as jansson reports them.
        case position(line: Int, column: Int)
        /// A field, as a path in the document: `chpids[2].type`, `subchannels[3].chpids[9]`.
        case field(String)
    }

    /// The file's name as given by the caller (`<string>` for text decoded from memory).
    package let file: String
    package let location: Location
    /// What is wrong, naming the value and the rule.
    package let message: String

    package init(file: String, location: Location, message: String) {
        self.file = file
        self.location = location
        self.message = message
    }

    /// The field path, if the error is about a field.
    package var field: String? {
        if case let .field(path) = location { return path }
        return nil
    }

    package var description: String {
        switch location {
        case .file: "\(file): \(message)"
        case let .position(line, column): "\(file):\(line):\(column): \(message)"
        case let .field(path): "\(file): \(path): \(message)"
        }
    }
}

extension TopologyFileError {
    /// Maps a semantic error from `Topology.validate()` (whose fields use the model's names,
    /// `channelPaths[2].pchid`, `subchannels[3].devType`) to the file's field paths
    /// (`chpids[2].pchid`, `subchannels[3].dev-type`), so that an error from
    /// `Subsystem(topology:)` or from building the guests (`Guests(topology:host:)`:
    /// `guests[0].crwCapacity`, `guests[0].devices[1].virtio.cuModel`) on a decoded topology
    /// can be reported against the file too.
    package init(file: String, validation error: TopologyError) {
        self.init(
            file: file, location: .field(Self.fileFieldPath(error.field)), message: Self.fileWording(error.reason))
    }

    /// Model field path -> file field path.
    static func fileFieldPath(_ field: String) -> String {
        var path = Substring(field)
        var result = ""
        for (model, file) in [("channelSubsystems", "channel-subsystems"), ("channelPaths", "chpids")]
        where path.hasPrefix(model) {
            result = file
            path = path.dropFirst(model.count)
            break
        }
        // The last component may be a model property whose file key differs.
        if path.hasPrefix("guests") {
            for (model, file) in [(".crwCapacity", ".crw-capacity"), (".cuModel", ".cu-model")]
            where path.hasSuffix(model) {
                return result + path.dropLast(model.count) + file
            }
            return result + path
        }
        let renames = [
            (".devType", ".dev-type"), (".devModel", ".dev-type"), (".cuType", ".cu-type"), (".cuModel", ".cu-type"),
        ]
        for (model, file) in renames where path.hasSuffix(model) {
            return result + path.dropLast(model.count) + file
        }
        return result + path
    }

    /// Model collection names in a reason text -> the file's keys.
    static func fileWording(_ reason: String) -> String {
        var text = reason
        for (model, file) in [("channelSubsystems", "channel-subsystems"), ("channelPaths", "chpids")]
        where text.contains(model) {
            text = text.replacing(model, with: file)
        }
        return text
    }
}
