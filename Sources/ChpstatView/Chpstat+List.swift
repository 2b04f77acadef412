// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

extension Chpstat {
    /// `cmd_list`: the machine-readable report, once per iteration.
    mutating func list() throws(ChpstatExit) {
        var groups = options.groups
        if !options.groupsSpecified && !options.keysSpecified { groups = .metrics }
        groups.formUnion([.meta, .iteration, .channelPath])
        options.groups = groups
        // chpstat re-initializes its keys here, so that `found` reflects the selected chpids.
        keys.markFound(cmgs: foundCMGs, all: options.all)
        if options.keysSpecified {
            for key in keys.selectedKeys where !key.found {
                throw .runtime("No available CHPID provides key '\(key.name)' (needs CMG \(key.cmgText))")
            }
        }
        applyKeySelection()
        for key in keys.selectedKeys { output.addKey(key.name) }
        groups.formUnion(keys.selectedGroups)
        options.groups = groups

        if groups.contains(.metrics) { try updateAll(wait: true) }
        if !options.format.isStream { output.startObject(.list, nil) }
        var iteration = 0
        while options.iterations.map({ iteration < $0 }) ?? true {
            if iteration > 0 { try sleep(options.interval) }
            output.startObject([], nil)
            if groups.contains(.iteration) { iterationHeader(iteration) }
            try listOnce(groups)
            output.endObject()
            // chpstat flushes here, so that a pipe sees each report whole and at once.
            takeStructured()
            flush()
            iteration += 1
        }
        if !options.format.isStream { output.endObject() }
        takeStructured()
    }

    /// `cmd_list_once`.
    private mutating func listOnce(_ groups: KeyGroups) throws(ChpstatExit) {
        output.startObject(.list, "channel_paths")
        for chpid in paths.keys.sorted() {
            if !groups.isDisjoint(with: [.utilization, .metrics]) { try update(chpid, wait: false) }
            if groups.contains(.metrics) { updateMetrics(chpid) }
            guard let state = paths[chpid] else { continue }
            output.startObject(.row, nil)
            if groups.contains(.channelPath) { channelPathPairs(state) }
            output.startObject([], "cmg\(state.cmg)")
            for group in [KeyGroups.characteristics, .utilization, .metrics] where groups.contains(group) {
                output.startObject([], group.name)
                for pair in values(state, groups: group) { structuredPair(pair) }
                output.endObject()
            }
            output.endObject()
            output.endObject()
        }
        output.endObject()
    }

    /// `pr_iteration_header` for lists.
    mutating func iterationHeader(_ iteration: Int) {
        let now = source.now()
        output.pair(.persist, "iteration", String(iteration))
        output.pair(.persist, "time_epoch", String(now))
        output.pair([.persist, .quote], "time", environment.localTime(now, "%F %T%z"))
    }

    /// `pr_chpid`.
    private func channelPathPairs(_ state: PathState) {
        output.pair([.persist, .quote], "chpid", "0." + Self.hex2(state.chpid))
        output.pair(.persist, "type", String(state.type))
        output.pair(.persist, "cmg", String(state.cmg))
        output.pair(.persist, "shared", String(state.shared))
        if let speed = state.speed {
            output.pair([.persist, .quote], "speed", speed)
        } else {
            output.pair([.persist, .quote, .invalid], "speed", "")
        }
    }

    /// `pr_cmg_pair`: `%u`, `%llu`, `%.1f`; an unavailable value marked invalid.
    private func structuredPair(_ pair: ChpstatPair) {
        guard let value = pair.value else {
            return output.pair(.invalid, pair.key, "")
        }
        switch value {
        case .u32(let number): output.pair([], pair.key, String(number))
        case .u64(let number): output.pair([], pair.key, String(number))
        case .double(let number): output.pair([], pair.key, CFormat.fixed(number, precision: 1))
        }
    }
}
