// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// QEMU's reading of "modified UTF-8" (util/unicode.c): what it accepts in strings, and how
/// it shows bytes that are not valid text (as U+FFFD) when it echoes them in an error.
enum ModifiedUTF8 {
    /// Whether QEMU treats the code point as a character (no surrogates, no noncharacters).
    static func isValid(_ cp: Int) -> Bool {
        if cp < 0 || cp > 0x10FFFF { return false }
        if (0xFDD0...0xFDEF).contains(cp) || cp & 0xFFFE == 0xFFFE { return false }
        if (0xD800...0xDFFF).contains(cp) { return false }
        return true
    }

    /// Decodes one sequence at `bytes[index...]`.
    /// - Returns: the code point (-1 if invalid) and the index after what was consumed.
    static func codepoint<C: RandomAccessCollection>(_ bytes: C, at index: C.Index) -> (Int, C.Index)
    where C.Element == UInt8 {
        let minimum = [0x80, 0x800, 0x10000, 0x200000, 0x4000000]
        var p = index
        let lead = Int(bytes[p])
        p = bytes.index(after: p)
        if lead < 0x80 { return (lead, p) }
        if lead >= 0xFE || lead & 0x40 == 0 { return (-1, p) }
        var length = 0
        var mask = 0x80
        while lead & mask != 0 {
            length += 1
            mask >>= 1
        }
        var cp = lead & (mask - 1)
        for _ in 1..<length {
            guard p != bytes.endIndex, bytes[p] & 0xC0 == 0x80 else { return (-1, p) }
            cp = cp << 6 | Int(bytes[p] & 0x3F)
            p = bytes.index(after: p)
        }
        if !isValid(cp) { return (-1, p) }
        // Overlong forms are invalid, except C0 80, modified UTF-8's NUL.
        if cp < minimum[length - 2] && !(cp == 0 && length == 2) { return (-1, p) }
        return (cp, p)
    }

    /// The text QEMU prints for these bytes: each invalid sequence becomes U+FFFD.
    static func displayString<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        let array = Array(bytes)
        var scalars = String.UnicodeScalarView()
        var i = 0
        while i < array.count {
            let (cp, next) = codepoint(array, at: i)
            scalars.append(Unicode.Scalar(UInt32(cp < 0 ? 0xFFFD : cp)) ?? "\u{FFFD}")
            i = next
        }
        return String(scalars)
    }

    /// Appends `cp` as standard UTF-8 (NUL as a single byte: jansson strings carry lengths).
    static func append(_ cp: Int, to out: inout [UInt8]) {
        guard let scalar = Unicode.Scalar(UInt32(cp)) else { return }
        out.append(contentsOf: String(Character(scalar)).utf8)
    }
}
