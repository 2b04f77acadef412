// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// A chpstat exit: its status (`misc.h`: 0 OK, 1 usage error, 2 run-time error) and the message
/// chpstat prints to standard error, without the `chpstat: ` in front.
package struct ChpstatExit: Error, Equatable {
    package static let usage: Int32 = 1
    package static let runtime: Int32 = 2

    package let status: Int32
    package let message: String
    /// Whether chpstat adds "Try 'chpstat --help' for more information." (getopt errors).
    package var suggestHelp = false

    package init(status: Int32, message: String, suggestHelp: Bool = false) {
        self.status = status
        self.message = message
        self.suggestHelp = suggestHelp
    }

    package static func usage(_ message: String, suggestHelp: Bool = false) -> ChpstatExit {
        ChpstatExit(status: usage, message: message, suggestHelp: suggestHelp)
    }

    /// Stopped by a signal while waiting (not an error: the output so far is completed).
    static let interrupted = ChpstatExit(status: -1, message: "")

    package static func runtime(_ message: String) -> ChpstatExit { ChpstatExit(status: runtime, message: message) }
}

/// chpstat's command line (`chpstat_cli.h`, `main` in `chpstat.c`), parsed as its getopt_long
/// parses it: options and CHPID arguments in any order (`--` ends options), short options
/// bundled (`-an1`), long options abbreviated to any unique prefix, `--opt=value` or
/// `--opt value`; each option checked when it is met, so the first bad one is reported.
struct ChpstatOptions {
    enum Command: Equatable {
        case status, enable, disable, listColumns, listKeys, table, list

        var optionName: String {
            switch self {
            case .status: "status"
            case .enable: "enable"
            case .disable: "disable"
            case .listColumns: "list-columns"
            case .listKeys: "list-keys"
            case .table, .list: ""
            }
        }
    }

    /// Scaling of byte rates in the table (`--scale`).
    enum Scale: Equatable {
        /// `auto` / `auto-iec`: per value, with an SI or IEC suffix.
        case auto
        /// A fixed divisor, with the suffix letter (`K` ... `T`) when given as one.
        case fixed(UInt64, suffix: Character?)
    }

    var command = Command.table
    var commandSpecified = false
    /// nil: forever (`-n 0` or not given).
    var iterations: Int?
    var interval = 5
    var groups = KeyGroups()
    var groupsSpecified = false
    var all = false
    var usePrefix = true
    var noANSI = false
    var debug = false
    var format = StructuredOutput.Format.json
    var formatSpecified = false
    var cmgs: [Int] = []
    var columns: [String] = []
    var keys: [String] = []
    var scale = Scale.auto
    var scaleSpecified = false
    var iec = false
    var help = false
    var version = false
    /// CHPID arguments, as given.
    var chpidArguments: [String] = []

    var cmgsSpecified: Bool { !cmgs.isEmpty }
    var columnsSpecified: Bool { !columns.isEmpty }
    var keysSpecified: Bool { !keys.isEmpty }

    static let maxInterval = 2140

    private enum Argument { case none, required }

    private static let longOptions: [(name: String, argument: Argument, short: Character?)] = [
        ("status", .none, "s"), ("enable", .none, "e"), ("disable", .none, "d"), ("list-columns", .none, "l"),
        ("list-keys", .none, "L"), ("help", .none, "h"), ("version", .none, "v"), ("iterations", .required, "n"),
        ("interval", .required, "i"), ("columns", .required, "c"), ("keys", .required, "k"), ("all", .none, "a"),
        ("scale", .required, nil), ("cmg", .required, nil), ("format", .required, nil), ("chars", .none, nil),
        ("util", .none, nil), ("metrics", .none, nil), ("no-ansi", .none, nil), ("no-prefix", .none, nil),
        ("debug", .none, nil),
    ]

    /// chpstat's defaults.
    init() {}

