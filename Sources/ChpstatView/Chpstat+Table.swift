// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

extension Chpstat {
    /// chpstat's artificial upper limit for byte rates, for the width of fixed-scale columns.
    private static var maxBytesPerSecond: Double { 1024.0 * 100 * 1_048_576 }

    private var useANSI: Bool { environment.terminal && !options.noANSI }

    private mutating func ansi(_ codes: String) {
        if useANSI { write(codes) }
    }

    /// `cmd_table`: the table, once per iteration.
    mutating func table() throws(ChpstatExit) {
        applyColumnSelection()
        calculateColumnWidths()
        let suffix: Character?
        if case .fixed(_, let letter) = options.scale { suffix = letter } else { suffix = nil }
        columns.updateBytesPerSecondSuffix(auto: options.scale == .auto, iec: options.iec, suffix: suffix)

        write("Collecting initial utilization data\n")
        try updateAll(wait: true)
        var iteration = 0
        while options.iterations.map({ iteration < $0 }) ?? true {
            if iteration > 0 {
                try sleep(options.interval)
                write("\n")
            }
            ansi("\u{1b}[2J\u{1b}[1;1H")
            tableIterationHeader(iteration)
            write("\n")
            try tableOnce()
            flush()
            iteration += 1
        }
    }

    /// `pr_iteration_header` for the table.
    private mutating func tableIterationHeader(_ iteration: Int) {
        let (bold, reset) = useANSI ? ("\u{1b}[1m", "\u{1b}[0m") : ("", "")
        let now = source.now()
        write("\(bold)Iteration:\(reset) \(iteration)  ")
        write("\(bold)Date:\(reset) \(environment.localTime(now, "%F"))  ")
        write("\(bold)Time:\(reset) \(environment.localTime(now, "%T%z"))  ")
        write("\(bold)Host:\(reset) \(shortHostName)\n")
    }

    /// `calc_column_widths`: wide enough for the second header line and the widest value; one
    /// more blank between header groups.
    private mutating func calculateColumnWidths() {
        var lastGroup: String?
        for position in columns.selected.indices {
            let fixedScale: (UInt64, Character?)?
            if case .fixed(let unit, let suffix) = options.scale, options.scaleSpecified {
                fixedScale = (unit, suffix)
            } else {
                fixedScale = nil
            }
            let iec = options.iec
            columns.updateSelected(position) { column in
                column.width = max(column.width, column.hdr2.utf8.count)
                var width = column.width
                switch column.unit {
                case .percent, .number:
                    width = 4  // "99.9", "999k"
                case .bytesPerSecond:
                    if let (unit, suffix) = fixedScale {
                        var text = CFormat.fixed(Self.maxBytesPerSecond / Double(unit), precision: 0)
                        // chpstat prints "%c%c": a missing suffix ends the string there.
                        if let suffix {
                            text.append(suffix)
                            if iec { text += "i" }
                        }
                        width = text.utf8.count
                    } else {
                        width = 4  // "999K"
                    }
                case .other:
                    break
                }
                column.width = max(column.width, width)
                if let lastGroup, lastGroup != column.hdr1Group { column.pad += 1 }
                lastGroup = column.hdr1Group
            }
        }
    }

    /// `cmd_table_once`: the header, then one row per chpid with fresh metrics.
    private mutating func tableOnce() throws(ChpstatExit) {
        ansi("\u{1b}[1m\u{1b}[7m")
        tableHeader()
        ansi("\u{1b}[0m")
        var table = RecordTable(.wide)
        for column in columns.selectedColumns {
            table.define(column.name, alignment: .right, width: column.width + column.pad, header: "")
        }
        for chpid in paths.keys.sorted() {
            try update(chpid, wait: false)
            updateMetrics(chpid)
            guard let state = paths[chpid] else { continue }
            let pairs = values(state, groups: .all)
            for column in columns.selectedColumns {
                table.set(column.name, cell(column, state, pairs))
            }
            write(table.line)
        }
        if case .fixed(let unit, nil) = options.scale { write("\n* = \(unit) B/s\n") }
    }

    /// `add_table_row` for one column: the path's attribute, or its pair for the column
    /// scaled and as precise as fits, or `-`.
    private func cell(_ column: ChpstatColumn, _ state: PathState, _ pairs: [ChpstatPair]) -> String {
        switch column.name {
        case "chpid": return Self.hex2(state.chpid)
        case "type": return Self.hex2(state.type)
        case "cmg": return String(state.cmg)
        case "shared": return String(state.shared)
        case "speed": if let speed = state.speed { return speed }
        default: break
        }
        guard let pair = pairs.first(where: { $0.key == column.name && $0.group != .utilization }) else { return "-" }
        guard let value = pair.value else { return "-" }
        var suffix: Character?
        var scaled = value
        switch pair.unit {
        case .number:
            (scaled, suffix) = Self.scaleAuto(value, by: 1000)
        case .bytesPerSecond:
            switch options.scale {
            case .auto: (scaled, suffix) = Self.scaleAuto(value, by: options.iec ? 1024 : 1000)
            case .fixed(let unit, _): scaled = Self.scaleFixed(value, by: unit)
            }
        case .percent:
            break
        }
        // "%c%c" with the scale's suffix, then 'i' for IEC units: the second is only printed
        // when there is a first (a NUL suffix ends the string), even for plain numbers.
        var tail = ""
        if let suffix {
            tail.append(suffix)
            if options.iec { tail += "i" }
        }
        var text: String
        switch scaled {
        case .u32(let number): text = String(number) + tail
        case .u64(let number): text = String(number) + tail
        case .double(let number):
            text = ""
            for precision in stride(from: 2, through: 0, by: -1) {
                text = CFormat.fixed(number, precision: precision) + tail
                if text.utf8.count <= column.width { break }
            }
        }
        // chpstat formats into 16 bytes (snprintf): at most 15 characters.
        return String(decoding: text.utf8.prefix(15), as: UTF8.self)
    }

