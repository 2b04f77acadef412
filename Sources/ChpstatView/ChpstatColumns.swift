// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// One table column of chpstat v2.43.0 (`column.c`): its name (for `--columns`), the unit that
/// decides scaling and width, its description and two header lines. The first header line is
/// `hdr1Single` when the column stands alone and `hdr1Group` over a run of neighbours that share
/// it (`UTIL` / `UTILIZATION(%)`).
struct ChpstatColumn {
    enum Unit {
        case other
        case number
        case percent
        case bytesPerSecond
    }

    let name: String
    let unit: Unit
    let description: String
    let hdr2: String
    let hdr1Single: String
    var hdr1Group: String
    /// Starts at chpstat's minimum and grows to fit headers and values.
    var width: Int
    /// Extra blanks before the column (one more between header groups).
    var pad = 0

    init(
        _ name: String, _ unit: Unit, _ description: String, _ hdr2: String, _ hdr1Single: String,
        _ hdr1Group: String, width: Int = 0
    ) {
        self.name = name
        self.unit = unit
        self.description = description
        self.hdr2 = hdr2
        self.hdr1Single = hdr1Single
        self.hdr1Group = hdr1Group
        self.width = width
    }
}

/// chpstat's column registry: every column in its order, the selection (in the order chosen,
/// without duplicates), the per-CMG defaults.
struct ChpstatColumns {
    private(set) var all: [ChpstatColumn] = ChpstatColumns.registry
    /// Indices into `all`, in the order selected.
    private(set) var selected: [Int] = []

    var selectedColumns: [ChpstatColumn] { selected.map { all[$0] } }

    /// `column_get_by_name`: case-insensitive.
    func index(named name: String) -> Int? {
        all.firstIndex { $0.name.lowercased() == name.lowercased() }
    }

    /// `column_select`: adds a column once.
    mutating func select(_ index: Int) {
        if !selected.contains(index) { selected.append(index) }
    }

    mutating func select(names: [String]) {
        for name in names { if let index = index(named: name) { select(index) } }
    }

    mutating func selectAll() {
        for index in all.indices { select(index) }
    }

    mutating func selectDefault() { select(names: Self.defaultNames) }

    /// Changes the selected column at position `position` (in the selection).
    mutating func updateSelected(_ position: Int, _ change: (inout ChpstatColumn) -> Void) {
        change(&all[selected[position]])
    }

    /// `column_update_bps_suffix`: the unit of the byte-rate columns' group headers.
    mutating func updateBytesPerSecondSuffix(auto: Bool, iec: Bool, suffix: Character?) {
        let text: String
        if auto {
            text = "(B/s)"
        } else if let suffix {
            text = iec ? "(\(suffix)iB/s)" : "(\(suffix)B/s)"
        } else {
            text = "(*)"
        }
        for index in all.indices where all[index].unit == .bytesPerSecond { all[index].hdr1Group += text }
    }

    /// Columns shown by default (`default_columns`).
    static let defaultNames = [
        "chpid", "type", "cmg", "shared", "speed", "util_part", "util_total", "util_bus", "dpu_id", "read_part",
        "read_total", "write_part", "write_total",
    ]

    /// Columns shown for a CMG selected with --cmg (`default_column_ids` of `cmg1.c` ... `cmg5.c`).
    static func defaultNames(cmg: Int) -> [String] {
        let path = ["chpid", "type", "cmg", "shared", "speed"]
        let rw = ["read_part", "read_total", "write_part", "write_total"]
        let ficon = ["ficon_rate", "ficon_active", "ficon_defer", "hpf_rate", "hpf_active", "hpf_defer"]
        let dpu = ["util_part", "util_total", "util_data", "dpu_id", "dpu_util_part", "dpu_util_total", "dpu_util"]
        switch cmg {
        case 1: return path + ["util_part", "util_total"]
        case 2: return path + ["util_part", "util_total", "util_bus"] + rw + ficon
        case 3:
            return path + [
                "write_part", "write_total", "msg_rate_part", "msg_rate_total", "msg_size_part", "msg_size_total",
                "send_fail_part", "rcv_fail_part", "rcv_fail_total",
            ]
        case 4: return path + dpu + rw
        case 5: return path + dpu + rw + ficon
        default: return []
        }
    }

