// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// The two exposition formats Prometheus scrapes, chosen by the request's `Accept` header.
///
/// swift-prometheus 2.4.1 writes only the text format 0.0.4. OpenMetrics 1.0 differs from it
/// in the framing only, for the families cssd exports: the response must end with `# EOF`
/// (observed: Prometheus 2.42 marks a target down with "data does not end with # EOF" when
/// swift-prometheus' output is served as OpenMetrics), a counter family is named without its
/// `_total` suffix (`# TYPE cssd_css_crws_lost counter`, sample `cssd_css_crws_lost_total`;
/// observed: prometheus_client's OpenMetrics parser refuses `# TYPE x_total counter` with
/// "Clashing name", Prometheus 2.42 lets it pass), and `_info` families are of type `info`.
/// `openMetrics(from:)` rewrites exactly those comment lines of swift-prometheus' output and
/// appends `# EOF`; samples are copied as they are.
enum ExpositionFormat: Equatable {
    case text
    case openMetrics

    var contentType: String {
        switch self {
        case .text: "text/plain; version=0.0.4; charset=utf-8"
        case .openMetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8"
        }
    }

    /// The format an `Accept` header asks for (RFC 9110 12.5.1: media ranges with `q`
    /// weights): OpenMetrics when `application/openmetrics-text` is acceptable and weighs at
    /// least as much as `text/plain` (or `text/*`, `*/*`); otherwise the text format, which is
    /// also the answer to no header at all.
    init(accept values: [String]) {
        var openMetrics = 0.0
        var text = 0.0
        for value in values {
            for range in value.split(separator: ",") {
                let parts = range.split(separator: ";").map { $0.trimmingSpaces.lowercased() }
                guard let type = parts.first, !type.isEmpty else { continue }
                var weight = 1.0
                for parameter in parts.dropFirst() where parameter.hasPrefix("q=") {
                    weight = Double(parameter.dropFirst(2)) ?? 0
                }
                switch type {
                case "application/openmetrics-text": openMetrics = max(openMetrics, weight)
                case "text/plain", "text/*", "*/*": text = max(text, weight)
                default: break
                }
            }
        }
        self = openMetrics > 0 && openMetrics >= text ? .openMetrics : .text
    }

    /// The exposition with its families in name order. swift-prometheus keeps families in a
    /// dictionary, whose order Swift seeds per process: without this, every restart of cssd
    /// would list its families in another order. A family is its `# HELP`/`# TYPE` lines and
    /// the samples after them; its series keep their order.
    static func sortedByFamily(_ text: [UInt8]) -> [UInt8] {
        var families: [(name: ArraySlice<UInt8>, lines: Range<Int>)] = []
        var lineStart = text.startIndex
        var familyStart = lineStart
        var current: ArraySlice<UInt8>?
        while lineStart < text.endIndex {
            let lineEnd = text[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? text.endIndex
            let line = text[lineStart..<lineEnd]
            if line.starts(with: "# HELP ".utf8) || line.starts(with: "# TYPE ".utf8) {
                let name = line.dropFirst(7).prefix(while: { $0 != UInt8(ascii: " ") })
                if current.map({ !$0.elementsEqual(name) }) ?? true {
                    if let current { families.append((current, familyStart..<lineStart)) }
                    current = name
                    familyStart = lineStart
                }
            }
            lineStart = min(lineEnd + 1, text.endIndex)
        }
        if let current { families.append((current, familyStart..<text.endIndex)) }
        guard families.first?.lines.lowerBound == text.startIndex else { return text }  // not what we know
        var output: [UInt8] = []
        output.reserveCapacity(text.count)
        for family in families.sorted(by: { $0.name.lexicographicallyPrecedes($1.name) }) {
            output.append(contentsOf: text[family.lines])
            if output.last != UInt8(ascii: "\n") { output.append(UInt8(ascii: "\n")) }
        }
        return output
    }

    /// OpenMetrics 1.0 from swift-prometheus' text format (see the type's documentation).
    static func openMetrics(from text: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(text.count + 64)
        var pendingHelp: ArraySlice<UInt8>?
        var lineStart = text.startIndex
        while lineStart < text.endIndex {
            let lineEnd = text[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? text.endIndex
            let line = text[lineStart..<lineEnd]
            lineStart = lineEnd + 1
            guard line.first == UInt8(ascii: "#") else {
                output.append(contentsOf: line)
                output.append(UInt8(ascii: "\n"))
                continue
            }
            let words = line.split(separator: UInt8(ascii: " "), maxSplits: 3, omittingEmptySubsequences: false)
            if words.count >= 3, words[1].elementsEqual("HELP".utf8) {
                pendingHelp = line  // its family's TYPE line follows and decides its name
                continue
            }
            guard words.count == 4, words[1].elementsEqual("TYPE".utf8) else {
                output.append(contentsOf: line)
                output.append(UInt8(ascii: "\n"))
                continue
            }
            var name = Array(words[2])
            var type = Array(words[3])
            if type.elementsEqual("counter".utf8), name.hasSuffix("_total") {
                name.removeLast("_total".utf8.count)
            } else if type.elementsEqual("gauge".utf8), name.hasSuffix("_info") {
                name.removeLast("_info".utf8.count)
                type = Array("info".utf8)
            }
            if let help = pendingHelp {
                let helpWords = help.split(separator: UInt8(ascii: " "), maxSplits: 3, omittingEmptySubsequences: false)
                output.append(contentsOf: "# HELP ".utf8)
                output.append(contentsOf: name)
                if helpWords.count == 4 {
                    output.append(UInt8(ascii: " "))
                    output.append(contentsOf: helpWords[3])
                }
                output.append(UInt8(ascii: "\n"))
                pendingHelp = nil
            }
            output.append(contentsOf: "# TYPE ".utf8)
            output.append(contentsOf: name)
            output.append(UInt8(ascii: " "))
            output.append(contentsOf: type)
            output.append(UInt8(ascii: "\n"))
        }
        output.append(contentsOf: "# EOF\n".utf8)
        return output
    }
}

extension Array where Element == UInt8 {
    fileprivate func hasSuffix(_ suffix: String) -> Bool {
        let bytes = Array(suffix.utf8)
        return count >= bytes.count && self[(count - bytes.count)...].elementsEqual(bytes)
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var result = self
        while let first = result.first, first == " " || first == "\t" { result.removeFirst() }
        while let last = result.last, last == " " || last == "\t" { result.removeLast() }
        return result
    }
}