    /// `scale_auto`: divides by `unit` while the value is at least `unit`, up to E.
    static func scaleAuto(_ value: ChpstatPair.Value, by unit: UInt64) -> (ChpstatPair.Value, Character?) {
        let suffixes: [Character] = ["K", "M", "G", "T", "P", "E"]
        var value = value
        var applied: Character?
        for suffix in suffixes {
            switch value {
            case .u32(let number):
                if UInt64(number) < unit { return (value, applied) }
                value = .u32(number / UInt32(truncatingIfNeeded: unit))
            case .u64(let number):
                if number < unit { return (value, applied) }
                value = .u64(number / unit)
            case .double(let number):
                if number < Double(unit) { return (value, applied) }
                value = .double(number / Double(unit))
            }
            applied = suffix
        }
        return (value, applied)
    }

    /// `scale_fixed`.
    static func scaleFixed(_ value: ChpstatPair.Value, by unit: UInt64) -> ChpstatPair.Value {
        switch value {
        case .u32(let number): .u32(number / UInt32(truncatingIfNeeded: unit))
        case .u64(let number): .u64(number / unit)
        case .double(let number): .double(number / Double(unit))
        }
    }

    /// `print_table_header`: the group line (a run of columns under one centred group heading,
    /// a lone column under its single heading; columns widened to fit), then the column line.
    private mutating func tableHeader() {
        var line = ""
        var lastGroup: String?
        var position = 0
        let selected = columns.selected
        while position < selected.count {
            let column = columns.all[selected[position]]
            if let lastGroup, lastGroup != column.hdr1Group {
                columns.updateSelected(position) { $0.pad = 1 }
                line += "  "
            }
            lastGroup = column.hdr1Group
            var (count, width) = groupSize(from: position)
            if count == 1 {
                width = max(width, column.hdr1Single.utf8.count, column.hdr2.utf8.count)
                columns.updateSelected(position) { $0.width = width }
                line += CFormat.right(column.hdr1Single, width)
                position += 1
                continue
            }
            let headingWidth = column.hdr1Group.utf8.count
            if headingWidth > width {
                enlarge(from: position, count: count, by: headingWidth - width)
                width = headingWidth
            }
            // Centre the heading over the column texts, not over the first column's padding.
            let first = columns.all[selected[position]]
            if first.width > first.hdr2.utf8.count {
                let spacing = first.width - first.hdr2.utf8.count
                if width - spacing >= headingWidth {
                    line += String(repeating: " ", count: spacing)
                    width -= spacing
                }
            }
            line += Self.centered(column.hdr1Group, width)
            position += count
        }
        write(line + "\n")
        var second = ""
        for (index, column) in columns.selectedColumns.enumerated() {
            if index > 0 { second += String(repeating: " ", count: column.pad + 1) }
            second += CFormat.right(column.hdr2, column.width)
        }
        write(second + "\n")
    }

    /// `get_hdr_group_size`: how many neighbours from `start` share its non-empty group heading,
    /// and their width with the blanks between them.
    private func groupSize(from start: Int) -> (count: Int, width: Int) {
        let selected = columns.selectedColumns
        var count = 0
        var width = 0
        var lastHeading = ""
        for position in start..<selected.count {
            let column = selected[position]
            if position > start {
                if lastHeading.isEmpty || column.hdr1Group != lastHeading { break }
                width += 1
            }
            count += 1
            width += column.width
            lastHeading = column.hdr1Group
        }
        return (count, width)
    }

    /// `enlarge_columns`: spreads `extra` over `count` columns from `start`.
    private mutating func enlarge(from start: Int, count: Int, by extra: Int) {
        var extra = extra
        let end = start + count
        for position in start..<end {
            let delta = extra / (end - position)
            columns.updateSelected(position) { $0.width += delta }
            extra -= delta
        }
    }

    /// `pr_centered`: the odd blank goes left.
    static func centered(_ text: String, _ width: Int) -> String {
        let length = text.utf8.count
        let width = max(width, length)
        let right = (width - length) / 2
        let left = width - length - right
        return String(repeating: " ", count: left) + text + String(repeating: " ", count: right)
    }
}
