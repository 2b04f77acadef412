// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// Nested objects, lists and key-value pairs written as JSON, JSON sequences (RFC 7464), JSON
/// Lines, shell-style `key=value` pairs or CSV, the way s390-tools' libutil writes them
/// (`util_fmt.c`, v2.43.0), byte for byte: the same indentation, separators, quoting, the
/// top-level `meta` object (api_level, version, host, time_epoch, time), the CSV header that is
/// printed again when a new key appears, values kept across CSV rows for persistent keys.
///
/// What it writes collects in `text`; the caller takes it (`take()`) and writes it out.
/// One instance per run: like libutil's, the state (levels, keys, meta done) is not reset.
final class StructuredOutput {
    enum Format: String, CaseIterable {
        case json
        case jsonSeq = "json-seq"
        case jsonl
        case pairs
        case csv

        /// JSON in one of its three forms.
        var isJSON: Bool { self == .json || self == .jsonSeq || self == .jsonl }
        /// One JSON document per top-level object (`util_fmt_is_json_stream`).
        var isStream: Bool { self == .jsonSeq || self == .jsonl }

        /// `util_fmt_name_to_type`: the name, in any case.
        init?(name: String) {
            guard let format = Format.allCases.first(where: { $0.rawValue == name.lowercased() }) else { return nil }
            self = format
        }
    }

    /// How the output is set up (`util_fmt_init`'s flags).
    struct Options {
        /// FMT_NOPREFIX: pairs without the path of enclosing objects.
        var hidePrefix = false
        /// Not FMT_KEEPINVAL: pairs marked invalid are left out (else `null` / empty).
        var hideInvalid = true
        /// FMT_NOMETA or `FMT_NOMETA=1` in the environment: no `meta` object.
        var hideMeta = false
        /// FMT_QUOTEALL: every value quoted.
        var quoteAll = false
        /// FMT_FILTER: only pairs whose key was added with `addKey`.
        var filter = false
    }

    /// What the top-level `meta` object says.
    struct Meta {
        var apiLevel: Int
        var version: String
        var host: String
        var timeEpoch: Int
        /// `%F %T%z` in local time.
        var time: String
    }

    /// Pair and object flags (`FMT_*` of util_fmt.h).
    struct Flags: OptionSet {
        let rawValue: Int
        static let list = Flags(rawValue: 1 << 0)
        static let row = Flags(rawValue: 1 << 1)
        static let prefix = Flags(rawValue: 1 << 2)
        static let quote = Flags(rawValue: 1 << 3)
        static let invalid = Flags(rawValue: 1 << 4)
        static let persist = Flags(rawValue: 1 << 5)
    }

    private struct Object {
        var name: String?
        var isList: Bool
        var isRow: Bool
        var isPrefix: Bool
        var index = 0
    }

    let format: Format
    private let options: Options
    /// Called once, when the first object starts (libutil takes the time at that moment).
    private let meta: () -> Meta
    /// The name of the object that follows `meta` when the caller gives none
    /// (libutil: `program_invocation_short_name`).
    private let toolName: String
    private let newline: String
    private var metaDone = false
    private var objects: [Object] = []
    private var keys: [(name: String, persist: Bool)] = []
    private var csvRecord = RecordTable(.csv(separator: ","))
    private var csvHeaderDue = true
    private var csvData = false
    private(set) var text = ""

    init(format: Format, options: Options, toolName: String, meta: @escaping () -> Meta) {
        self.format = format
        self.options = options
        self.toolName = toolName
        self.meta = meta
        newline = format.isStream ? "" : "\n"
    }

    /// Returns what was written since the last call.
    func take() -> String {
        defer { text = "" }
        return text
    }

    /// `util_fmt_add_key`: registers a key (once); in CSV it becomes a column.
    func addKey(_ name: String) {
        if !keys.contains(where: { $0.name == name }) { defineKey(name, persist: true) }
    }

    /// `util_fmt_obj_start`.
    func startObject(_ flags: Flags, _ name: String?) {
        var name = name
        if !options.hideMeta && !metaDone && objects.isEmpty {
            emitMeta()
            if name == nil { name = toolName }
        }
        objects.append(
            Object(
                name: name, isList: flags.contains(.list), isRow: flags.contains(.row),
                isPrefix: flags.contains(.prefix)))
        let level = objects.count
        if format.isJSON { jsonStart(level: level) }
        if level >= 2 { objects[level - 2].index += 1 }
    }

