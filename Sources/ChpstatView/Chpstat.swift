// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// s390-tools' `chpstat` v2.43.0 over any `ChpstatSource`: the same options, exit statuses,
/// messages and output bytes (table, JSON, JSON sequences, JSON Lines, pairs, CSV, the column
/// and key listings, the status), except where chpstat's output is wrong:
/// - a metric that divides by a zero characteristic (`util_data` with `max_read_data_units` or
///   `max_write_data_units` 0) is not available (`-`, `null`, empty, left out) where chpstat
///   prints `inf` or `nan`, which are not JSON;
/// - a CSV cell of a persistent key (`speed`) that a row does not have is empty where chpstat
///   repeats the previous row's value.
///
/// Data flows as in chpstat: each chpid's characteristics are read once, its entries at start
/// and at every update; a metric is computed over the last two entries whose timestamps differ
/// (waiting for the firmware's next update, a second at a time, before the first report).
package struct Chpstat<Source: ChpstatSource> {
    package let source: Source
    let environment: ChpstatEnvironment

    var options = ChpstatOptions()
    var columns = ChpstatColumns()
    var keys = ChpstatKeys(foundCMGs: [], all: false)
    var output: StructuredOutput!
    var paths: [Int: PathState] = [:]
    var foundCMGs: Set<Int> = []
    var warnedMissingExtended = false
    /// Pending standard output, written at chpstat's flush points and at exit.
    var pending = ""

    package init(source: Source, environment: ChpstatEnvironment) {
        self.source = source
        self.environment = environment
    }

    /// Runs chpstat with `arguments` (without the program name).
    /// - Returns: the exit status (0, 1 usage error, 2 run-time error), or -1 when a signal
    ///   stopped it (the caller ends the process by that signal, as chpstat does).
    package mutating func run(_ arguments: [String]) -> Int32 {
        do {
            try execute(arguments)
            flush()
            return 0
        } catch let stop where stop == .interrupted {
            // chpstat closes what its JSON left open when SIGINT or SIGTERM arrives
            // (libutil's FMT_HANDLEINT), so that what was written stays valid JSON.
            if options.command == .list && options.format.isJSON {
                output.closeAll()
                takeStructured()
            }
            flush()
            return ChpstatExit.interrupted.status
        } catch {
            flush()
            var message = "\(environment.programName): \(error.message)\n"
            if error.suggestHelp {
                message += "Try '\(environment.programName) --help' for more information.\n"
            }
            environment.standardError(message)
            return error.status
        }
    }

    mutating func flush() {
        if !pending.isEmpty { environment.standardOutput(pending) }
        pending = ""
    }

    mutating func write(_ text: String) { pending += text }

    mutating func takeStructured() { pending += output.take() }

    private mutating func execute(_ arguments: [String]) throws(ChpstatExit) {
        let keyNames = Set(ChpstatKeys(foundCMGs: [], all: false).all.map(\.name))
        options = try ChpstatOptions(arguments, keyNames: keyNames)
        if options.help {
            write(ChpstatHelp.text(programName: environment.programName) + environment.helpSupplement)
            return
        }
        if options.version {
            write("\(environment.programName) version \(environment.version)\n")
            return
        }
        // Parse-time selections, in the order given (chpstat selects while parsing).
        for name in options.columns { if let index = columns.index(named: name) { columns.select(index) } }
        for name in options.keys { if let index = keys.index(named: name) { keys.select(index) } }
        setUpOutput()

        let facility = try source.facility()
        switch options.command {
        case .status: return status(facility)
        case .listColumns: return listColumns()
        case .listKeys: return listKeys()
        default: break
        }
        if facility == .unsupported { throw .runtime("This system does not support channel-path statistics") }
        switch options.command {
        case .enable:
            if facility == .enabled { return write("Channel-path statistics already enabled\n") }
            return try setFacility(true)
        case .disable:
            if facility == .disabled { return write("Channel-path statistics already disabled\n") }
            return try setFacility(false)
        default: break
        }
        if facility == .disabled {
            throw .runtime(
                "Channel-path statistics are disabled\nUse '\(environment.programName) --enable' to enable statistics")
        }
        let selected = options.chpidArguments.isEmpty ? try selectAll() : try selectArguments()
        if selected == 0 { throw .runtime("No available CHPIDs found") }
        if options.command == .list { try list() } else { try table() }
    }

    private mutating func setUpOutput() {
        var flags = StructuredOutput.Options()
        flags.filter = options.keysSpecified
        flags.hidePrefix = !options.usePrefix
        flags.quoteAll = options.format == .csv
        flags.hideInvalid = !(options.keysSpecified || options.all)
        flags.hideMeta = environment.hideMeta
        let environment = environment
        let source = source
        output = StructuredOutput(format: options.format, options: flags, toolName: "chpstat") {
            let now = source.now()
            return StructuredOutput.Meta(
                apiLevel: 1, version: environment.version, host: environment.hostName, timeEpoch: now,
                time: environment.localTime(now, "%F %T%z"))
        }
    }

    private mutating func setFacility(_ enabled: Bool) throws(ChpstatExit) {
        write(enabled ? "Enabling channel-path statistics\n" : "Disabling channel-path statistics\n")
        try source.setFacility(enabled: enabled)
    }

    // MARK: - Status and listings

    private mutating func status(_ facility: ChpstatFacility) {
        guard options.formatSpecified else {
            let state: String
            switch facility {
            case .unsupported: state = "not supported on this system"
            case .disabled: state = "disabled"
            case .enabled: state = "enabled"
            }
            return write("Channel-path statistics are \(state)\n")
        }
        let name: String
        switch facility {
        case .unsupported: name = "unsupported"
        case .disabled: name = "disabled"
        case .enabled: name = "enabled"
        }
        output.addKey("status")
        output.startObject(.row, "chpstat_status")
        output.pair([.persist, .quote], "status", name)
        output.endObject()
        takeStructured()
    }

    mutating func applyColumnSelection() {
        if options.all {
            columns.selectAll()
        } else if options.cmgsSpecified {
            for cmg in ChpstatCMG.supported where options.cmgs.contains(cmg) {
                columns.select(names: ChpstatColumns.defaultNames(cmg: cmg))
            }
        } else if !options.columnsSpecified {
            if options.command == .listColumns { columns.selectAll() } else { columns.selectDefault() }
        }
    }

    private mutating func listColumns() {
        applyColumnSelection()
        func heading(_ column: ChpstatColumn) -> String {
            column.hdr1Single.isEmpty ? column.hdr2 : column.hdr1Single + " " + column.hdr2
        }
        if options.formatSpecified {
            for key in ["name", "heading", "description"] { output.addKey(key) }
            output.startObject(.list, "chpstat_list_columns")
            for column in columns.selectedColumns {
                output.startObject(.row, nil)
                output.pair([.persist, .quote], "name", column.name)
                output.pair([.persist, .quote], "heading", heading(column))
                output.pair([.persist, .quote], "description", column.description)
                output.endObject()
            }
            output.endObject()
            return takeStructured()
        }
        var w1 = "column".count
        var w2 = "heading".count
        var w3 = "description".count
        for column in columns.selectedColumns {
            w1 = max(w1, column.name.utf8.count)
            w2 = max(w2, column.hdr1Single.utf8.count + column.hdr2.utf8.count + 1)
            w3 = max(w3, column.description.utf8.count)
        }
        var table = RecordTable(.wide)
        table.define("column", alignment: .left, width: w1 + 1, header: "COLUMN")
        table.define("heading", alignment: .left, width: w2 + 1, header: "HEADING")
        table.define("description", alignment: .left, width: w3, header: "DESCRIPTION")
        write(table.headerLine)
        for column in columns.selectedColumns {
            table.set("column", column.name)
            table.set("heading", heading(column))
            table.set("description", column.description)
            write(table.line)
        }
    }

    mutating func applyKeySelection() {
        let filter = options.command == .list
        if options.all {
            keys.selectAll()
        } else if options.groupsSpecified || options.cmgsSpecified || options.keysSpecified {
            if options.groupsSpecified { keys.select(groups: options.groups, found: filter) }
            if options.cmgsSpecified {
                for cmg in ChpstatCMG.supported where options.cmgs.contains(cmg) { keys.select(cmg: cmg) }
            }
        } else if options.command == .listKeys {
            keys.selectAll()
        } else {
            keys.select(groups: options.groups, found: filter)
        }
        if options.command == .listKeys { keys.sortSelected() }
    }

    private mutating func listKeys() {
        applyKeySelection()
        if options.formatSpecified {
            for key in ["key", "group", "cmgs"] { output.addKey(key) }
            output.startObject(.list, "chpstat_list_keys")
            for key in keys.selectedKeys {
                output.startObject(.row, nil)
                output.pair(.quote, "key", key.name)
                output.pair(.quote, "group", key.group.name)
                output.pair(.quote, "cmgs", key.cmgText)
                output.endObject()
            }
            output.endObject()
            return takeStructured()
        }
        var w1 = "key".count
        var w2 = "group".count
        var w3 = "cmgs".count
        for key in keys.selectedKeys {
            w1 = max(w1, key.name.utf8.count)
            w2 = max(w2, key.group.name.utf8.count)
            w3 = max(w3, key.cmgText.utf8.count)
        }
        var table = RecordTable(.wide)
        table.define("key", alignment: .left, width: w1 + 1, header: "KEY")
        table.define("group", alignment: .left, width: w2 + 1, header: "GROUP")
        table.define("cmgs", alignment: .left, width: w3, header: "CMGS")
        write(table.headerLine)
        for key in keys.selectedKeys {
            table.set("key", key.name)
            table.set("group", key.group.name)
            table.set("cmgs", key.cmgText)
            write(table.line)
        }
    }
}
