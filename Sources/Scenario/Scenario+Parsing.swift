// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel

extension Scenario {
    /// At most this many loop iterations per loop.
    package static let maximumLoopCount = 1_000_000
    /// At most this many steps once loops are unrolled: the player holds the whole timeline.
    package static let maximumSteps = 1_000_000
    /// Offsets, periods and delays stay below this (about 34 years in ms), so sums never overflow.
    package static let maximumOffset = 1 << 40

    /// Parses and checks a scenario file (API/scenarios.md), unrolling loops and resolving
    /// `after` into offsets.
    /// - Throws: `ScenarioError` at the line and column of the first problem: not JSON, not a
    ///   scenario, an unknown member or action, a bad id, an unknown group, a step whose `at`
    ///   is before the previous one's, an `after` naming no earlier step, a loop without an end.
    package static func parse(_ text: String) throws(ScenarioError) -> Scenario {
        let document = try ScenarioJSON.parse(text)
        guard case let .object(members) = document.value,
            let nameMember = members.first(where: { $0.key == "scenario" })
        else {
            throw ScenarioError(
                document.position, "not a scenario: expected an object with a \"scenario\" name and \"steps\"")
        }
        var parser = Parser()
        try parser.checkKeys(
            members, allowed: ["scenario", "description", "clock", "groups", "steps"], at: "a scenario")
        let name = try parser.name(nameMember.value, what: "the scenario's name")
        var description: String?
        var clock = Clock.model
        var stepsNode: ScenarioJSON?
        for member in members {
            switch member.key {
            case "description": description = try parser.string(member.value, what: "description")
            case "clock":
                let text = try parser.string(member.value, what: "clock")
                guard let value = Clock(rawValue: text) else {
                    throw ScenarioError(member.value.position, "clock '\(text)': expected \"model\" or \"wall\"")
                }
                clock = value
            case "groups": try parser.groups(member.value)
            case "steps": stepsNode = member.value
            default: break
            }
        }
        guard let stepsNode else { throw ScenarioError(document.position, "not a scenario: \"steps\" is missing") }
        let list = try parser.array(stepsNode, what: "steps")
        var steps: [ScenarioStep] = []
        var names: [String: Int] = [:]
        try parser.stepList(list, base: 0, prefix: "", names: &names, into: &steps)
        // Stable: equal offsets keep file order, so model time replays the same order every time.
        let sorted = steps.enumerated().sorted { ($0.element.offset, $0.offset) < ($1.element.offset, $1.offset) }
        return Scenario(
            name: name, description: description, clock: clock, groupNames: parser.groupNames,
            groupMembers: parser.groupMembers, steps: sorted.map(\.element))
    }
}

/// The walk over a scenario document; remembers groups and the offsets of named steps.
private struct Parser {
    var groupNames: [String] = []
    var groupMembers: [String: [ChannelPathID]] = [:]
    var groupPositions: [String: [ScenarioPosition]] = [:]
    var total = 0

    func checkKeys(_ members: [ScenarioJSON.Member], allowed: [String], at what: String) throws(ScenarioError) {
        for member in members where !allowed.contains(member.key) {
            throw ScenarioError(
                member.keyPosition,
                "unknown member '\(member.key)' in \(what); the members here are: \(allowed.joined(separator: ", "))")
        }
    }

    func string(_ node: ScenarioJSON, what: String) throws(ScenarioError) -> String {
        guard case let .string(text) = node.value else {
            throw ScenarioError(node.position, "\(what): expected a string, not \(node.kindName)")
        }
        return text
    }

