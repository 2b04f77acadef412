// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import PathEvents

#if canImport(Glibc)
import Glibc
#endif

/// Wall-clock time for QMP event timestamps (the models have no clock of their own).
package enum EventClock {
    package static func now() -> EventTime {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return EventTime(seconds: Int(now.tv_sec), microseconds: Int(now.tv_nsec) / 1000)
    }
}
