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

let refusals: [Refusal] = [
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
        name: "online as a string", text: document(subchannels: subchannel(extra: ", \"online\": \"no\"")),
        location: .field("subchannels[0].online"), message: "expected true or false, found the string \"no\""),
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
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        replacing(target, with: replacement)
    }
}
