// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

#if canImport(Glibc)
import Glibc
#endif

/// printf-style conversions done by the C library itself, so that numbers come out exactly as
/// chpstat's `printf` prints them (`%.1f` rounding, `%*s` padding).
enum CFormat {
    /// `vsnprintf(format, arguments)` with a buffer as large as needed.
    static func string(_ format: String, _ arguments: CVarArg...) -> String {
        withVaList(arguments) { first in
            var buffer = [CChar](repeating: 0, count: 64)
            let needed = Int(vsnprintf(&buffer, buffer.count, format, first))
            if needed < buffer.count { return String(cString: buffer) }
            buffer = [CChar](repeating: 0, count: needed + 1)
            return withVaList(arguments) { again in
                _ = vsnprintf(&buffer, buffer.count, format, again)
                return String(cString: buffer)
            }
        }
    }

    /// `%.<precision>f`.
    static func fixed(_ value: Double, precision: Int) -> String {
        string("%.*f", Int32(precision), value)
    }

    /// `%*s`: right-aligned in `width` bytes, never cut.
    static func right(_ text: String, _ width: Int) -> String {
        let count = text.utf8.count
        return count >= width ? text : String(repeating: " ", count: width - count) + text
    }

    /// `%-*s`: left-aligned in `width` bytes, never cut.
    static func left(_ text: String, _ width: Int) -> String {
        let count = text.utf8.count
        return count >= width ? text : text + String(repeating: " ", count: width - count)
    }
}