    private static let registry: [ChpstatColumn] = {
        let path = ("", "CHANNEL-PATH")
        let util = ("UTIL", "UTILIZATION(%)")
        let read = ("READ", "READ")
        let write = ("WRITE", "WRITE")
        let ficon = ("FICON", "FICON-OPS")
        let hpf = ("HPF", "HPF-OPS")
        let rate = ("RATE", "MSG-RATE")
        let size = ("SIZE", "MSG-SIZE")
        let rfail = ("RFAIL", "RECEIVE-FAIL")
        let dpu = ("DPU", "DPU UTILIZATION(%)")
        typealias H = (String, String)
        func c(_ n: String, _ u: ChpstatColumn.Unit, _ d: String, _ h2: String, _ h1: H, _ w: Int = 0)
            -> ChpstatColumn
        {
            ChpstatColumn(n, u, d, h2, h1.0, h1.1, width: w)
        }
        return [
            c("chpid", .other, "Channel-path ID", "ID", path),
            c("type", .other, "Channel-path type", "TYP", path),
            c("cmg", .other, "Channel-measurement group", "CMG", path),
            c("speed", .other, "Operational speed", "SPEED", path),
            c("shared", .other, "Shared channel-path indicator", "SHR", path),
            c("interval", .other, "Cumulated statistics update interval", "INT", path),
            c("util_part", .percent, "Partition channel-path utilization in %", "PART", util, 5),
            c("util_total", .percent, "Total channel-path utilization in %", "TOTAL", util, 5),
            c("util_bus", .percent, "Bus utilization in %", "BUS", util),
            c("util_data", .percent, "Data bandwidth utilization in %", "DATA", util),
            c("read_part", .bytesPerSecond, "Partition read throughput in B/s", "PART", read, 5),
            c("read_total", .bytesPerSecond, "Total read throughput in B/s", "TOTAL", read, 5),
            c("write_part", .bytesPerSecond, "Partition write throughput in B/s", "PART", write, 5),
            c("write_total", .bytesPerSecond, "Total write throughput in B/s", "TOTAL", write, 5),
            c("ficon_rate", .number, "FICON operations per second", "RATE", ficon),
            c("ficon_active", .number, "Avg. concurrently active FICON operations", "ACTV", ficon),
            c("ficon_defer", .number, "Deferred FICON operations per second", "DEFER", ficon),
            c("hpf_rate", .number, "HPF operations per second", "RATE", hpf),
            c("hpf_active", .number, "Avg. concurrently active HPF operations", "ACTV", hpf),
            c("hpf_defer", .number, "Deferred HPF operations per second", "DEFER", hpf),
            c("msg_rate_part", .number, "Partition message send rate per second", "PART", rate, 5),
            c("msg_rate_total", .number, "Total message send rate per second", "TOTAL", rate, 5),
            c("msg_size_part", .number, "Partition avg. send message size", "PART", size, 5),
            c("msg_size_total", .number, "Total avg. send message size", "TOTAL", size, 5),
            c("send_fail_part", .number, "Partition message send fail rate per second", "PART", ("SNDFAIL", "SNDFAIL")),
            c("rcv_fail_part", .number, "Partition message receive fail rate per second", "PART", rfail, 5),
            c("rcv_fail_total", .number, "Total message receive fail rate per second", "TOTAL", rfail, 5),
            c("dpu_id", .other, "DPU ID associated with channel-path", "ID", dpu),
            c("dpu_util", .percent, "Full DPU utilization in %", "FULL", dpu),
            c("dpu_util_part", .percent, "Partition channel-path DPU utilization in %", "PART", dpu, 5),
            c("dpu_util_total", .percent, "Total channel-path DPU utilization in %", "TOTAL", dpu, 5),
        ]
    }()
}