    /// `util_fmt_obj_end`: closes the innermost object, and the `meta` container with the last
    /// one (except in JSON streams, where `meta` is a document of its own).
    func endObject() {
        endInnermost()
        if objects.count == 1 && metaDone && !format.isStream { endInnermost() }
    }

    /// libutil `json_term`: closes every open object and list (the run was interrupted).
    func closeAll() {
        while !objects.isEmpty { endInnermost() }
    }

    /// `util_fmt_pair`: one key and its already formatted value.
    func pair(_ flags: Flags, _ key: String, _ value: String) {
        guard !objects.isEmpty else { return }
        if options.filter && !keys.contains(where: { $0.name == prefixed(key, full: false) }) { return }
        if options.hideInvalid && flags.contains(.invalid) {
            // A CSV row without the value gets an empty cell. libutil leaves the cell as it is,
            // so a persistent key (chpstat's `speed`) shows the previous row's value there.
            if format == .csv, keys.contains(where: { $0.name == prefixed(key, full: false) }) {
                csvRecord.set(prefixed(key, full: false), "\"\"")
            }
            return
        }
        switch format {
        case .json, .jsonSeq, .jsonl: jsonPair(flags, key, value)
        case .pairs: pairsPair(flags, key, value)
        case .csv: csvPair(flags, key, value)
        }
        objects[objects.count - 1].index += 1
    }

    // MARK: - Common

    private func emitMeta() {
        metaDone = true
        let m = meta()
        startObject([], nil)
        startObject(.prefix, "meta")
        pair(.persist, "api_level", String(m.apiLevel))
        pair([.persist, .quote], "version", m.version)
        pair([.persist, .quote], "host", m.host)
        pair(.persist, "time_epoch", String(m.timeEpoch))
        pair([.persist, .quote], "time", m.time)
        endInnermost()
        if format.isStream { endObject() }
    }

    private func endInnermost() {
        guard let object = objects.last else { return }
        let level = objects.count
        switch format {
        case .json, .jsonSeq, .jsonl: jsonEnd(object, level: level)
        case .csv: csvEnd(object, level: level)
        case .pairs: break
        }
        objects.removeLast()
    }

    private func defineKey(_ name: String, persist: Bool) {
        keys.append((name, persist))
        if format == .csv {
            csvRecord.define(name, alignment: .left, width: 0, header: options.quoteAll ? Self.csvQuote(name) : name)
            csvRecord.set(name, "\"\"")
            csvHeaderDue = true
        }
    }

    /// libutil `add_prefix`: the names of the enclosing objects (all of them with list indices
    /// when `full`, else only prefix objects), then the key, joined by dots.
    private func prefixed(_ key: String, full: Bool) -> String {
        var prefix = ""
        for object in objects {
            if !full && !object.isPrefix { continue }
            if let name = object.name {
                if !prefix.isEmpty { prefix += "." }
                prefix += name
            }
            if object.isList && full { prefix += "[\(object.index - 1)]" }
        }
        return prefix.isEmpty ? key : prefix + "." + key
    }

    /// libutil `_indent`: two blanks per level (JSON: plus the nesting); none in JSON streams.
    private func indent(_ offset: Int, level: Int) -> String {
        if format.isStream { return "" }
        var count = offset
        if format == .json && level > 0 { count += level - 1 }
        return String(repeating: " ", count: count * 2)
    }

    // MARK: - JSON

    private func jsonStart(level: Int) {
        let object = objects[level - 1]
        let parent = level >= 2 ? objects[level - 2] : nil
        if parent == nil && format == .jsonSeq { text += "\u{1e}" }
        if let parent, parent.index > 0 { text += "," + newline }
        text += indent(0, level: level)
        if let parent, !parent.isList, let name = object.name { text += Self.jsonQuote(name) + ": " }
        text += (object.isList ? "[" : "{") + newline
    }

