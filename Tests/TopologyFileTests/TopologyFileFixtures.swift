// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import JSONValues
import TestSupport
import Testing

@testable import TopologyFile

#if canImport(Glibc)
import Glibc
#endif

/// A valid file: two FICON chpids, an OSA chpid, two DASDs and an OSA device.
let baseChpids = """
    {"chpid": "0.40", "type": "0x1a", "shared": true, "pchid": "0x0100"},
    {"chpid": "0.41", "type": "0x1a", "shared": true},
    {"chpid": "0.60", "type": "0x11"}
    """
let baseSubchannels = """
    {"subchannel": "0.0.0000", "devno": "0.0.1000", "dev-type": "3390/0c", "cu-type": "3990/e9", "chpids": ["0.40", "0.41"]},
    {"subchannel": "0.0.0001", "devno": "0.0.1001", "dev-type": "3390/0c", "cu-type": "3990/e9", "chpids": ["0.41"]},
    {"subchannel": "0.0.0002", "devno": "0.0.0600", "dev-type": "1732/01", "cu-type": "1731/01", "chpids": ["0.60"]}
    """

/// A file whose chpids or subchannels list (or extra top-level members) are replaced.
func document(chpids: String = baseChpids, subchannels: String = baseSubchannels, extra: String = "") -> String {
    """
    {
      "format": "cssd-topology",
      "version": 1,\(extra)
      "chpids": [
    \(chpids)
      ],
      "subchannels": [
    \(subchannels)
      ]
    }
    """
}

/// One subchannel entry, with its members replaceable.
func subchannel(
    _ id: String = "0.0.0000", devno: String = "\"0.0.1000\"", chpids: String = "[\"0.40\"]", extra: String = ""
) -> String {
    """
    {"subchannel": "\(id)", "devno": \(devno), "dev-type": "3390/0c", "cu-type": "3990/e9", "chpids": \(chpids)\(extra)}
    """
}

/// The base document with a `guests` member.
func guestsDocument(_ guests: String) -> String {
    document(extra: "\n  \"guests\": [\n\(guests)\n  ],")
}

/// A guest "g1" with these devices (one JSON object each).
func guestWith(_ devices: String...) -> String {
    guestsDocument("{\"name\": \"g1\", \"devices\": [\(devices.joined(separator: ", "))]}")
}

func decodeError(_ text: String) -> TopologyFileError? {
    do {
        _ = try TopologyFile.decode(text, name: "test.json")
        return nil
    } catch {
        return error
    }
}

/// Decodes with both decoders (no validation): the fast reader's result, if it takes the
/// file, must be what the jansson decoder gives.
func expectDecodersAgree(
    _ text: String, fastPath: Bool? = nil, sourceLocation: SourceLocation = #_sourceLocation
) {
    let bytes = Array(text.utf8)
    let fast = bytes.withUnsafeBytes { FastTopologyReader.read($0) }
    let tree = bytes.withUnsafeBytes { buffer in
        Result { () throws(TopologyFileError) in try TopologyFile.decodeTree(buffer, name: "test.json") }
    }
    if let fast {
        #expect((try? tree.get()) == fast, sourceLocation: sourceLocation)
    }
    if let fastPath {
        #expect((fast != nil) == fastPath, "fast path taken", sourceLocation: sourceLocation)
    }
}

/// One refused file: where the error must point and words its message must contain.
struct Refusal: CustomTestStringConvertible, Sendable {
    let name: String
    let text: String
    let location: TopologyFileError.Location
    let message: String

    var testDescription: String { name }
}

/// A named topology (named in the test log, rather than printed whole).
struct Sample: CustomTestStringConvertible, Sendable {
    let name: String
    let topology: Topology
    init(_ name: String, _ topology: Topology) { (self.name, self.topology) = (name, topology) }
    var testDescription: String { name }
}

func QMPWireParses(_ bytes: [UInt8]) -> Bool {
    JSON.parse(String(decoding: bytes, as: UTF8.self))?.isObject == true
}
