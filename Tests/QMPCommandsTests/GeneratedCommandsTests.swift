// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import JSONValues
import PathEvents
import Testing
import VFIOCCW

@testable import QMPCommands
@testable import QMPSchema
@testable import QMPWire

/// What api-embed generates from API/*.json into QMPCommands: typed arguments, their decoding
/// from the validated request, the schema's enums, and the registry.
@Suite("Generated command interface")
struct GeneratedCommandsTests {
    let schema = Schema.embedded()

    /// Validates `text` as the arguments of `command` (filling defaults), as the dispatcher does.
    func validated(_ command: String, _ text: String) throws -> JSON {
        let object = try #require(JSON.parse(text))
        try ArgumentValidator(schema: schema).validate(
            arguments: object, members: schema.command(named: command)!.arguments)
        return object
    }

    func decodeError(_ body: () throws(QMPError) -> Void) -> QMPError? {
        do throws(QMPError) {
            try body()
            return nil
        } catch {
            return error
        }
    }

    @Test("ids, enums and optional members decode to their Swift types")
    func idsAndEnums() throws {
        let vary = try VaryPathArguments(
            decoding: validated("vary-path", #"{"chpid": "0.4A", "state": "offline", "subchannel": "0.1.00ff"}"#))
        #expect(vary.chpid == ChannelPathID(cssid: 0, chpid: 0x4a))
        #expect(vary.state == .offline)
        #expect(vary.subchannel == SubchannelID(cssid: 0, ssid: 1, schno: 0xff))
        let perPath = try VaryPathArguments(decoding: validated("vary-path", #"{"chpid": "fe.00", "state": "online"}"#))
        #expect(perPath.subchannel == nil)
        #expect(perPath.state == .online)

        let configure = try ConfigureChpidArguments(
            decoding: validated("configure-chpid", #"{"chpid": "0.40", "state": "standby"}"#))
        #expect(configure.state == .standby)
        let fault = try InjectPathFaultArguments(
            decoding: validated("inject-path-fault", #"{"chpid": "0.40", "fault": "permanent-error"}"#))
        #expect(fault.fault == .permanentError)

        let query = try QuerySubchannelsArguments(
            decoding: validated(
                "query-subchannels", #"{"devno": "0.0.4711", "start": "0.0.0010", "limit": 5, "cssid": 254}"#))
        #expect(query.devno == DeviceID(cssid: 0, ssid: 0, devno: 0x4711))
        #expect(query.start == SubchannelID(cssid: 0, ssid: 0, schno: 0x10))
        #expect(query.limit == 5)
        #expect(query.cssid == UInt8(254))
        #expect(query.ssid == nil && query.chpid == nil)
    }

    @Test("integers of their schema width, booleans")
    func scalars() throws {
        let modify = try ModifySubchannelArguments(
            decoding: validated(
                "modify-subchannel",
                #"{"subchannel": "0.0.0042", "intparm": 4294967295, "isc": 7, "enabled": true, "lpm": 255, "flags": 65535}"#
            ))
        #expect(modify.intparm == UInt32.max)
        #expect(modify.isc == UInt8(7))
        #expect(modify.enabled == true)
        #expect(modify.lpm == UInt8.max)
        #expect(modify.flags == UInt16.max)
        let bare = try ModifySubchannelArguments(
            decoding: validated("modify-subchannel", #"{"subchannel": "0.0.0042"}"#))
        #expect(bare.intparm == nil && bare.isc == nil && bare.enabled == nil && bare.lpm == nil && bare.flags == nil)
        let unsubscribe = try UnsubscribePathEventsArguments(
            decoding: validated("unsubscribe-path-events", #"{"subscription": 12}"#))
        #expect(unsubscribe.subscription == 12)
    }

    @Test("arrays of ids, of enums and of guest names")
    func arrays() throws {
        let attach = try AttachPassthroughArguments(
            decoding: validated(
                "attach-passthrough",
                #"{"guest": "g1", "host-subchannel": "0.0.0001", "guest-chpids": ["fe.40", "0.41"]}"#))
        #expect(attach.guest == "g1")
        #expect(attach.hostSubchannel == SubchannelID(cssid: 0, ssid: 0, schno: 1))
        #expect(attach.guestSubchannel == nil)
        #expect(attach.guestChpids == [ChannelPathID(cssid: 0xfe, chpid: 0x40), ChannelPathID(cssid: 0, chpid: 0x41)])

        let subscribe = try SubscribePathEventsArguments(
            decoding: validated(
                "subscribe-path-events",
                #"{"granularity": "both", "chpids": ["0.40"], "subchannels": [], "changes": ["reset", "permanent-error"], "guests": ["a", "b"], "queue-limit": 9}"#
            ))
        #expect(subscribe.granularity == .both)
        #expect(subscribe.chpids == [ChannelPathID(cssid: 0, chpid: 0x40)])
        #expect(subscribe.subchannels == [])
        #expect(subscribe.changes == [.reset, .permanentError])
        #expect(subscribe.guests == ["a", "b"])
        #expect(subscribe.queueLimit == 9)

        let capabilities = try QMPCapabilitiesArguments(
            decoding: validated("qmp_capabilities", #"{"enable": ["oob"]}"#))
        #expect(capabilities.enable == [.oob])
    }

    @Test("defaults come from the schema: filled by the validator, and by the decoder alone")
    func defaults() throws {
        let member = try #require(
            schema.command(named: "subscribe-path-events")?.arguments.first { $0.name == "granularity" })
        #expect(member.defaultText == #""chpid""#)
        let filled = try validated("subscribe-path-events", "{}")
        #expect(filled["granularity"]?.stringValue == "chpid")
        #expect(try SubscribePathEventsArguments(decoding: filled).granularity == .chpid)
        #expect(try SubscribePathEventsArguments(decoding: JSON.emptyObject()).granularity == .chpid)
        let none = try SubscribePathEventsArguments(decoding: filled)
        #expect(none.chpids == nil && none.subchannels == nil && none.changes == nil && none.guests == nil)
        #expect(none.queueLimit == nil)  // the server's --event-queue-limit, not a schema default
    }

    @Test("a malformed id is a GenericError with the text it always had, naming the member")
    func idErrors() throws {
        let cases: [(command: String, arguments: String, desc: String)] = [
            (
                "vary-path", #"{"chpid": "0.4g", "state": "online"}"#,
                "chpid '0.4g': expected cssid.chpid in hex, like 0.4a"
            ),
            (
                "vary-path", #"{"chpid": "0.40", "state": "online", "subchannel": "zz"}"#,
                "subchannel 'zz': expected cssid.ssid.schno in hex, like 0.0.0042"
            ),
            (
                "store-subchannel", #"{"subchannel": "0.4.0000"}"#,
                "subchannel '0.4.0000': ssid 4 is out of range (0..3)"
            ),
            ("query-subchannels", #"{"start": "x"}"#, "start 'x': expected cssid.ssid.schno in hex, like 0.0.0042"),
            (
                "query-subchannels", #"{"devno": "0.0.12345"}"#,
                "devno '0.0.12345': expected cssid.ssid.devno in hex, like 0.0.0042"
            ),
            ("query-subchannels", #"{"chpid": "0.zz"}"#, "chpid '0.zz': expected cssid.chpid in hex, like 0.4a"),
            (
                "subscribe-path-events", #"{"chpids": ["0.40", "0.4g"]}"#,
                "chpids '0.4g': expected cssid.chpid in hex, like 0.4a"
            ),
            (
                "attach-passthrough",
                #"{"guest": "g", "host-subchannel": "0.0.0001", "guest-subchannel": "fe.4.0000"}"#,
                "guest-subchannel 'fe.4.0000': ssid 4 is out of range (0..3)"
            ),
            (
                "attach-passthrough", #"{"guest": "g", "host-subchannel": "0.0.0001", "guest-chpids": ["1.2.3"]}"#,
                "guest-chpids '1.2.3': expected cssid.chpid in hex, like 0.4a"
            ),
        ]
        for item in cases {
            let object = try validated(item.command, item.arguments)
            let error: QMPError?
            switch item.command {
            case "vary-path": error = decodeError { () throws(QMPError) in _ = try VaryPathArguments(decoding: object) }
            case "store-subchannel":
                error = decodeError { () throws(QMPError) in _ = try StoreSubchannelArguments(decoding: object) }
            case "query-subchannels":
                error = decodeError { () throws(QMPError) in _ = try QuerySubchannelsArguments(decoding: object) }
            case "subscribe-path-events":
                error = decodeError { () throws(QMPError) in _ = try SubscribePathEventsArguments(decoding: object) }
            default: error = decodeError { () throws(QMPError) in _ = try AttachPassthroughArguments(decoding: object) }
            }
            #expect(error?.errorClass == .genericError, "\(item.arguments)")
            #expect(error?.desc == item.desc, "\(item.arguments)")
        }
    }

    @Test("every value of every schema enum decodes to a Swift case of the same spelling")
    func enumValues() {
        for value in schema.enums.values {
            for item in value.values {
                #expect(SchemaEnums.decodes(value.name, item.name), "\(value.name).\(item.name)")
            }
            #expect(!SchemaEnums.decodes(value.name, "no-such-value"))
        }
        #expect(SchemaEnums.channelPathVary("online") == VaryState.online)
        #expect(SchemaEnums.channelPathConfigure("not-recognized")?.description == "not-recognized")
        #expect(SchemaEnums.channelPathConfigureRequest("reserved") == nil)  // not a request
        for fault in PathFault.allCases { #expect(SchemaEnums.channelPathFault(fault.rawValue) == fault) }
        for change in PathEventChange.allCases { #expect(SchemaEnums.pathEventChange(change.rawValue) == change) }
        for granularity in PathEventGranularity.allCases {
            #expect(SchemaEnums.pathEventGranularity(granularity.rawValue) == granularity)
        }
        for strategy in PathEventStrategy.allCases {
            #expect(SchemaEnums.pathEventStrategy(strategy.rawValue) == strategy)
        }
        for cause in [ShutdownCause.hostQMPQuit, .hostSignal] {
            #expect(SchemaEnums.shutdownCause(cause.rawValue) == cause)
        }
        #expect(SchemaMetaType.allCases.map(\.rawValue) == schema.enums["SchemaMetaType"]!.values.map(\.name))
    }

    @Test("a reply writes each enum case as the schema's text, the one its decoder reads back")
    func enumTexts() {
        for state in VaryState.allCases {
            #expect(SchemaEnums.channelPathVary(SchemaEnums.channelPathVaryText(state)) == state)
        }
        for state in ConfigureState.allCases {
            #expect(SchemaEnums.channelPathConfigure(SchemaEnums.channelPathConfigureText(state)) == state)
        }
        #expect(SchemaEnums.channelPathConfigureText(.notRecognized) == "not-recognized")
        for change in PathEventChange.allCases { #expect(SchemaEnums.pathEventChangeText(change) == change.rawValue) }
        for granularity in PathEventGranularity.allCases {
            #expect(SchemaEnums.pathEventGranularityText(granularity) == granularity.rawValue)
        }
        for strategy in PathEventStrategy.allCases {
            #expect(SchemaEnums.pathEventStrategyText(strategy) == strategy.rawValue)
        }
        for state in NotifyBrokerState.allCases { #expect(SchemaEnums.notifyBrokerStateText(state) == state.rawValue) }
    }

    @Test("a typed reply is its object in schema member order, absent optional members left out")
    func typedReplyOrder() {
        let path = ChannelPathInfoReply(
            chpid: "0.40", type: 26, vary: .offline, configure: .notRecognized, shared: true, pchid: 0x1a0,
            chidExternal: true, subchannels: 42
        ).json
        #expect(
            path.members.map(\.key) == [
                "chpid", "type", "vary", "configure", "shared", "pchid", "chid-external", "subchannels",
            ])
        #expect(path["vary"]?.stringValue == "offline" && path["configure"]?.stringValue == "not-recognized")
        #expect(path["pchid"]?.intValue == 0x1a0 && path["subchannels"]?.intValue == 42)
        let all = ChannelPathInfoReply(
            chpid: "0.40", type: 26, vary: .online, configure: .configured, configureKnown: false, shared: false,
            cmg: 2, pchid: 1, chidExternal: false, subchannels: 1,
            dasd: DASDChannelPathInfoReply(
                devices: 1, inUse: 1, nonPreferred: 0, miscabled: 0, cuirQuiesced: 0, noHpf: 0, ifccDisabled: 0,
                unknown: 0)
        ).json
        #expect(all.members.map(\.key) == schema.structs["ChannelPathInfo"]!.members.map(\.name))
    }

    @Test("every schema command has exactly one generated handler, and nothing else")
    func registry() {
        let handlers = CommandRegistry.standard().handlers
        #expect(handlers.count == schema.commands.count)
        #expect(Set(handlers.keys) == Set(schema.commands.map(\.name)))
    }

    @Test("an alias is its built-in to the validator and to introspection")
    func aliases() throws {
        #expect(schema.aliases["ChannelPathID"]?.base == .str)
        let object = try #require(JSON.parse(#"{"chpid": 40, "state": "online"}"#))
        #expect(throws: ValidationError(desc: "Invalid parameter type for 'chpid', expected: string")) {
            try ArgumentValidator(schema: schema).validate(
                arguments: object, members: schema.command(named: "vary-path")!.arguments)
        }
        let info = schema.introspect(commands: schema.commands, events: schema.events).serialized()
        for alias in schema.aliases.keys { #expect(!info.contains(alias)) }

        let bad = #"{"module": "t", "definitions": [{"alias": "Thing", "type": "Other"}]}"#
        #expect(throws: SchemaError.self) { try Schema(documents: [("t.json", bad)]) }
        do {
            _ = try Schema(documents: [("t.json", bad)])
        } catch {
            #expect(error.description == #"t.json: definition #1 (Thing): an alias needs a built-in "type""#)
        }
    }
}
