// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// One selected chpid (chpstat `struct chpid_data_t`): its attributes, characteristics, the two
/// last distinct entries (`util_a` older, `util_b` newer) and the metrics between them.
struct PathState {
    let chpid: Int
    let cmg: Int
    let type: Int
    let shared: Int
    let speed: String?
    let characteristics: ChpstatCharacteristics
    var older: ChpstatEntries
    var newer: ChpstatEntries
    var metrics: [ChpstatPair] = []
}

extension ChpstatEntries {
    /// The CUE's 24-bit timestamp (bytes 1-3), which tells a new entry from the last one.
    var timestamp: UInt32 { UInt32(cue[1]) << 16 | UInt32(cue[2]) << 8 | UInt32(cue[3]) }
}

extension Chpstat {
    /// `select_all_chpids`: every chpid 00-ff that exists, has a CMG chpstat knows and is not
    /// excluded by --cmg.
    /// - Returns: how many were selected.
    mutating func selectAll() throws(ChpstatExit) -> Int {
        var count = 0
        for chpid in 0...0xff where try select(chpid, trying: true) { count += 1 }
        return count
    }

    /// `parse_chpids`: the CHPID arguments; one that cannot be shown is an error.
    mutating func selectArguments() throws(ChpstatExit) -> Int {
        var count = 0
        for argument in options.chpidArguments {
            let chpid = try ChpstatOptions.chpid(argument)
            if paths[chpid] != nil { continue }
            _ = try select(chpid, trying: false)
            count += 1
        }
        return count
    }

    /// `select_chpid`: reads the attributes, the characteristics and the first entries.
    /// - Parameter trying: a chpid that cannot be shown is skipped (false) instead of an error.
    private mutating func select(_ chpid: Int, trying: Bool) throws(ChpstatExit) -> Bool {
        let name = "0." + Self.hex2(chpid)
        guard let path = try source.channelPath(chpid) else {
            if trying { return false }
            throw .runtime("CHPID \(name) does not exist")
        }
        guard let cmg = path.cmg else {
            if trying { return false }
            throw .runtime("No statistics available for CHPID \(name)")
        }
        guard ChpstatCMG.supported.contains(cmg) else {
            if trying { return false }
            throw .runtime("CHPID \(name) uses unsupported CMG \(cmg)")
        }
        if options.cmgsSpecified && !options.cmgs.contains(cmg) {
            if trying { return false }
            throw .runtime("CHPID \(name) excluded by --cmg option")
        }
        foundCMGs.insert(cmg)
        let characteristics =
            ChpstatCMG.hasCharacteristics(cmg)
            ? try source.characteristics(chpid)
            : ChpstatCharacteristics(cmcb: Array(repeating: 0, count: 32), full: false)
        let entries = try read(chpid, cmg: cmg)
        paths[chpid] = PathState(
            chpid: chpid, cmg: cmg, type: path.type, shared: path.shared, speed: path.speed,
            characteristics: characteristics, older: entries, newer: entries)
        return true
    }

    /// `read_util`: the entries, with chpstat's fix for firmware that reports a CUIV of 0xfe
    /// for CMG 3, and its one warning for a kernel without extended entries.
    private mutating func read(_ chpid: Int, cmg: Int) throws(ChpstatExit) -> ChpstatEntries {
        var entries = try source.entries(chpid)
        if options.debug {
            // chpstat --debug dumps each sysfs read to standard output; here each read of a
            // path's entries goes to standard error, at once, so that it can be followed live.
            let extended = entries.extendedCUE.map { " ext_measurement=" + Self.hex($0) } ?? ""
            environment.standardError(
                "DEBUG: read(0.\(Self.hex2(chpid))) measurement=\(Self.hex(entries.cue))\(extended)\n")
        }
        if entries.extendedMissing && !warnedMissingExtended {
            warnedMissingExtended = true
            environment.standardError(
                "\(environment.programName): Missing kernel support for extended channel-path measurement data\n")
        }
        if cmg == 3 && entries.cue[0] == 0xfe { entries.cue[0] = 0xff }
        return entries
    }

    /// `_update_util`: reads the entries; a new timestamp makes them the newer sample.
    /// - Returns: whether there was new data.
    private mutating func updateOnce(_ chpid: Int) throws(ChpstatExit) -> Bool {
        guard let state = paths[chpid] else { return false }
        let entries = try read(chpid, cmg: state.cmg)
        if entries.timestamp == state.newer.timestamp { return false }
        paths[chpid]?.older = state.newer
        paths[chpid]?.newer = entries
        return true
    }

    /// `update_util`: with `wait`, polls every second until there is new data.
    mutating func update(_ chpid: Int, wait: Bool) throws(ChpstatExit) {
        while try !updateOnce(chpid) && wait { try sleep(1) }
    }

    /// Sleeps; a signal during the sleep ends the run (`ChpstatExit.interrupted`).
    mutating func sleep(_ seconds: Int) throws(ChpstatExit) {
        source.sleep(seconds: seconds)
        if source.interrupted { throw .interrupted }
    }

    /// `update_util_all`.
    mutating func updateAll(wait: Bool) throws(ChpstatExit) {
        for chpid in paths.keys.sorted() { try update(chpid, wait: wait) }
    }

    /// `update_metrics` of the path's CMG.
    mutating func updateMetrics(_ chpid: Int) {
        guard let state = paths[chpid] else { return }
        paths[chpid]?.metrics = ChpstatCMG.metrics(state)
    }

    /// The path's pairs of `groups` (`get_values`), characteristics, utilization, metrics.
    func values(_ state: PathState, groups: KeyGroups) -> [ChpstatPair] {
        var pairs: [ChpstatPair] = []
        if groups.contains(.characteristics) { pairs += ChpstatCMG.characteristics(state) }
        if groups.contains(.utilization) { pairs += ChpstatCMG.utilization(state) }
        if groups.contains(.metrics) { pairs += state.metrics }
        return pairs
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { hex2(Int($0)) }.joined()
    }

    static func hex2(_ value: Int) -> String {
        let digits = String(value, radix: 16)
        return digits.count < 2 ? "0" + digits : digits
    }

    /// `get_host_name`: up to the first dot; `-` if empty.
    var shortHostName: String {
        let name =
            environment.hostName.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
            .first.map(String.init) ?? ""
        return name.isEmpty ? "-" : name
    }
}
