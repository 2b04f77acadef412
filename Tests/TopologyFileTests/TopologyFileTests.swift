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
private let baseChpids = """
    {"chpid": "0.40", "type": "0x1a", "shared": true, "pchid": "0x0100"},
    {"chpid": "0.41", "type": "0x1a", "shared": true},
    {"chpid": "0.60", "type": "0x11"}
    """
private let baseSubchannels = """
    {"subchannel": "0.0.0000", "devno": "0.0.1000", "dev-type": "3390/0c", "cu-type": "3990/e9", "chpids": ["0.40", "0.41"]},
    {"subchannel": "0.0.0001", "devno": "0.0.1001", "dev-type": "3390/0c", "cu-type": "3990/e9", "chpids": ["0.41"]},
    {"subchannel": "0.0.0002", "devno": "0.0.0600", "dev-type": "1732/01", "cu-type": "1731/01", "chpids": ["0.60"]}
    """

/// A file whose chpids or subchannels list (or extra top-level members) are replaced.
private func document(chpids: String = baseChpids, subchannels: String = baseSubchannels, extra: String = "") -> String
{
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
private func subchannel(
    _ id: String = "0.0.0000", devno: String = "\"0.0.1000\"", chpids: String = "[\"0.40\"]", extra: String = ""
) -> String {
    """
    {"subchannel": "\(id)", "devno": \(devno), "dev-type": "3390/0c", "cu-type": "3990/e9", "chpids": \(chpids)\(extra)}
    """
}

/// The base document with a `guests` member.
private func guestsDocument(_ guests: String) -> String {
    document(extra: "\n  \"guests\": [\n\(guests)\n  ],")
}

/// A guest "g1" with these devices (one JSON object each).
private func guestWith(_ devices: String...) -> String {
    guestsDocument("{\"name\": \"g1\", \"devices\": [\(devices.joined(separator: ", "))]}")
}

private func decodeError(_ text: String) -> TopologyFileError? {
    do {
        _ = try TopologyFile.decode(text, name: "test.json")
        return nil
    } catch {
        return error
    }
}

/// Decodes with both decoders (no validation): the fast reader's result, if it takes the
/// file, must be what the jansson decoder gives.
private func expectDecodersAgree(
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

private let refusals: [Refusal] = [
    // JSON syntax: line and column.
    Refusal(
        name: "malformed JSON", text: "{\"format\": \"cssd-topology\",\n  \"version\": 1,\n  \"chpids\": [}",
        location: .position(line: 3, column: 14), message: "JSON syntax error: unexpected token near '}'"),
    Refusal(
        name: "trailing comma", text: document(subchannels: baseSubchannels + ","),
        location: .position(line: 13, column: 3), message: "JSON syntax error: unexpected token near ']'"),
    Refusal(
        name: "duplicate key", text: document(subchannels: subchannel(extra: ", \"isc\": 1, \"isc\": 2")),
        location: .position(line: 10, column: 128), message: "duplicate object key near '\"isc\"'"),
    Refusal(name: "empty file", text: "", location: .position(line: 1, column: 0), message: "JSON syntax error"),
    Refusal(
        name: "integer too big", text: document(subchannels: subchannel(devno: "123456789012345678901234567890")),
        location: .position(line: 10, column: 66), message: "too big integer"),
    // The document as a whole.
    Refusal(name: "not an object", text: "[1, 2]", location: .file, message: "top level must be an object"),
    Refusal(
        name: "missing format", text: "{\"version\": 1, \"chpids\": []}", location: .field("format"),
        message: "missing"),
    Refusal(
        name: "wrong format", text: "{\"format\": \"qemu\", \"version\": 1}", location: .field("format"),
        message: "expected \"cssd-topology\", found the string \"qemu\""),
    Refusal(
        name: "missing version", text: "{\"format\": \"cssd-topology\"}", location: .field("version"),
        message: "missing"),
    Refusal(
        name: "future version", text: "{\"format\": \"cssd-topology\", \"version\": 2}", location: .field("version"),
        message: "found the integer 2"),
    // Unknown keys.
    Refusal(
        name: "unknown top-level key", text: document(extra: "\n  \"subchannel\": [],"),
        location: .field("subchannel"), message: "unknown key \"subchannel\"; the keys here are: format, version"),
    Refusal(
        name: "unknown subchannel key", text: document(subchannels: subchannel(extra: ", \"devtype\": \"3390/0c\"")),
        location: .field("subchannels[0].devtype"), message: "unknown key \"devtype\""),
    Refusal(
        name: "unknown chpid key", text: document(chpids: "{\"chpid\": \"0.40\", \"type\": 26, \"pchd\": 5}"),
        location: .field("chpids[0].pchd"), message: "unknown key \"pchd\""),
    Refusal(
        name: "unknown css key", text: document(extra: "\n  \"channel-subsystems\": [{\"css\": 0}],"),
        location: .field("channel-subsystems[0].css"), message: "unknown key \"css\""),
    // Wrong types.
    Refusal(
        name: "chpids not a list", text: "{\"format\": \"cssd-topology\", \"version\": 1, \"chpids\": {}}",
        location: .field("chpids"), message: "expected an array, found an object"),
    Refusal(
        name: "subchannel not an object", text: document(subchannels: "\"0.0.0000\""),
        location: .field("subchannels[0]"), message: "expected an object, found the string \"0.0.0000\""),
    Refusal(
        name: "enabled as a string", text: document(subchannels: subchannel(extra: ", \"enabled\": \"yes\"")),
        location: .field("subchannels[0].enabled"), message: "expected true or false, found the string \"yes\""),
    Refusal(
        name: "isc as a string", text: document(subchannels: subchannel(extra: ", \"isc\": \"3\"")),
        location: .field("subchannels[0].isc"), message: "expected an integer"),
    Refusal(
        name: "paths not a list", text: document(subchannels: subchannel(chpids: "\"0.40\"")),
        location: .field("subchannels[0].chpids"), message: "expected an array"),
    Refusal(
        name: "path as a number", text: document(subchannels: subchannel(chpids: "[\"0.40\", 65]")),
        location: .field("subchannels[0].chpids[1]"), message: "expected a string, found the integer 65"),
    Refusal(
        name: "type as a boolean", text: document(chpids: "{\"chpid\": \"0.40\", \"type\": true}"),
        location: .field("chpids[0].type"), message: "expected a hex string like \"0x1a\" or an integer, found true"),
    Refusal(
        name: "type as a real", text: document(chpids: "{\"chpid\": \"0.40\", \"type\": 26.0}"),
        location: .field("chpids[0].type"), message: "found the number 26.0"),
    Refusal(
        name: "type not hex", text: document(chpids: "{\"chpid\": \"0.40\", \"type\": \"FICON\"}"),
        location: .field("chpids[0].type"), message: "'FICON': expected a hex number"),
    Refusal(
        name: "shared as a number", text: document(chpids: "{\"chpid\": \"0.40\", \"type\": 26, \"shared\": 1}"),
        location: .field("chpids[0].shared"), message: "expected true or false"),
    Refusal(
        name: "unknown vary state", text: document(chpids: "{\"chpid\": \"0.40\", \"type\": 26, \"vary\": \"up\"}"),
        location: .field("chpids[0].vary"), message: "'up' is not one of \"online\", \"offline\""),
    Refusal(
        name: "unknown configure state",
        text: document(chpids: "{\"chpid\": \"0.40\", \"type\": 26, \"configure\": 1}"),
        location: .field("chpids[0].configure"), message: "expected one of \"standby\", \"configured\""),
    Refusal(
        name: "dev-type as a number",
        text: document(subchannels: subchannel().replacingOccurrences("\"3390/0c\"", "13200")),
        location: .field("subchannels[0].dev-type"), message: "expected a string like \"3390/0c\""),
    Refusal(
        name: "dev-type badly written",
        text: document(subchannels: subchannel().replacingOccurrences("3390/0c", "3390-0c")),
        location: .field("subchannels[0].dev-type"), message: "'3390-0c': expected type/model in hex, like 3390/0c"),
    Refusal(
        name: "cu-type model too long",
        text: document(subchannels: subchannel().replacingOccurrences("3990/e9", "3990/e99")),
        location: .field("subchannels[0].cu-type"), message: "'3990/e99': expected type/model in hex, like 3990/e9"),
    Refusal(
        name: "multiple-css as a string", text: document(extra: "\n  \"multiple-css\": \"yes\","),
        location: .field("multiple-css"), message: "expected true or false"),
    // Required keys.
    Refusal(
        name: "missing cu-type",
        text: document(subchannels: "{\"subchannel\": \"0.0.0000\", \"devno\": 1, \"chpids\": [\"0.40\"]}"),
        location: .field("subchannels[0]"), message: "missing required key \"cu-type\""),
    Refusal(
        name: "missing devno",
        text: document(subchannels: "{\"subchannel\": \"0.0.0000\", \"cu-type\": \"3990/e9\", \"chpids\": [\"0.40\"]}"),
        location: .field("subchannels[0]"), message: "missing required key \"devno\""),
    Refusal(
        name: "missing chpid type", text: document(chpids: "{\"chpid\": \"0.40\"}"),
        location: .field("chpids[0]"), message: "missing required key \"type\""),
    // Ids in the wrong notation or out of range.
    Refusal(
        name: "subchannel id not hex", text: document(subchannels: subchannel("0.0.zz")),
        location: .field("subchannels[0].subchannel"), message: "'0.0.zz': expected cssid.ssid.schno in hex"),
    Refusal(
        name: "ssid out of range", text: document(subchannels: subchannel("0.4.0000")),
        location: .field("subchannels[0].subchannel"), message: "'0.4.0000': ssid 4 is out of range (0..3)"),
    Refusal(
        name: "cssid too long", text: document(subchannels: subchannel("100.0.0000")),
        location: .field("subchannels[0].subchannel"), message: "'100.0.0000': expected cssid.ssid.schno"),
    Refusal(
        name: "schno too long", text: document(subchannels: subchannel("0.0.10000")),
        location: .field("subchannels[0].subchannel"), message: "expected cssid.ssid.schno"),
    Refusal(
        name: "chpid out of range", text: document(subchannels: subchannel(chpids: "[\"0.100\"]")),
        location: .field("subchannels[0].chpids[0]"), message: "'0.100': expected cssid.chpid in hex, like 0.4a"),
    Refusal(
        name: "chpid id malformed", text: document(chpids: "{\"chpid\": \"4a\", \"type\": 26}"),
        location: .field("chpids[0].chpid"), message: "'4a': expected cssid.chpid in hex"),
    Refusal(
        name: "devno out of range", text: document(subchannels: subchannel(devno: "70000")),
        location: .field("subchannels[0].devno"), message: "devno 70000 is out of range (0..0xffff)"),
    Refusal(
        name: "devno malformed", text: document(subchannels: subchannel(devno: "\"1000\"")),
        location: .field("subchannels[0].devno"), message: "'1000': expected cssid.ssid.devno in hex"),
    Refusal(
        name: "devno as a boolean", text: document(subchannels: subchannel(devno: "true")),
        location: .field("subchannels[0].devno"), message: "expected a device number like \"0.0.4711\""),
    Refusal(
        name: "devno in another subchannel set", text: document(subchannels: subchannel(devno: "\"0.1.1000\"")),
        location: .field("subchannels[0].devno"),
        message: "device 0.1.1000 is not in the subchannel set of subchannel 0.0.0000 (expected 0.0.1000)"),
    Refusal(
        name: "chpid type out of range", text: document(chpids: "{\"chpid\": \"0.40\", \"type\": \"0x100\"}"),
        location: .field("chpids[0].type"), message: "type 256 is out of range (0..0xff)"),
    Refusal(
        name: "pchid out of range",
        text: document(chpids: baseChpids.replacingOccurrences("\"pchid\": \"0x0100\"", "\"pchid\": 65536")),
        location: .field("chpids[0].pchid"), message: "pchid 65536 is out of range (0..0xffff)"),
    Refusal(
        name: "isc out of range", text: document(subchannels: subchannel(extra: ", \"isc\": 8")),
        location: .field("subchannels[0].isc"), message: "isc 8 is out of range (0..0x7)"),
    Refusal(
        name: "cssid out of range", text: document(extra: "\n  \"channel-subsystems\": [{\"cssid\": 256}],"),
        location: .field("channel-subsystems[0].cssid"), message: "cssid 256 is out of range (0..0xff)"),
    // References and uniqueness (Topology.validate(), mapped to the file's names).
    Refusal(
        name: "unknown chpid referenced",
        text: document(subchannels: subchannel(chpids: "[\"0.40\", \"0.41\", \"0.99\"]")),
        location: .field("subchannels[0].chpids[2]"), message: "unknown chpid 0.99: it is not in chpids"),
    Refusal(
        name: "duplicate devno",
        text: document(subchannels: subchannel("0.0.0000") + ",\n" + subchannel("0.0.0001")),
        location: .field("subchannels[1]"), message: "duplicate device number 0.0.1000"),
    Refusal(
        name: "duplicate subchannel",
        text: document(subchannels: subchannel("0.0.0005") + ",\n" + subchannel("0.0.0005", devno: "\"0.0.2000\"")),
        location: .field("subchannels[1]"), message: "duplicate subchannel 0.0.0005"),
    Refusal(
        name: "duplicate chpid",
        text: document(chpids: baseChpids + ",\n{\"chpid\": \"0.41\", \"type\": 26}"),
        location: .field("chpids[3]"), message: "duplicate chpid 0.41"),
    Refusal(
        name: "more than 8 paths",
        text: document(
            chpids: (0x40...0x48).map { "{\"chpid\": \"0.\(String($0, radix: 16))\", \"type\": 26}" }.joined(
                separator: ",\n"),
            subchannels: subchannel(
                chpids: "[" + (0x40...0x48).map { "\"0.\(String($0, radix: 16))\"" }.joined(separator: ", ") + "]")),
        location: .field("subchannels[0].chpids"), message: "has 9 channel paths; at most 8 are allowed"),
    Refusal(
        name: "no paths", text: document(subchannels: subchannel(chpids: "[]")),
        location: .field("subchannels[0].chpids"), message: "needs at least one channel path"),
    Refusal(
        name: "path listed twice", text: document(subchannels: subchannel(chpids: "[\"0.40\", \"0.40\"]")),
        location: .field("subchannels[0].chpids[1]"), message: "chpid 0.40 is listed twice"),
    Refusal(
        name: "path of another css",
        text: document(
            chpids: baseChpids + ",\n{\"chpid\": \"1.40\", \"type\": 26}",
            subchannels: subchannel(chpids: "[\"1.40\"]")),
        location: .field("subchannels[0].chpids[0]"), message: "chpid 1.40 is not in channel subsystem 0"),
    Refusal(
        name: "css not listed", text: document(extra: "\n  \"channel-subsystems\": [{\"cssid\": \"fe\"}],"),
        location: .field("chpids[0]"), message: "chpid 0.40 is in channel subsystem 0, which is not defined"),
    Refusal(
        name: "css listed twice",
        text: document(extra: "\n  \"channel-subsystems\": [{\"cssid\": 0}, {\"cssid\": \"0x0\"}],"),
        location: .field("channel-subsystems[1]"), message: "duplicate channel subsystem 0"),
    // Guests: the format (their rules are checked when the guests are built, in VFIOCCW).
    Refusal(
        name: "guests not a list", text: document(extra: "\n  \"guests\": {},"),
        location: .field("guests"), message: "expected an array, found an object"),
    Refusal(
        name: "guest not an object", text: guestsDocument("\"g1\""),
        location: .field("guests[0]"), message: "expected an object, found the string \"g1\""),
    Refusal(
        name: "unknown guest key", text: guestsDocument("{\"name\": \"g1\", \"strategie\": \"crw\"}"),
        location: .field("guests[0].strategie"),
        message: "unknown key \"strategie\"; the keys here are: name, strategy, crw-capacity, devices"),
    Refusal(
        name: "guest without a name", text: guestsDocument("{\"devices\": []}"),
        location: .field("guests[0]"), message: "missing required key \"name\""),
    Refusal(
        name: "guest name as a number", text: guestsDocument("{\"name\": 1}"),
        location: .field("guests[0].name"), message: "expected a string, found the integer 1"),
    Refusal(
        name: "strategy as a boolean", text: guestsDocument("{\"name\": \"g1\", \"strategy\": true}"),
        location: .field("guests[0].strategy"),
        message: "expected a string (\"per-device\", \"crw\" or \"lazy\"), found true"),
    Refusal(
        name: "crw-capacity as a string", text: guestsDocument("{\"name\": \"g1\", \"crw-capacity\": \"64\"}"),
        location: .field("guests[0].crw-capacity"),
        message: "expected an integer, found the string \"64\""),
    Refusal(
        name: "guest devices not a list", text: guestsDocument("{\"name\": \"g1\", \"devices\": {}}"),
        location: .field("guests[0].devices"), message: "expected an array, found an object"),
    Refusal(
        name: "guest device not an object", text: guestWith("{\"virtio\": {\"cu-model\": 1}}", "\"virtio\""),
        location: .field("guests[0].devices[1]"), message: "expected an object, found the string \"virtio\""),
    Refusal(
        name: "guest device of both kinds",
        text: guestWith("{\"virtio\": {\"cu-model\": 1}, \"passthrough\": {\"host-subchannel\": \"0.0.0000\"}}"),
        location: .field("guests[0].devices[0]"),
        message: "expected exactly one key, \"virtio\" or \"passthrough\", found both"),
    Refusal(
        name: "guest device of no kind", text: guestWith("{}"),
        location: .field("guests[0].devices[0]"), message: "found none"),
    Refusal(
        name: "unknown guest device kind", text: guestWith("{\"vfio\": {}}"),
        location: .field("guests[0].devices[0].vfio"),
        message: "unknown key \"vfio\"; the keys here are: virtio, passthrough"),
    Refusal(
        name: "virtio not an object", text: guestWith("{\"virtio\": 1}"),
        location: .field("guests[0].devices[0].virtio"), message: "expected an object, found the integer 1"),
    Refusal(
        name: "unknown virtio key", text: guestWith("{\"virtio\": {\"cu-type\": \"3832/01\"}}"),
        location: .field("guests[0].devices[0].virtio.cu-type"),
        message: "unknown key \"cu-type\"; the keys here are: subchannel, devno, cu-model"),
    Refusal(
        name: "virtio without cu-model", text: guestWith("{\"virtio\": {\"subchannel\": \"fe.0.0000\"}}"),
        location: .field("guests[0].devices[0].virtio"), message: "missing required key \"cu-model\""),
    Refusal(
        name: "virtio cu-model not hex", text: guestWith("{\"virtio\": {\"cu-model\": \"net\"}}"),
        location: .field("guests[0].devices[0].virtio.cu-model"),
        message: "'net': expected a hex number like 0x01 (0x optional) or an integer"),
    Refusal(
        name: "virtio subchannel malformed",
        text: guestWith("{\"virtio\": {\"subchannel\": \"fe.0.zz\", \"cu-model\": 1}}"),
        location: .field("guests[0].devices[0].virtio.subchannel"),
        message: "'fe.0.zz': expected cssid.ssid.schno in hex"),
    Refusal(
        name: "virtio devno in another set",
        text: guestWith("{\"virtio\": {\"subchannel\": \"fe.1.0000\", \"devno\": \"fe.0.0005\", \"cu-model\": 1}}"),
        location: .field("guests[0].devices[0].virtio.devno"),
        message: "device fe.0.0005 is not in the subchannel set of subchannel fe.1.0000 (expected fe.1.0005)"),
    Refusal(
        name: "virtio devno outside the default set",
        text: guestWith("{\"virtio\": {\"devno\": \"0.0.0005\", \"cu-model\": 1}}"),
        location: .field("guests[0].devices[0].virtio.devno"),
        message:
            "device 0.0.0005 is not in subchannel set fe.0, where a device without \"subchannel\" goes (expected fe.0.0005)"
    ),
    Refusal(
        name: "virtio devno null", text: guestWith("{\"virtio\": {\"devno\": null, \"cu-model\": 1}}"),
        location: .field("guests[0].devices[0].virtio.devno"),
        message: "expected a device number like \"fe.0.4711\" or an integer, found null"),
    Refusal(
        name: "virtio devno malformed", text: guestWith("{\"virtio\": {\"devno\": \"fe.0.xyz\", \"cu-model\": 1}}"),
        location: .field("guests[0].devices[0].virtio.devno"), message: "'fe.0.xyz': expected cssid.ssid.devno in hex"),
    Refusal(
        name: "passthrough without host-subchannel", text: guestWith("{\"passthrough\": {}}"),
        location: .field("guests[0].devices[0].passthrough"), message: "missing required key \"host-subchannel\""),
    Refusal(
        name: "unknown passthrough key",
        text: guestWith("{\"passthrough\": {\"host-subchannel\": \"0.0.0000\", \"guest-chpid\": [\"fe.40\"]}}"),
        location: .field("guests[0].devices[0].passthrough.guest-chpid"),
        message: "unknown key \"guest-chpid\"; the keys here are: host-subchannel, guest-subchannel, guest-chpids"),
    Refusal(
        name: "host-subchannel ssid out of range",
        text: guestWith("{\"passthrough\": {\"host-subchannel\": \"0.4.0000\"}}"),
        location: .field("guests[0].devices[0].passthrough.host-subchannel"),
        message: "'0.4.0000': ssid 4 is out of range (0..3)"),
    Refusal(
        name: "guest-subchannel as a number",
        text: guestWith("{\"passthrough\": {\"host-subchannel\": \"0.0.0000\", \"guest-subchannel\": 3}}"),
        location: .field("guests[0].devices[0].passthrough.guest-subchannel"),
        message: "expected a string, found the integer 3"),
    Refusal(
        name: "guest-chpids not a list",
        text: guestWith("{\"passthrough\": {\"host-subchannel\": \"0.0.0000\", \"guest-chpids\": \"fe.40\"}}"),
        location: .field("guests[0].devices[0].passthrough.guest-chpids"), message: "expected an array"),
    Refusal(
        name: "guest chpid out of range",
        text: guestWith(
            "{\"virtio\": {\"cu-model\": 1}}",
            "{\"passthrough\": {\"host-subchannel\": \"0.0.0000\", \"guest-chpids\": [\"fe.40\", \"fe.400\"]}}"),
        location: .field("guests[0].devices[1].passthrough.guest-chpids[1]"),
        message: "'fe.400': expected cssid.chpid in hex"),
    Refusal(
        name: "second guest's error",
        text: guestsDocument("{\"name\": \"g1\"},\n{\"name\": \"g2\", \"devices\": [{\"virtio\": {}}]}"),
        location: .field("guests[1].devices[0].virtio"), message: "missing required key \"cu-model\""),
]

extension String {
    fileprivate func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        replacing(target, with: replacement)
    }
}

@Suite("Topology files")
struct TopologyFileTests {
    @Test("refused files name the line or field", arguments: refusals)
    func refusal(_ case: Refusal) throws {
        let error = try #require(decodeError(`case`.text), "\(`case`.name) was accepted")
        #expect(error.file == "test.json")
        #expect(error.location == `case`.location, "\(error)")
        #expect(error.message.contains(`case`.message), "\(error)")
        // The one-line form names the file and the place.
        switch `case`.location {
        case .file: #expect(error.description.hasPrefix("test.json: "))
        case let .position(line, column): #expect(error.description.hasPrefix("test.json:\(line):\(column): "))
        case let .field(path): #expect(error.description.hasPrefix("test.json: \(path): "))
        }
        expectDecodersAgree(`case`.text)
    }

    @Test func bothDecodersAgree() throws {
        // The fast path takes canonical files and hand-written ones in any layout or key order.
        expectDecodersAgree(document(), fastPath: true)
        expectDecodersAgree(TopologyFile.encodeText(.embeddedDefault), fastPath: true)
        expectDecodersAgree(TopologyFile.encodeText(Self.variety), fastPath: true)
        expectDecodersAgree(Self.alternativeText, fastPath: true)
        expectDecodersAgree(Self.defaultsText, fastPath: true)
        expectDecodersAgree("{\"format\":\"cssd-topology\",\"version\":1}", fastPath: true)
        expectDecodersAgree(
            " \t\r\n{ \"version\" : 1 , \"format\" : \"cssd-topology\" , \"chpids\" : [ ] }\n", fastPath: true)
        // Valid, but left to jansson: escapes, non-ASCII, reals.
        expectDecodersAgree(
            document(chpids: baseChpids.replacingOccurrences("\"0.40\"", "\"0\\u002e40\"")), fastPath: false)
        expectDecodersAgree(
            document().replacingOccurrences("\"version\": 1", "\"version\": 1, \"x\u{e9}\": 0"), fastPath: false)
        // Almost valid: the fast reader gives up, jansson names the problem.
        for text in [
            "{\"format\": \"cssd-topology\", \"version\": 1} x", "{\"format\": \"cssd-topology\", \"version\": 1.0}",
            "{\"format\": \"cssd-topology\", \"version\": 01}",
            "{\"format\": \"cssd-topology\", \"version\": 1, \"multiple-css\": truex}",
            "{\"format\": \"cssd-topology\", \"version\": 1,}", "{\"format\": \"cssd-topology\" \"version\": 1}",
            "{\"format\": \"cssd-topology\", \"version\": 1",
            "{\"format\": \"cssd-topology\", \"version\": 1, \"version\": 1}",
        ] {
            expectDecodersAgree(text, fastPath: false)
            #expect(decodeError(text) != nil, "\(text)")
        }
        // Guests: the fast path takes them too, and leaves what it is unsure of to jansson.
        expectDecodersAgree(Self.guestsText, fastPath: true)
        expectDecodersAgree(TopologyFile.encodeText(Self.withGuests), fastPath: true)
        expectDecodersAgree(guestsDocument("{\"name\": \"g\\u0031\"}"), fastPath: false)
        for text in [
            guestWith("{\"virtio\": {\"cu-model\": 1}, \"virtio\": {\"cu-model\": 2}}"),
            guestWith("{\"virtio\": {\"cu-model\": 1}, \"passthrough\": {\"host-subchannel\": \"0.0.0000\"}}"),
            guestWith("{\"virtio\": {\"devno\": null, \"cu-model\": 1}}"),
            guestWith("{\"virtio\": {\"devno\": \"0.0.0001\", \"cu-model\": 1}}"),
            guestWith("{\"virtio\": {\"subchannel\": \"fe.1.0000\", \"devno\": \"fe.0.0001\", \"cu-model\": 1}}"),
            guestWith("{\"passthrough\": {\"guest-chpids\": []}}"),
            guestsDocument("{\"name\": \"g1\", \"name\": \"g2\"}"), guestsDocument("{\"strategy\": \"crw\"}"),
            document(extra: "\n  \"guests\": [], \"guests\": [],"),
        ] {
            expectDecodersAgree(text, fastPath: false)
            #expect(decodeError(text) != nil, "\(text)")
        }
    }

    @Test func theBaseDocumentIsValid() throws {
        let topology = try TopologyFile.decode(document(), name: "test.json")
        #expect(topology.channelPaths.count == 3)
        #expect(topology.subchannels.count == 3)
    }

    @Test func unreadableFile() {
        #expect {
            _ = try TopologyFile.decode(contentsOf: "/nonexistent/topology.json")
        } throws: { error in
            (error as? TopologyFileError)?.description
                == "/nonexistent/topology.json: cannot read the file: No such file or directory"
        }
        #expect {
            _ = try TopologyFile.decode(contentsOf: "/tmp")
        } throws: { error in
            (error as? TopologyFileError)?.message.contains("directory") == true
        }
    }

    static let defaultsText = """
        {"format": "cssd-topology", "version": 1,
         "chpids": [{"chpid": "fe.00", "type": 50}, {"chpid": "0.40", "type": "1a"}],
         "subchannels": [{"subchannel": "fe.0.0000", "devno": 0, "cu-type": "3832/1", "chpids": ["fe.00"]}]}
        """

    @Test func defaults() throws {
        let topology = try TopologyFile.decode(Self.defaultsText)
        #expect(topology.multipleCSSEnabled == nil)
        // Channel subsystems default to those used, ascending.
        #expect(topology.channelSubsystems.map(\.cssid) == [0, 0xfe])
        let path = topology.channelPaths[0]
        #expect(path == Topology.ChannelPath(id: chp("fe.00"), type: 0x32))
        #expect(!path.shared && path.pchid == nil && path.vary == .online && path.configure == .configured)
        #expect(topology.channelPaths[1].type == 0x1a)
        let first = topology.subchannels[0]
        #expect(
            first
                == Topology.Subchannel(
                    id: sch("fe.0.0000"), devno: 0, devType: 0, devModel: 0, cuType: 0x3832, cuModel: 1,
                    chpids: [chp("fe.00")]))
        #expect(!first.enabled && first.isc == 0)
    }

    /// Issue 15: CHSC, message and EADM subchannels, with no device and no paths; they round
    /// trip, become the PMCW's st, and a devno or chpids on one is refused.
    @Test func subchannelTypes() throws {
        func document(_ chsc: String) -> String {
            """
            {"format": "cssd-topology", "version": 1, "chpids": [{"chpid": "0.40", "type": "0x1a"}],
             "subchannels": [{"subchannel": "0.0.0000", "devno": "0.0.1000", "cu-type": "3990/e9", "chpids": ["0.40"]},
                             {"subchannel": "0.0.ff00", \(chsc)},
                             {"subchannel": "0.1.0001", "type": "message"},
                             {"subchannel": "0.1.0100", "type": "eadm", "isc": 3}]}
            """
        }
        let topology = try TopologyFile.decode(document("\"type\": \"chsc\""))
        #expect(topology.subchannels.map(\.type) == [.io, .chsc, .message, .eadm])
        #expect(try TopologyFile.decode(TopologyFile.encodeText(topology)) == topology)
        let model = try Subsystem(topology: topology)
        #expect(model.subchannels.map(\.type) == [.io, .chsc, .message, .eadm])
        #expect(model.subchannels[3].schib.pmcw.chars & PMCW.Characteristics.subchannelType == 3 << 21)
        #expect(model.subchannels[1].schib.pmcw.pim == 0 && model.subchannels[1].deviceID == nil)
        // Pathless by design: they never count as subchannels that lost their last path (the
        // metrics' no-operational-path count would otherwise flag every real machine).
        #expect(model.subchannelsWithoutOperationalPath(cssid: 0) == 0)
        #expect(throws: TopologyFileError.self) {
            try TopologyFile.decode(document("\"type\": \"chsc\", \"devno\": 5"))
        }
        #expect(throws: TopologyFileError.self) {
            try TopologyFile.decode(document("\"type\": \"tape\""))
        }
    }

    /// Issue 15: `qdio` states the QDIO facility (PMCW QF); absent, it follows the control unit
    /// (1731). It round trips as written (and is written only when stated), needs a boolean, and
    /// is refused on a subchannel that is not an I/O subchannel.
    @Test func qdioKey() throws {
        func document(_ members: String...) -> String {
            let entries = members.enumerated().map { index, member in
                "{\"subchannel\": \"0.0.000\(index)\", \"devno\": \(index), \(member), \"chpids\": [\"0.60\"]}"
            }
            return """
                {"format": "cssd-topology", "version": 1, "chpids": [{"chpid": "0.60", "type": "0x11"}],
                 "subchannels": [\(entries.joined(separator: ",\n"))]}
                """
        }
        let text = document(
            "\"dev-type\": \"1732/01\", \"cu-type\": \"1731/01\"",
            "\"dev-type\": \"1732/05\", \"cu-type\": \"1731/05\", \"qdio\": false",
            "\"dev-type\": \"3390/0c\", \"cu-type\": \"3990/e9\", \"qdio\": true",
            "\"dev-type\": \"3390/0c\", \"cu-type\": \"3990/e9\"")
        let topology = try TopologyFile.decode(text)
        #expect(topology.subchannels.map(\.qdio) == [nil, false, true, nil])
        #expect(topology.subchannels.map(\.hasQDIO) == [true, false, true, false])
        let written = TopologyFile.encodeText(topology)
        #expect(written.contains("\"cu-type\": \"1731/05\", \"qdio\": false, \"chpids\""))
        #expect(written.contains("\"cu-type\": \"3990/e9\", \"qdio\": true, \"chpids\""))
        #expect(written.ranges(of: "qdio").count == 2)
        #expect(try TopologyFile.decode(written) == topology)
        expectDecodersAgree(text, fastPath: false)
        expectDecodersAgree(written, fastPath: false)
        let model = try Subsystem(topology: topology)
        #expect(model.subchannels.map(\.schib.pmcw.hasQDIOFacility) == [true, false, true, false])

        #expect(
            decodeError(document("\"cu-type\": \"1731/01\", \"qdio\": \"yes\""))?.description
                == "test.json: subchannels[0].qdio: expected true or false, found the string \"yes\"")
        let chsc = """
            {"format": "cssd-topology", "version": 1, "subchannels": [{"subchannel": "0.0.ff00", "type": "chsc", "qdio": true}]}
            """
        #expect(decodeError(chsc)?.description.contains("subchannels[0]: subchannel 0.0.ff00 of type chsc") == true)
        #expect(
            try TopologyFile.decode(chsc.replacing("true", with: "false")).subchannels[0].hasQDIO == false)
    }

    @Test func emptyTopology() throws {
        let topology = try TopologyFile.decode("{\"format\": \"cssd-topology\", \"version\": 1}")
        #expect(topology == Topology(channelSubsystems: [], channelPaths: [], subchannels: []))
    }

    static let alternativeText = """
        {"version": 1, "format": "cssd-topology", "multiple-css": false,
         "channel-subsystems": [{"cssid": "0xFE"}, {"cssid": 0}],
         "chpids": [{"configure": "not-recognized", "vary": "offline", "pchid": null, "type": "0X1A", "chpid": "FE.4A"},
                    {"chpid": "0.4a", "type": 17, "pchid": 448, "configure": "reserved"}],
         "subchannels": [{"chpids": ["fe.4a"], "cu-type": "3990/E9", "dev-type": "3390/c", "devno": null,
                          "subchannel": "fe.1.42", "enabled": true, "isc": 7}]}
        """

    @Test func alternativeNotations() throws {
        let topology = try TopologyFile.decode(Self.alternativeText)
        #expect(topology.multipleCSSEnabled == false)
        #expect(topology.channelSubsystems.map(\.cssid) == [0xfe, 0])
        #expect(
            topology.channelPaths == [
                .init(id: chp("fe.4a"), type: 0x1a, vary: .offline, configure: .notRecognized),
                .init(id: chp("0.4a"), type: 0x11, pchid: 0x1c0, configure: .reserved),
            ])
        #expect(
            topology.subchannels == [
                .init(
                    id: sch("fe.1.0042"), devno: nil, devType: 0x3390, devModel: 0x0c, cuType: 0x3990, cuModel: 0xe9,
                    chpids: [chp("fe.4a")], enabled: true, isc: 7)
            ])
    }

    // MARK: Guests

    static let guestsText = """
        {"format": "cssd-topology", "version": 1,
         "guests": [
           {"name": "g1", "strategy": "per-device", "crw-capacity": 8, "devices": [
             {"virtio": {"subchannel": "FE.0.10", "devno": "fe.0.0100", "cu-model": "0x02"}},
             {"virtio": {"cu-model": 1}},
             {"virtio": {"devno": 300, "cu-model": "3"}},
             {"virtio": {"devno": "fe.0.0200", "cu-model": 1}},
             {"passthrough": {"host-subchannel": "0.0.0003"}},
             {"passthrough": {"guest-chpids": ["0.40", "0.41"], "guest-subchannel": "0.1.7", "host-subchannel": "0.0.4"}}
           ]},
           {"devices": [], "name": "g2"},
           {"name": "g3"}
         ]}
        """

    @Test func guestsDecode() throws {
        let topology = try TopologyFile.decode(Self.guestsText)
        #expect(
            topology.guests == [
                .init(
                    name: "g1", strategy: "per-device", crwCapacity: 8,
                    devices: [
                        .virtio(subchannel: sch("fe.0.0010"), devno: 0x100, cuModel: 2),
                        .virtio(subchannel: nil, devno: nil, cuModel: 1),
                        .virtio(subchannel: nil, devno: 300, cuModel: 3),
                        .virtio(subchannel: nil, devno: 0x200, cuModel: 1),
                        .passthrough(host: sch("0.0.0003"), guestSubchannel: nil, guestChpids: nil),
                        .passthrough(
                            host: sch("0.0.0004"), guestSubchannel: sch("0.1.0007"),
                            guestChpids: [chp("0.40"), chp("0.41")]),
                    ]),
                .init(name: "g2"),
                .init(name: "g3", strategy: nil, crwCapacity: nil, devices: []),
            ])
        // Without "guests", none.
        #expect(try TopologyFile.decode(document()).guests.isEmpty)
        #expect(try TopologyFile.decode(document(extra: "\n  \"guests\": [],")).guests.isEmpty)
    }

    /// Guests, with values that only building them would refuse (kept as they are).
    static let withGuests: Topology = {
        var topology = variety
        topology.guests = [
            .init(
                name: "guest-1", strategy: "lazy", crwCapacity: 2,
                devices: [
                    .virtio(subchannel: sch("fe.3.ffff"), devno: 0xffff, cuModel: 0xff),
                    .virtio(subchannel: nil, devno: 0, cuModel: 0),
                    .passthrough(
                        host: sch("12.3.ffff"), guestSubchannel: sch("0.0.0000"),
                        guestChpids: [chp("0.00"), chp("0.01")]),
                    .passthrough(host: sch("0.1.0000"), guestSubchannel: nil, guestChpids: []),
                ]),
            .init(
                name: "no such strategy, any name", strategy: "fastest", crwCapacity: -1,
                devices: [
                    .virtio(subchannel: nil, devno: 0x10000, cuModel: 0x100),
                    .virtio(subchannel: sch("fe.0.0001"), devno: -1, cuModel: -5),
                ]),
            .init(name: ""),
        ]
        return topology
    }()

    @Test func guestsLayout() {
        let topology = Topology(
            channelSubsystems: [], channelPaths: [], subchannels: [],
            guests: [
                .init(
                    name: "g1", strategy: "crw", crwCapacity: 64,
                    devices: [
                        .virtio(subchannel: sch("fe.0.0000"), devno: nil, cuModel: 1),
                        .virtio(subchannel: nil, devno: 5, cuModel: 2),
                        .virtio(subchannel: sch("fe.1.0002"), devno: 0x0102, cuModel: 3),
                        .passthrough(host: sch("0.0.0003"), guestSubchannel: nil, guestChpids: nil),
                        .passthrough(
                            host: sch("0.0.0004"), guestSubchannel: sch("fe.1.0000"), guestChpids: [chp("fe.40")]),
                    ]),
                .init(name: "g2"),
            ])
        #expect(
            TopologyFile.encodeText(topology) == """
                {
                  "format": "cssd-topology",
                  "version": 1,
                  "channel-subsystems": [],
                  "chpids": [],
                  "subchannels": [],
                  "guests": [
                    {"name": "g1", "strategy": "crw", "crw-capacity": 64, "devices": [
                      {"virtio": {"subchannel": "fe.0.0000", "cu-model": "0x01"}},
                      {"virtio": {"devno": "fe.0.0005", "cu-model": "0x02"}},
                      {"virtio": {"subchannel": "fe.1.0002", "devno": "fe.1.0102", "cu-model": "0x03"}},
                      {"passthrough": {"host-subchannel": "0.0.0003"}},
                      {"passthrough": {"host-subchannel": "0.0.0004", "guest-subchannel": "fe.1.0000", "guest-chpids": ["fe.40"]}}
                    ]},
                    {"name": "g2", "devices": []}
                  ]
                }

                """)
    }

    /// Guest names and strategies are free strings in the file: written escaped, read back
    /// (by jansson) as they were.
    @Test func guestStringsAreEscaped() throws {
        let topology = Topology(
            channelSubsystems: [], channelPaths: [], subchannels: [],
            guests: [.init(name: "a\"b\\c\n\u{1}\u{e9}\u{20ac}", strategy: "\t")])
        let bytes = TopologyFile.encode(topology)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains(#"{"name": "a\"b\\c\u000a\u0001\#u{e9}\#u{20ac}", "strategy": "\u0009", "devices": []}"#))
        let decoded = try TopologyFile.decode(bytes, name: "escaped")
        #expect(decoded == topology)
        #expect(TopologyFile.encode(decoded) == bytes)
        expectDecodersAgree(text, fastPath: false)
    }

    // MARK: Round trips

    static let variety = Topology(
        channelSubsystems: [.init(cssid: 0x12), .init(cssid: 0)],
        channelPaths: [
            .init(id: chp("12.ff"), type: 0xff, shared: true, pchid: 0xffff, vary: .offline, configure: .standby),
            .init(id: chp("12.00"), type: 0, pchid: 0),
            .init(id: chp("0.4a"), type: 0x1a, configure: .notRecognized),
            .init(id: chp("0.4b"), type: 0x1b, configure: .reserved),
        ],
        subchannels: [
            .init(
                id: sch("12.3.ffff"), devno: 0xffff, devType: 0xffff, devModel: 0xff, cuType: 0, cuModel: 0,
                chpids: [chp("12.ff"), chp("12.00")], enabled: true, isc: 7),
            .init(
                id: sch("0.0.0000"), devno: nil, devType: 0, devModel: 0, cuType: 0x3832, cuModel: 3,
                chpids: [chp("0.4b"), chp("0.4a")]),
            .init(
                id: sch("0.1.0000"), devno: 0, devType: 0x3390, devModel: 0xc, cuType: 0x3990, cuModel: 0xe9,
                chpids: [chp("0.4a")], isc: 1),
        ],
        multipleCSSEnabled: false)

    @Test(
        "decode(encode(t)) == t",
        arguments: [
            Sample("embedded default", .embeddedDefault),
            Sample("synthetic", try! Topology.synthetic(subchannels: 70_000, chpids: 7, paths: 3, cssid: 5)),
            Sample(
                "synthetic, virtual css", try! Topology.synthetic(subchannels: 10, chpids: 256, paths: 8, cssid: 0xfe)),
            Sample("variety", variety),
            Sample("guests", withGuests),
            Sample(
                "multiple-css on",
                Topology(
                    channelSubsystems: [.init(cssid: 0)], channelPaths: [], subchannels: [], multipleCSSEnabled: true)),
            Sample("empty", Topology(channelSubsystems: [], channelPaths: [], subchannels: [])),
        ])
    func roundTrip(_ sample: Sample) throws {
        let (name, topology) = (sample.name, sample.topology)
        try topology.validate()
        let bytes = TopologyFile.encode(topology)
        let decoded = try TopologyFile.decode(bytes, name: name)
        #expect(decoded == topology)
        #expect(TopologyFile.encode(decoded) == bytes)
        // Whatever the layout, it is JSON that jansson reads back too.
        #expect(QMPWireParses(bytes))
        // Both decoders read it, the fast one included.
        let text = String(decoding: bytes, as: UTF8.self)
        expectDecodersAgree(text, fastPath: true)
    }

    @Test func encodedLayout() throws {
        let topology = Topology(
            channelSubsystems: [.init(cssid: 0), .init(cssid: 0xfe)],
            channelPaths: [
                .init(id: chp("0.4a"), type: 0x1a, shared: true, pchid: 0x1c0),
                .init(id: chp("fe.00"), type: 0x32, configure: .standby),
            ],
            subchannels: [
                .init(
                    id: sch("0.0.0000"), devno: 0x4711, devType: 0x3390, devModel: 0xc, cuType: 0x3990, cuModel: 0xe9,
                    chpids: [chp("0.4a")], enabled: true, isc: 3),
                .init(
                    id: sch("fe.0.0000"), devno: nil, devType: 0, devModel: 0, cuType: 0x3832, cuModel: 1,
                    chpids: [chp("fe.00")]),
            ],
            multipleCSSEnabled: true)
        #expect(
            TopologyFile.encodeText(topology) == """
                {
                  "format": "cssd-topology",
                  "version": 1,
                  "multiple-css": true,
                  "channel-subsystems": [
                    {"cssid": "0"},
                    {"cssid": "fe"}
                  ],
                  "chpids": [
                    {"chpid": "0.4a", "type": "0x1a", "shared": true, "pchid": "0x01c0", "vary": "online", "configure": "configured"},
                    {"chpid": "fe.00", "type": "0x32", "shared": false, "vary": "online", "configure": "standby"}
                  ],
                  "subchannels": [
                    {"subchannel": "0.0.0000", "devno": "0.0.4711", "dev-type": "3390/0c", "cu-type": "3990/e9", "enabled": true, "isc": 3, "chpids": ["0.4a"]},
                    {"subchannel": "fe.0.0000", "devno": null, "dev-type": "0000/00", "cu-type": "3832/01", "chpids": ["fe.00"]}
                  ]
                }

                """)
        #expect(
            TopologyFile.encodeText(Topology(channelSubsystems: [], channelPaths: [], subchannels: [])) == """
                {
                  "format": "cssd-topology",
                  "version": 1,
                  "channel-subsystems": [],
                  "chpids": [],
                  "subchannels": []
                }

                """)
    }

    /// An invalid topology encodes so that decoding names the problem rather than the notation.
    @Test func invalidTopologyEncodesItsError() {
        var topology = Self.variety
        topology.subchannels[2].devno = 0x10000
        topology.channelPaths[1].type = 0x100
        let error = decodeError(TopologyFile.encodeText(topology))
        #expect(error?.description == "test.json: chpids[1].type: type 256 is out of range (0..0xff)")
    }

    @Test func validationFieldsMapToFilePaths() {
        let cases = [
            ("channelPaths[2].pchid", "chpids[2].pchid"),
            ("channelSubsystems[1]", "channel-subsystems[1]"),
            ("subchannels[3].devType", "subchannels[3].dev-type"),
            ("subchannels[3].devModel", "subchannels[3].dev-type"),
            ("subchannels[3].cuModel", "subchannels[3].cu-type"),
            ("subchannels[3].chpids[1]", "subchannels[3].chpids[1]"),
            ("guests[0].crwCapacity", "guests[0].crw-capacity"),
            ("guests[0].strategy", "guests[0].strategy"),
            ("guests[2]", "guests[2]"),
            ("guests[1].devices[2]", "guests[1].devices[2]"),
            ("guests[1].devices[2].virtio.cuModel", "guests[1].devices[2].virtio.cu-model"),
            ("guests[1].devices[2].virtio.devno", "guests[1].devices[2].virtio.devno"),
        ]
        for (model, file) in cases {
            let error = TopologyFileError(file: "f", validation: TopologyError(field: model, reason: "r"))
            #expect(error.field == file)
        }
    }

    /// The example in API/topology.md is a valid file.
    @Test func documentedExampleDecodes() throws {
        let docs = Repository.root + "/API/topology.md"
        let text = String(decoding: try readFile(docs), as: UTF8.self)
        // The first ```json block that is a whole file.
        let blocks = text.split(separator: "```json\n").dropFirst().compactMap { $0.split(separator: "```").first }
        let example = try #require(blocks.first { $0.contains("\"format\": \"cssd-topology\"") })
        let topology = try TopologyFile.decode(String(example), name: "API/topology.md")
        #expect(!topology.subchannels.isEmpty)
        // Its guests (VFIOCCWTests builds the same ones on the same host).
        #expect(
            topology.guests == [
                .init(
                    name: "guest1", strategy: "crw", crwCapacity: 64,
                    devices: [
                        .virtio(subchannel: sch("fe.0.0000"), devno: nil, cuModel: 1),
                        .virtio(subchannel: sch("fe.0.0001"), devno: 0x0101, cuModel: 2),
                        .passthrough(host: sch("0.0.0001"), guestSubchannel: nil, guestChpids: nil),
                    ]),
                .init(
                    name: "guest2", strategy: "per-device",
                    devices: [
                        .virtio(subchannel: nil, devno: nil, cuModel: 1),
                        .passthrough(
                            host: sch("0.0.0002"), guestSubchannel: sch("0.0.0000"), guestChpids: [chp("0.00")]),
                    ]),
            ])
        // The OSA device states its QDIO facility; the DASDs derive theirs (none) from the CU.
        #expect(topology.subchannels.map(\.qdio) == [true, nil, nil, nil])
        #expect(topology.subchannels.map(\.hasQDIO) == [true, false, false, false])
        expectDecodersAgree(String(example), fastPath: false)
    }

    // MARK: Scale

    /// The benchmark topology: 262,144 subchannels, 32 chpids, 8 paths each. The budget is
    /// for a release build (start-up under 2 s in all); a debug build gets a generous bound.
    @Test func decodesTheLargestSyntheticTopologyQuickly() throws {
        let topology = try Topology.synthetic(subchannels: 262_144, chpids: 32, paths: 8)
        let bytes = TopologyFile.encode(topology)
        let clock = ContinuousClock()
        var decoded: Topology?
        let elapsed = try clock.measure { decoded = try TopologyFile.decode(bytes, name: "big.json") }
        #if DEBUG
        let bound = Duration.seconds(60)
        #else
        let bound = Duration.seconds(1)
        #endif
        print("topology file: 262144 subchannels, \(bytes.count) bytes, decoded in \(elapsed)")
        #expect(elapsed < bound)
        #expect(decoded == topology)
    }
}

/// A named topology (named in the test log, rather than printed whole).
struct Sample: CustomTestStringConvertible, Sendable {
    let name: String
    let topology: Topology
    init(_ name: String, _ topology: Topology) { (self.name, self.topology) = (name, topology) }
    var testDescription: String { name }
}

private func QMPWireParses(_ bytes: [UInt8]) -> Bool {
    JSON.parse(String(decoding: bytes, as: UTF8.self))?.isObject == true
}