    private func jsonEnd(_ object: Object, level: Int) {
        if object.index > 0 { text += newline }
        text += indent(0, level: level)
        text += object.isList ? "]" : "}"
        if level == 1 { text += "\n" }
    }

    private func jsonPair(_ flags: Flags, _ key: String, _ value: String) {
        let quoted: String
        if flags.contains(.invalid) {
            quoted = "null"
        } else if options.quoteAll || flags.contains(.quote) {
            quoted = Self.jsonQuote(value)
        } else {
            quoted = value
        }
        if objects[objects.count - 1].index > 0 { text += "," + newline }
        text += indent(1, level: objects.count)
        text += Self.jsonQuote(key) + ": " + quoted
    }

    // MARK: - Pairs

    private func pairsPair(_ flags: Flags, _ key: String, _ value: String) {
        let value = flags.contains(.invalid) ? "" : value
        let shown = options.quoteAll || flags.contains(.quote) ? Self.pairsQuote(value) : value
        text += (options.hidePrefix ? key : prefixed(key, full: true)) + "=" + shown + "\n"
    }

    // MARK: - CSV

    private func csvEnd(_ object: Object, level: Int) {
        guard object.isRow || (level == 1 && csvData) else { return }
        if csvHeaderDue {
            text += csvRecord.headerLine
            csvHeaderDue = false
        }
        text += csvRecord.line
        csvData = false
        for key in keys where !key.persist { csvRecord.set(key.name, "\"\"") }
    }

    private func csvPair(_ flags: Flags, _ key: String, _ value: String) {
        let value = flags.contains(.invalid) ? "" : value
        let shown = options.quoteAll || flags.contains(.quote) ? Self.csvQuote(value) : value
        let name = prefixed(key, full: false)
        let persist = flags.contains(.persist)
        if let index = keys.firstIndex(where: { $0.name == name }) {
            keys[index].persist = persist
        } else if !options.filter {
            defineKey(name, persist: persist)
        } else {
            return
        }
        csvRecord.set(name, shown)
        csvData = true
    }

    // MARK: - Quoting (libutil do_quote)

    /// JSON: `"` and `\` escaped, \b \f \n \r \t by letter, other non-printable bytes as \u00XX.
    static func jsonQuote(_ text: String) -> String {
        quote(text, escapes: "\"\"\\\\\u{08}b\u{0c}f\nn\rr\tt", hex: { "\\u" + hexDigits($0, 4) })
    }

    /// Pairs: shell-safe double quotes (`"`, `$`, `` ` ``, `\` escaped, control characters by
    /// letter or as \xXX).
    static func pairsQuote(_ text: String) -> String {
        quote(
            text, escapes: "\"\"$$``\\\\\u{07}a\u{08}b\u{1b}e\u{0c}f\nn\rr\tt\u{0b}v",
            hex: { "\\x" + hexDigits($0, 2) })
    }

    /// CSV: `"` doubled, nothing else.
    static func csvQuote(_ text: String) -> String {
        quote(text, escapes: "", hex: nil, doubling: UInt8(ascii: "\""))
    }

    /// libutil `do_quote`: each byte doubled if it is `doubling`, else escaped with a backslash
    /// and a letter if `escapes` (pairs of byte and letter, libutil's escape map) has it, else
    /// written as `hex` if not printable ASCII, else as it is.
    private static func quote(
        _ text: String, escapes: String, hex: ((UInt8) -> String)?, doubling: UInt8? = nil
    ) -> String {
        let map = Array(escapes.utf8)
        var out = [UInt8(ascii: "\"")]
        for byte in text.utf8 {
            if let doubling, byte == doubling {
                out += [byte, byte]
            } else if let at = stride(from: 0, to: map.count - 1, by: 2).first(where: { map[$0] == byte }) {
                out += [UInt8(ascii: "\\"), map[at + 1]]
            } else if let hex, !(0x20...0x7e).contains(byte) {
                out += Array(hex(byte).utf8)
            } else {
                out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
        return String(decoding: out, as: UTF8.self)
    }

    private static func hexDigits(_ byte: UInt8, _ count: Int) -> String {
        let digits = String(byte, radix: 16)
        return String(repeating: "0", count: max(0, count - digits.count)) + digits
    }
}
