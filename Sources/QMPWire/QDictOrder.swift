// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// The iteration order of QEMU's QDict (qobject/qdict.c): 512 buckets by `tdb_hash`, each
/// bucket a list with the most recently inserted key first.
package enum QDictOrder {
    static func bucket(_ key: String) -> Int {
        let bytes = Array(key.utf8)
        var value = 0x238F_13AF &* UInt32(truncatingIfNeeded: bytes.count)
        for (i, byte) in bytes.enumerated() {
            value = value &+ (UInt32(byte) << UInt32((i * 5) % 24))
        }
        return Int((1_103_515_243 &* value &+ 12345) % 512)
    }

    /// Keys in insertion order in, QDict iteration order out.
    package static func iterationOrder(_ keys: [String]) -> [String] {
        keys.enumerated()
            .map { (bucket: bucket($0.element), index: $0.offset, key: $0.element) }
            .sorted { $0.bucket != $1.bucket ? $0.bucket < $1.bucket : $0.index > $1.index }
            .map(\.key)
    }
}