    /// Parses `arguments` (without the program name).
    /// - Parameter keyNames: the keys `--keys` accepts.
    /// - Throws: `ChpstatExit` with status 1 and chpstat's message for the first bad option.
    init(_ arguments: [String], keyNames: Set<String>) throws(ChpstatExit) {
        var index = 0
        var positional: [String] = []
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" {
                positional += arguments[index...]
                break
            }
            if argument.hasPrefix("--") {
                let body = argument.dropFirst(2)
                let name = body.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
                let inline = body.contains("=") ? String(body[body.index(after: body.firstIndex(of: "=")!)...]) : nil
                let exact = Self.longOptions.filter { $0.name == name }
                let matches = exact.isEmpty ? Self.longOptions.filter { $0.name.hasPrefix(name) } : exact
                guard matches.count == 1, let option = matches.first else {
                    throw .usage("Invalid option '\(argument)'", suggestHelp: true)
                }
                var value: String?
                if option.argument == .required {
                    if let inline {
                        value = inline
                    } else if index < arguments.count {
                        value = arguments[index]
                        index += 1
                    } else {
                        throw .usage("Option '\(argument)' requires an argument", suggestHelp: true)
                    }
                } else if inline != nil {
                    throw .usage("Invalid option '\(argument)'", suggestHelp: true)
                }
                try apply(option.name, value, keyNames: keyNames)
                if help || version { return }
            } else if argument.hasPrefix("-") && argument.count > 1 {
                var letters = Substring(argument.dropFirst())
                while let letter = letters.first {
                    letters = letters.dropFirst()
                    guard let option = Self.longOptions.first(where: { $0.short == letter }) else {
                        throw .usage("Invalid option '-\(letter)'", suggestHelp: true)
                    }
                    var value: String?
                    if option.argument == .required {
                        if !letters.isEmpty {
                            value = String(letters)
                            letters = ""
                        } else if index < arguments.count {
                            value = arguments[index]
                            index += 1
                        } else {
                            throw .usage("Option '\(argument)' requires an argument", suggestHelp: true)
                        }
                    }
                    try apply(option.name, value, keyNames: keyNames)
                    if help || version { return }
                }
            } else {
                positional.append(argument)
            }
        }
        if !commandSpecified && (groupsSpecified || keysSpecified || formatSpecified) { command = .list }
        if let first = positional.first, command != .list && command != .table {
            throw .usage("Unexpected parameter specified: \(first)")
        }
        chpidArguments = positional
    }

    private mutating func apply(_ name: String, _ value: String?, keyNames: Set<String>) throws(ChpstatExit) {
        let value = value ?? ""
        switch name {
        case "help": help = true
        case "version": version = true
        case "status": try set(.status)
        case "enable": try set(.enable)
        case "disable": try set(.disable)
        case "list-columns": try set(.listColumns)
        case "list-keys": try set(.listKeys)
        case "columns":
            for column in value.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
                guard ChpstatColumns().index(named: column) != nil else {
                    throw .usage("Unknown column name '\(column)'")
                }
                columns.append(column)
            }
        case "keys":
            for key in value.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
                guard keyNames.contains(key) else { throw .usage("Unknown key '\(key)'") }
                keys.append(key)
            }
        case "cmg":
            for text in value.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
                let cmg = try Self.integer("cmg", text, 1...255)
                guard ChpstatCMG.supported.contains(cmg) else { throw .usage("Unsupported CMG '\(text)'") }
                if !cmgs.contains(cmg) { cmgs.append(cmg) }
            }
        case "scale":
            scaleSpecified = true
            scale = try parseScale(value)
        case "iterations":
            let count = try Self.integer("iterations", value, 0...Int(Int32.max))
            iterations = count < 1 ? nil : count
        case "interval": interval = try Self.integer("interval", value, 1...Self.maxInterval)
        case "chars", "util", "metrics":
            groupsSpecified = true
            groups.insert(name == "chars" ? .characteristics : name == "util" ? .utilization : .metrics)
        case "all": all = true
        case "no-ansi": noANSI = true
        case "no-prefix": usePrefix = false
        case "debug": debug = true
        case "format":
            guard let format = StructuredOutput.Format(name: value) else {
                throw .usage("Unknown format '\(value)' - supported formats: json json-seq jsonl pairs csv")
            }
            if formatSpecified && format != self.format {
                throw .usage("Option --format cannot be specified multiple times")
            }
            self.format = format
            formatSpecified = true
        default: break
        }
    }

    /// `set_cmd`: one action at most (the same one twice is fine).
    private mutating func set(_ new: Command) throws(ChpstatExit) {
        if commandSpecified && command != new {
            throw .usage("Options --\(command.optionName) and --\(new.optionName) cannot be specified together")
        }
        command = new
        commandSpecified = true
    }

    /// `parse_unit`: K, M, G, T (SI), Ki ... Ti (IEC), `auto`, `auto-iec`, or a positive number.
    private mutating func parseScale(_ text: String) throws(ChpstatExit) -> Scale {
        let letters = Array(text.uppercased())
        if letters.count == 1 || (letters.count == 2 && letters[1] == "I"),
            let power = "KMGT".firstIndex(of: letters[0]).map({ "KMGT".distance(from: "KMGT".startIndex, to: $0) })
        {
            iec = letters.count == 2
            let base: UInt64 = iec ? 1024 : 1000
            return .fixed((0...power).reduce(1) { product, _ in product * base }, suffix: letters[0])
        }
        if text == "auto-iec" {
            iec = true
            return .auto
        }
        if text == "auto" { return .auto }
        if !text.isEmpty, text.allSatisfy(\.isASCII), let number = UInt64(text), number > 0 {
            return .fixed(number, suffix: nil)
        }
        throw .usage("Unsupported scaling unit '\(text)'")
    }

    /// `parse_int`: a decimal integer (strtol: leading blanks and a sign allowed) within `range`.
    static func integer(_ option: String, _ text: String, _ range: ClosedRange<Int>) throws(ChpstatExit) -> Int {
        let trimmed = text.drop { $0 == " " || $0 == "\t" || $0 == "\n" }
        var digits = Substring(trimmed)
        var negative = false
        if let sign = digits.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw .usage("Value for option --\(option) is invalid: \(text)")
        }
        // strtol saturates; so does this, which gives the same "too large" message.
        let magnitude = Int(digits) ?? Int.max
        let value = negative ? -magnitude : magnitude
        if value < range.lowerBound {
            throw .usage("Value \(text) for option --\(option) is too small (min \(range.lowerBound))")
        }
        if value > range.upperBound {
            throw .usage("Value \(text) for option --\(option) is too large (max \(range.upperBound))")
        }
        return value
    }

    /// `parse_chpid`: `XX` or `0.XX` in hex (sscanf `%x`: optional 0x), at most ff.
    /// - Throws: `ChpstatExit` status 1 "Invalid CHPID".
    static func chpid(_ text: String) throws(ChpstatExit) -> Int {
        func hex(_ part: Substring) -> Int? {
            var digits = part.drop { $0 == " " || $0 == "\t" }
            while digits.last == " " || digits.last == "\t" || digits.last == "\n" { digits = digits.dropLast() }
            if digits.lowercased().hasPrefix("0x") && digits.count > 2 { digits = digits.dropFirst(2) }
            guard !digits.isEmpty, digits.count <= 8, let value = Int(digits, radix: 16) else { return nil }
            return value
        }
        if let value = hex(Substring(text)), value <= 0xff { return value }
        if text.hasPrefix("0."), let value = hex(text.dropFirst(2)), value <= 0xff { return value }
        throw .usage("Invalid CHPID '\(text)'")
    }
}
