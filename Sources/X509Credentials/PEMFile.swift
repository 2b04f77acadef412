// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

#if canImport(Glibc)
import Glibc
#endif

/// Reading credential files: whole small files, and the DER blocks of a PEM file (RFC 7468).
package enum PEMFile {
    /// The bytes of a regular file of at most `limit` bytes. Opened without blocking and refused
    /// unless regular: a FIFO or a device in its place must not hold the thread that reloads
    /// credentials and policies (and with it every later revocation).
    /// - Throws: `TLSCredentialsError.unreadable` with the path and strerror, or the file's kind.
    package static func read(_ path: String, limit: Int = 1 << 20) throws(TLSCredentialsError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw .unreadable(path, String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .unreadable(path, String(cString: strerror(errno))) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw .unreadable(path, "not a regular file") }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .unreadable(path, String(cString: strerror(errno)))
            }
            if n == 0 { break }
            bytes += chunk[0..<n]
            guard bytes.count <= limit else { throw .unreadable(path, "larger than \(limit) bytes") }
        }
        return bytes
    }

    /// Whether a file exists (any type).
    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// The DER contents of every `-----BEGIN label-----` block, in file order.
    static func blocks(_ text: [UInt8], label: String) -> [[UInt8]] {
        let lines = String(decoding: text, as: UTF8.self).split(whereSeparator: \.isNewline)
        var blocks: [[UInt8]] = []
        var body: String?
        for line in lines {
            let trimmed = line.trimmingCharacters()
            if trimmed == "-----BEGIN \(label)-----" {
                body = ""
            } else if trimmed == "-----END \(label)-----", let text = body {
                if let der = base64Decode(text) { blocks.append(der) }
                body = nil
            } else if body != nil {
                body! += trimmed
            }
        }
        return blocks
    }

    static func base64Decode(_ text: String) -> [UInt8]? {
        var table = [Int8](repeating: -1, count: 256)
        for (index, char) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(char)] = Int8(index)
        }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for char in text.utf8 {
            if char == UInt8(ascii: "=") { break }
            let value = table[Int(char)]
            guard value >= 0 else { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((accumulator >> UInt32(bits)) & 0xff))
            }
        }
        return out
    }
}

extension Substring {
    func trimmingCharacters() -> String {
        var slice = self[...]
        while let first = slice.first, first == " " || first == "\t" || first == "\r" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" || last == "\r" { slice = slice.dropLast() }
        return String(slice)
    }
}
