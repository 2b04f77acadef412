// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

#if canImport(Glibc)
import Glibc
#endif

/// Standard output through write(2): each line goes out whole as soon as it is made.
enum StandardOutput {
    static func writeLine(_ text: String) throws {
        var line = text + "\n"
        try line.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
    }

    static func writeLine(_ bytes: UnsafeRawBufferPointer) throws {
        // One write for line and newline, so that a signal cannot split them.
        var line = [UInt8](bytes)
        line.append(UInt8(ascii: "\n"))
        try line.withUnsafeBytes { try write($0) }
    }

    private static func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(1, bytes.baseAddress! + offset, bytes.count - offset)
            if n > 0 {
                offset += n
                continue
            }
            guard n < 0 && errno == EINTR else { throw ClientFailure.system("write to standard output") }
            // Stop only between lines: a line begun is finished.
            if Interruption.wasCaught && offset == 0 { throw Interrupted() }
        }
    }
}