    /// A name: 1-64 characters of letters, digits, `-`, `_`, `.`, so that a step's full name
    /// (`loop#3/step`) is unambiguous.
    func name(_ node: ScenarioJSON, what: String) throws(ScenarioError) -> String {
        let text = try string(node, what: what)
        let allowed = text.unicodeScalars.allSatisfy {
            ($0.properties.isAlphabetic && $0.isASCII) || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0)
        }
        guard (1...64).contains(text.count), allowed else {
            throw ScenarioError(
                node.position, "\(what) '\(text)': expected 1 to 64 ASCII letters, digits, '-', '_' or '.'")
        }
        return text
    }

    func array(_ node: ScenarioJSON, what: String) throws(ScenarioError) -> [ScenarioJSON] {
        guard case let .array(elements) = node.value else {
            throw ScenarioError(node.position, "\(what): expected an array, not \(node.kindName)")
        }
        return elements
    }

    func object(_ node: ScenarioJSON, what: String) throws(ScenarioError) -> [ScenarioJSON.Member] {
        guard case let .object(members) = node.value else {
            throw ScenarioError(node.position, "\(what): expected an object, not \(node.kindName)")
        }
        return members
    }

    func integer(_ node: ScenarioJSON, what: String, in range: ClosedRange<Int>) throws(ScenarioError) -> Int {
        guard case let .integer(value) = node.value else {
            throw ScenarioError(node.position, "\(what): expected an integer, not \(node.kindName)")
        }
        guard range.contains(value) else {
            throw ScenarioError(
                node.position, "\(what) \(value) is out of range (\(range.lowerBound)...\(range.upperBound))")
        }
        return value
    }

    func bool(_ node: ScenarioJSON, what: String) throws(ScenarioError) -> Bool {
        guard case let .bool(value) = node.value else {
            throw ScenarioError(node.position, "\(what): expected true or false, not \(node.kindName)")
        }
        return value
    }

    func chpid(_ node: ScenarioJSON, what: String = "chpid") throws(ScenarioError) -> ChannelPathID {
        let text = try string(node, what: what)
        do { return try ChannelPathID(parsing: text, argument: what) } catch {
            throw ScenarioError(node.position, error.description)
        }
    }

    func device(_ node: ScenarioJSON, what: String = "device") throws(ScenarioError) -> DeviceID {
        let text = try string(node, what: what)
        do { return try DeviceID(parsing: text, argument: what) } catch {
            throw ScenarioError(node.position, error.description)
        }
    }

    func subchannel(_ node: ScenarioJSON, what: String = "subchannel") throws(ScenarioError) -> SubchannelID {
        let text = try string(node, what: what)
        do { return try SubchannelID(parsing: text, argument: what) } catch {
            throw ScenarioError(node.position, error.description)
        }
    }

    /// `TTTT/MM` in hex, as lscss and topology files write types.
    func typeModel(_ node: ScenarioJSON, what: String) throws(ScenarioError) -> (Int, Int) {
        let text = try string(node, what: what)
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 4, parts[1].count == 2, let type = Int(parts[0], radix: 16),
            let model = Int(parts[1], radix: 16)
        else { throw ScenarioError(node.position, "\(what) '\(text)': expected TTTT/MM in hex, like 3390/0c") }
        return (type, model)
    }

    mutating func groups(_ node: ScenarioJSON) throws(ScenarioError) {
        for member in try object(node, what: "groups") {
            let name = member.key
            _ = try self.name(ScenarioJSON(value: .string(name), position: member.keyPosition), what: "group name")
            let elements = try array(member.value, what: "group '\(name)'")
            guard !elements.isEmpty else { throw ScenarioError(member.value.position, "group '\(name)' is empty") }
            var chpids: [ChannelPathID] = []
            var seen = Set<ChannelPathID>()  // a group may name every chpid of 256 css: no O(n²)
            for element in elements {
                let id = try chpid(element, what: "group '\(name)' chpid")
                guard seen.insert(id).inserted else {
                    throw ScenarioError(element.position, "group '\(name)' names chpid \(id) twice")
                }
                chpids.append(id)
            }
            groupNames.append(name)
            groupMembers[name] = chpids
            groupPositions[name] = elements.map(\.position)
        }
    }

    /// Parses one list of steps (the scenario's, or a loop's body for one iteration) whose
    /// offsets count from `base`; appends the unrolled steps.
    mutating func stepList(
        _ list: [ScenarioJSON], base: Int, prefix: String, names: inout [String: Int], into steps: inout [ScenarioStep]
    ) throws(ScenarioError) {
        var previousAt = 0
        var index = 0
        for node in list {
            index += 1
            let members = try object(node, what: "step \(index)")
            var at: Int?
            var after: (name: String, position: ScenarioPosition)?
            var delay = 0
            var name = "step-\(index)"
            var namePosition: ScenarioPosition?
            var execute: ScenarioJSON?
            var arguments: ScenarioJSON?
            var loop: ScenarioJSON?
            try checkKeys(
                members, allowed: ["name", "at", "after", "delay", "execute", "arguments", "loop"], at: "a step")
            for member in members {
                switch member.key {
                case "name":
                    name = try self.name(member.value, what: "step name")
                    namePosition = member.value.position
                case "at": at = try integer(member.value, what: "at (ms)", in: 0...Scenario.maximumOffset)
                case "after": after = (try self.name(member.value, what: "after"), member.value.position)
                case "delay": delay = try integer(member.value, what: "delay (ms)", in: 0...Scenario.maximumOffset)
                case "execute": execute = member.value
                case "arguments": arguments = member.value
                case "loop": loop = member.value
                default: break
                }
            }
            if let namePosition, names[name] != nil {
                throw ScenarioError(namePosition, "a step named '\(name)' is already in this list")
            }
            let offset: Int
            switch (at, after) {
            case (nil, nil):
                throw ScenarioError(node.position, "step '\(name)': give \"at\" (ms) or \"after\" (a step)")
            case (.some, .some):
                throw ScenarioError(node.position, "step '\(name)': give \"at\" or \"after\", not both")
            case let (.some(at), nil):
                guard at >= previousAt else {
                    throw ScenarioError(
                        node.position,
                        "steps out of order: step '\(name)' is at \(at) ms, before the step above it (\(previousAt) ms)"
                    )
                }
                guard delay == 0 else {
                    throw ScenarioError(node.position, "step '\(name)': \"delay\" goes with \"after\", not \"at\"")
                }
                previousAt = at
                offset = base + at
            case let (nil, .some(after)):
                guard let earlier = names[after.name] else {
                    throw ScenarioError(
                        after.position,
                        "step '\(name)' is after '\(after.name)', which is not a step above it in this list")
                }
                offset = earlier + delay
            }
            guard offset <= Scenario.maximumOffset * 2 else {
                throw ScenarioError(node.position, "step '\(name)': the offset \(offset) ms is too far")
            }
            switch (execute, loop) {
            case (nil, nil):
                throw ScenarioError(node.position, "step '\(name)': give \"execute\" (an action) or \"loop\"")
            case (.some, .some):
                throw ScenarioError(node.position, "step '\(name)': give \"execute\" or \"loop\", not both")
            case let (.some(execute), nil):
                let (action, ids) = try self.action(execute, arguments: arguments, step: name, at: node.position)
                try count(1, at: node.position)
                steps.append(
                    ScenarioStep(
                        offset: offset, name: prefix + name, action: action, position: node.position, idPositions: ids))
                names[name] = offset
            case let (nil, .some(loop)):
                if let arguments {
                    throw ScenarioError(arguments.position, "step '\(name)': a loop takes no \"arguments\"")
                }
                names[name] = try self.loop(loop, name: name, base: offset, prefix: prefix, into: &steps)
            }
        }
    }

    mutating func count(_ steps: Int, at position: ScenarioPosition) throws(ScenarioError) {
        total += steps
        guard total <= Scenario.maximumSteps else {
            throw ScenarioError(position, "the scenario unrolls to more than \(Scenario.maximumSteps) steps")
        }
    }

    /// Unrolls a loop starting at `base`; returns where it ends (base + count * period).
    mutating func loop(
        _ node: ScenarioJSON, name: String, base: Int, prefix: String, into steps: inout [ScenarioStep]
    ) throws(ScenarioError) -> Int {
        let members = try object(node, what: "loop '\(name)'")
        try checkKeys(members, allowed: ["count", "period", "steps"], at: "a loop")
        var count: Int?
        var period: Int?
        var body: [ScenarioJSON]?
        for member in members {
            switch member.key {
            case "count":
                count = try integer(member.value, what: "loop '\(name)' count", in: 1...Scenario.maximumLoopCount)
            case "period":
                period = try integer(member.value, what: "loop '\(name)' period (ms)", in: 1...Scenario.maximumOffset)
            case "steps": body = try array(member.value, what: "loop '\(name)' steps")
            default: break
            }
        }
        guard let count else {
            throw ScenarioError(
                node.position, "loop '\(name)' has no end: give \"count\" (1...\(Scenario.maximumLoopCount) iterations)"
            )
        }
        guard let period else {
            throw ScenarioError(node.position, "loop '\(name)' needs a \"period\" (ms between iterations)")
        }
        guard let body, !body.isEmpty else {
            throw ScenarioError(node.position, "loop '\(name)' needs \"steps\" (at least one)")
        }
        guard base + count * period <= Scenario.maximumOffset * 2 else {
            throw ScenarioError(node.position, "loop '\(name)' ends too far (\(count) × \(period) ms)")
        }
        // Counted before unrolling: a loop of a million iterations over a body of thousands
        // would otherwise build its steps (and use the memory) before the count refused it.
        let (unrolled, overflow) = Self.plainStepCount(body).multipliedReportingOverflow(by: count)
        guard !overflow, total + unrolled <= Scenario.maximumSteps else {
            throw ScenarioError(
                node.position,
                "loop '\(name)' unrolls to \(overflow ? "too many" : String(unrolled)) steps (\(count) iterations): the scenario would have more than \(Scenario.maximumSteps) steps"
            )
        }
        for iteration in 1...count {
            var names: [String: Int] = [:]
            let start = steps.count
            try stepList(
                body, base: base + (iteration - 1) * period, prefix: "\(prefix)\(name)#\(iteration)/", names: &names,
                into: &steps)
            // A body step must happen within its iteration, or iterations would interleave.
            for step in steps[start...] where step.offset >= base + iteration * period {
                throw ScenarioError(
                    step.position,
                    "loop '\(name)': step '\(step.name)' is at \(step.offset - base - (iteration - 1) * period) ms, not within the period (\(period) ms)"
                )
            }
        }
        return base + count * period
    }

    /// How many steps `list` unrolls to, from the file's text alone (a loop's `count` times its
    /// body's), saturating at `Int.max`; what is malformed counts as one step and is refused
    /// when it is parsed.
    static func plainStepCount(_ list: [ScenarioJSON]) -> Int {
        var total = 0
        for node in list {
            var steps = 1
            if case .object(let members) = node.value,
                case .object(let loop)? = members.first(where: { $0.key == "loop" })?.value.value,
                case .integer(let count)? = loop.first(where: { $0.key == "count" })?.value.value,
                case .array(let body)? = loop.first(where: { $0.key == "steps" })?.value.value, count > 0
            {
                let (product, overflow) = plainStepCount(body).multipliedReportingOverflow(by: count)
                steps = overflow ? Int.max : product
            }
            let (sum, overflow) = total.addingReportingOverflow(steps)
            total = overflow ? Int.max : sum
        }
        return total
    }

    /// One action and its arguments; returns it with the positions of the ids it names.
    func action(
        _ executeNode: ScenarioJSON, arguments: ScenarioJSON?, step: String, at position: ScenarioPosition
    ) throws(ScenarioError) -> (ScenarioAction, [ScenarioID: ScenarioPosition]) {
        let command = try string(executeNode, what: "execute")
        let members = try arguments.map { (node) throws(ScenarioError) in try object(node, what: "arguments") } ?? []
        var args: [String: ScenarioJSON] = [:]
        for member in members { args[member.key] = member.value }
        let argumentsPosition = arguments?.position ?? position
        var ids: [ScenarioID: ScenarioPosition] = [:]

        func allow(_ keys: [String]) throws(ScenarioError) {
            for member in members where !keys.contains(member.key) {
                throw ScenarioError(
                    member.keyPosition,
                    "\(command) has no argument '\(member.key)'; its arguments are: \(keys.joined(separator: ", "))")
            }
        }
        func required(_ key: String) throws(ScenarioError) -> ScenarioJSON {
            guard let node = args[key] else {
                throw ScenarioError(argumentsPosition, "\(command) needs the argument '\(key)'")
            }
            return node
        }
        func chpidArgument(_ key: String = "chpid") throws(ScenarioError) -> ChannelPathID {
            let node = try required(key)
            let id = try chpid(node, what: key)
            ids[.chpid(id)] = node.position
            return id
        }
        func deviceArgument() throws(ScenarioError) -> DeviceID {
            let node = try required("device")
            let id = try device(node)
            ids[.device(id)] = node.position
            return id
        }
        func fault() throws(ScenarioError) -> PathFault {
            let node = try required("fault")
            let text = try string(node, what: "fault")
            guard let fault = PathFault(rawValue: text) else {
                throw ScenarioError(
                    node.position, "fault '\(text)': expected permanent-error, temporary-error or recovered")
            }
            return fault
        }
        func force() throws(ScenarioError) -> Bool {
            try args["force"].map { (n) throws(ScenarioError) in try bool(n, what: "force") } ?? false
        }

        /// The paths a step names: exactly one of `chpid`, `chpids` (array), `group`.
        func pathSelection() throws(ScenarioError) -> [ChannelPathID] {
            let given = ["chpid", "chpids", "group"].filter { args[$0] != nil }
            guard given.count == 1 else {
                throw ScenarioError(
                    argumentsPosition, "\(command) needs exactly one of 'chpid', 'chpids', 'group'")
            }
            var chpids: [ChannelPathID] = []
            if args["chpid"] != nil { chpids = [try chpidArgument()] }
            if let node = args["chpids"] {
                let elements = try array(node, what: "chpids")
                guard !elements.isEmpty else { throw ScenarioError(node.position, "chpids is empty") }
                var seen = Set<ChannelPathID>()
                for element in elements {
                    let id = try chpid(element)
                    guard seen.insert(id).inserted else {
                        throw ScenarioError(element.position, "chpids names \(id) twice")
                    }
                    chpids.append(id)
                    ids[.chpid(id)] = element.position
                }
            }
            if let node = args["group"] {
                let group = try string(node, what: "group")
                guard let members = groupMembers[group], let positions = groupPositions[group] else {
                    let known = groupNames.isEmpty ? "none is defined" : "known: " + groupNames.joined(separator: ", ")
                    throw ScenarioError(node.position, "unknown group '\(group)' (\(known))")
                }
                chpids = members
                // Point at the group's definition: that is where the chpid is written.
                for (id, place) in zip(members, positions) { ids[.chpid(id)] = place }
            }
            return chpids
        }

        switch command {
        case "inject-path-fault":
            try allow(["chpid", "chpids", "group", "fault"])
            let chpids = try pathSelection()
            return (.pathFault(chpids: chpids, fault: try fault()), ids)
        case "vary-path":
            try allow(["chpid", "state", "subchannel", "force"])
            let chpid = try chpidArgument()
            let node = try required("state")
            let text = try string(node, what: "state")
            guard let state = VaryState(rawValue: text) else {
                throw ScenarioError(node.position, "state '\(text)': expected online or offline")
            }
            var subchannelID: SubchannelID?
            if let node = args["subchannel"] {
                let id = try subchannel(node)
                ids[.subchannel(id)] = node.position
                subchannelID = id
            }
            return (.vary(chpid: chpid, state: state, subchannel: subchannelID, force: try force()), ids)
        case "configure-chpid":
            try allow(["chpid", "state", "force"])
            let chpid = try chpidArgument()
            let node = try required("state")
            let text = try string(node, what: "state")
            guard text == "configured" || text == "standby" else {
                throw ScenarioError(node.position, "state '\(text)': expected configured or standby")
            }
            return (
                .configure(chpid: chpid, state: text == "standby" ? .standby : .configured, force: try force()), ids
            )
        case "inject-device-path-fault":
            try allow(["device", "chpid", "fault"])
            let device = try deviceArgument()
            return (.devicePathFault(device: device, chpid: try chpidArgument(), fault: try fault()), ids)
        case "add-device":
            try allow(["device", "subchannel", "chpids", "dev-type", "cu-type"])
            let device = try deviceArgument()
            let subchannelNode = try required("subchannel")
            let subchannelID = try subchannel(subchannelNode)
            ids[.subchannel(subchannelID)] = subchannelNode.position
            guard subchannelID.cssid == device.cssid, subchannelID.ssid == device.ssid else {
                throw ScenarioError(
                    subchannelNode.position,
                    "subchannel \(subchannelID) is not in device \(device)'s css and subchannel set")
            }
            let chpidsNode = try required("chpids")
            let elements = try array(chpidsNode, what: "chpids")
            guard (1...8).contains(elements.count) else {
                throw ScenarioError(chpidsNode.position, "chpids: a device has 1 to 8 paths, not \(elements.count)")
            }
            var chpids: [ChannelPathID] = []
            for element in elements {
                let id = try chpid(element)
                guard id.cssid == device.cssid else {
                    throw ScenarioError(element.position, "chpid \(id) is not in device \(device)'s css")
                }
                guard !chpids.contains(id) else { throw ScenarioError(element.position, "chpids names \(id) twice") }
                chpids.append(id)
                ids[.chpid(id)] = element.position
            }
            let dev =
                try args["dev-type"].map { (n) throws(ScenarioError) in try typeModel(n, what: "dev-type") } ?? (0, 0)
            let cuNode = try required("cu-type")
            let cu = try typeModel(cuNode, what: "cu-type")
            let added = ScenarioDevice(
                device: device, subchannel: subchannelID, chpids: chpids, devType: dev.0, devModel: dev.1, cuType: cu.0,
                cuModel: cu.1)
            return (.addDevice(added), ids)
        case "remove-device":
            try allow(["device"])
            return (.removeDevice(try deviceArgument()), ids)
        case "quiesce-control-unit", "resume-control-unit":
            try allow(["chpid", "chpids", "group", "devices"])
            let chpids = try pathSelection()
            var devices: [DeviceID]?
            if let node = args["devices"] {
                let elements = try array(node, what: "devices")
                guard !elements.isEmpty else { throw ScenarioError(node.position, "devices is empty") }
                var listed: [DeviceID] = []
                for element in elements {
                    let id = try device(element)
                    guard !listed.contains(id) else {
                        throw ScenarioError(element.position, "devices names \(id) twice")
                    }
                    listed.append(id)
                    ids[.device(id)] = element.position
                }
                devices = listed
            }
            return (
                .controlUnitQuiesce(chpids: chpids, devices: devices, resume: command == "resume-control-unit"), ids
            )
        default:
            throw ScenarioError(
                executeNode.position,
                "step '\(step)': unknown action '\(command)'; the actions are: \(Self.actions.joined(separator: ", "))")
        }
    }

    static let actions = [
        "inject-path-fault", "vary-path", "configure-chpid", "inject-device-path-fault", "add-device", "remove-device",
        "quiesce-control-unit", "resume-control-unit",
    ]
}
