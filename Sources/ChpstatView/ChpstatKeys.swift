// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// chpstat's key groups (`enum key_group_t`), as bits.
struct KeyGroups: OptionSet, Hashable {
    let rawValue: Int
    static let meta = KeyGroups(rawValue: 1 << 0)
    static let iteration = KeyGroups(rawValue: 1 << 1)
    static let channelPath = KeyGroups(rawValue: 1 << 2)
    static let characteristics = KeyGroups(rawValue: 1 << 3)
    static let utilization = KeyGroups(rawValue: 1 << 4)
    static let metrics = KeyGroups(rawValue: 1 << 5)
    static let all: KeyGroups = [.meta, .iteration, .channelPath, .characteristics, .utilization, .metrics]

    /// `key_group_to_str` of a single group.
    var name: String {
        switch self {
        case .meta: "meta"
        case .iteration: "iteration"
        case .channelPath: "channel_path"
        case .characteristics: "characteristics"
        case .utilization: "utilization"
        case .metrics: "metrics"
        default: ""
        }
    }
}

/// One data key of chpstat (`struct key_t`): its group, the CMGs that have it, and whether a
/// selected chpid provides it.
struct ChpstatKey {
    let name: String
    let group: KeyGroups
    var cmgMask: UInt32
    var found: Bool

    /// `mask_to_cmg_str`: `all`, or the CMGs as `2,4,5`.
    var cmgText: String {
        if cmgMask == .max { return "all" }
        return (1...32).filter { $0 < 32 && cmgMask & (1 << UInt32($0)) != 0 }.map(String.init).joined(separator: ",")
    }
}

/// chpstat's key registry (`key.c`): the generic keys, then per CMG (in registry order 1-5) its
/// utilization, characteristics and metrics keys, each once; and the selection.
struct ChpstatKeys {
    static let genericKeys: [(String, KeyGroups)] = [
        ("meta.api_level", .meta), ("meta.version", .meta), ("meta.host", .meta), ("meta.time", .meta),
        ("meta.time_epoch", .meta), ("iteration", .iteration), ("time", .iteration), ("time_epoch", .iteration),
        ("chpid", .channelPath), ("type", .channelPath), ("cmg", .channelPath), ("shared", .channelPath),
        ("speed", .channelPath),
    ]

    private(set) var all: [ChpstatKey] = []
    private(set) var selected: [Int] = []

    /// `key_init`: `found` is true for the generic keys and for the keys of CMGs in
    /// `foundCMGs` (every CMG with `all`).
    init(foundCMGs: Set<Int>, all: Bool) {
        for (name, group) in Self.genericKeys { add(name, group, found: true, mask: .max) }
        for cmg in ChpstatCMG.supported {
            for group in [KeyGroups.utilization, .characteristics, .metrics] {
                for name in ChpstatCMG.keys(cmg: cmg, group: group) {
                    add(name, group, found: foundCMGs.contains(cmg) || all, mask: 1 << UInt32(cmg))
                }
            }
        }
    }

    /// `key_init` again once chpids are selected: a key is found if a selected chpid's CMG (or
    /// `--all`) has it. The selection stays.
    mutating func markFound(cmgs: Set<Int>, all: Bool) {
        for index in self.all.indices where !self.all[index].found {
            self.all[index].found = all || cmgs.contains { self.all[index].cmgMask & (1 << UInt32($0)) != 0 }
        }
    }

    private mutating func add(_ name: String, _ group: KeyGroups, found: Bool, mask: UInt32) {
        if let index = all.firstIndex(where: { $0.name == name }) {
            all[index].found = all[index].found || found
            all[index].cmgMask |= mask
        } else {
            all.append(ChpstatKey(name: name, group: group, cmgMask: mask, found: found))
        }
    }

    func index(named name: String) -> Int? { all.firstIndex { $0.name == name } }

    var selectedKeys: [ChpstatKey] { selected.map { all[$0] } }

    mutating func select(_ index: Int) {
        if !selected.contains(index) { selected.append(index) }
    }

    /// `key_select_by_groups`: with `found`, only keys some selected chpid provides.
    mutating func select(groups: KeyGroups, found: Bool) {
        for index in all.indices where (!found || all[index].found) && !groups.isDisjoint(with: all[index].group) {
            select(index)
        }
    }

    /// `key_select_by_cmg`.
    mutating func select(cmg: Int) {
        for index in all.indices where all[index].cmgMask & (1 << UInt32(cmg)) != 0 { select(index) }
    }

    mutating func selectAll() {
        for index in all.indices { select(index) }
    }

    /// `key_sort_selected`: by name (strcmp).
    mutating func sortSelected() {
        selected.sort { Array(all[$0].name.utf8).lexicographicallyPrecedes(Array(all[$1].name.utf8)) }
    }

    /// `key_get_selected_groups`.
    var selectedGroups: KeyGroups {
        selected.reduce(into: KeyGroups()) { $0.formUnion(all[$1].group) }
    }
}
