// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend

/// Where the linux-sysfs backend's writes go (`status`, `configure`, `cm_enable`): the seam
/// between it and the kernel. The backend writes through `KernelAttributeWriter`; a test
/// stands in for a refusal only the kernel can give (`cm_enable` fails with EIO in a
/// partition without the authorization, which no file in a temporary directory does).
package protocol SysfsAttributeWriter: Sendable {
    /// Writes `value` to the attribute at `path` in one write(2), as echo does.
    /// - Throws: `BackendError.io` with the errno the kernel's store method returned.
    func write(_ value: String, to path: String) throws(BackendError)
}

/// The files themselves (`SysfsFiles.write`).
package struct KernelAttributeWriter: SysfsAttributeWriter {
    package init() {}

    package func write(_ value: String, to path: String) throws(BackendError) {
        try SysfsFiles.write(value, to: path)
    }
}
