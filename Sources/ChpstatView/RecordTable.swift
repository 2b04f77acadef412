// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// A record of named fields printed as s390-tools' libutil prints one (`util_rec.c`), in the two
/// layouts chpstat uses: `wide` (a table row: fields padded to their width, `%*s` or `%-*s`,
/// one blank between fields, never cut, trailing blanks kept) and `csv` (fields joined by the
/// separator, as they are). Setting a field keeps its value until it is set again.
struct RecordTable {
    enum Layout {
        case wide
        case csv(separator: String)
    }

    enum Alignment {
        case left
        case right
    }

    struct Field {
        let key: String
        let header: String
        let alignment: Alignment
        let width: Int
        var value: String?
    }

    let layout: Layout
    private(set) var fields: [Field] = []

    init(_ layout: Layout) { self.layout = layout }

    /// `util_rec_def`: adds a field at the end.
    mutating func define(_ key: String, alignment: Alignment, width: Int, header: String) {
        fields.append(Field(key: key, header: header, alignment: alignment, width: width, value: nil))
    }

    /// `util_rec_set`: the first field named `key` gets `value`; an unknown key is ignored.
    mutating func set(_ key: String, _ value: String) {
        if let index = fields.firstIndex(where: { $0.key == key }) { fields[index].value = value }
    }

    /// `util_rec_print_hdr`: the header line, with its newline.
    var headerLine: String {
        switch layout {
        case .wide:
            return fields.map { pad($0.header, $0) }.joined(separator: " ") + "\n"
        case .csv(let separator):
            return fields.map(\.header).joined(separator: String(separator.prefix(1))) + "\n"
        }
    }

    /// `util_rec_print`: the values, with a newline. A field never set prints as empty (libutil
    /// would print "(null)" through glibc; chpstat sets every field before printing).
    var line: String {
        switch layout {
        case .wide:
            return fields.map { pad($0.value ?? "", $0) }.joined(separator: " ") + "\n"
        case .csv(let separator):
            return fields.map { $0.value ?? "" }.joined(separator: String(separator.prefix(1))) + "\n"
        }
    }

    private func pad(_ text: String, _ field: Field) -> String {
        field.alignment == .left ? CFormat.left(text, field.width) : CFormat.right(text, field.width)
    }
}
