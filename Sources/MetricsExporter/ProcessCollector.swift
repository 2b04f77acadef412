// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import Prometheus

#if canImport(Glibc)
import Glibc
#endif

/// The `process_*` families every Prometheus client library exports (client_golang's process
/// collector, the Python client's), read from `/proc/self` at each scrape: CPU seconds, resident
/// and virtual memory, start time, open and maximum descriptors. The names, units and help
/// follow client_golang, so dashboards and alerts written for any exporter work unchanged.
///
/// procfs files are made by the kernel on read, from memory: reading them does not wait for a
/// device, so this runs on the event loop with the rest of the scrape. A file that cannot be
/// read leaves its series as they were.
final class ProcessCollector {
    private let cpu: Counter
    private let resident: Gauge
    private let virtual: Gauge
    private let start: Gauge
    private let openFDs: Gauge
    private let maxFDs: Gauge
    private var cpuSeconds = 0.0

    init(registry: PrometheusCollectorRegistry) {
        cpu = registry.makeCounter(
            descriptor: .init(
                namespace: "process", metricName: "cpu", unitName: "seconds_total",
                helpText: "Total user and system CPU time spent in seconds."))
        resident = registry.makeGauge(
            descriptor: .init(
                namespace: "process", metricName: "resident_memory", unitName: "bytes",
                helpText: "Resident memory size in bytes."))
        virtual = registry.makeGauge(
            descriptor: .init(
                namespace: "process", metricName: "virtual_memory", unitName: "bytes",
                helpText: "Virtual memory size in bytes."))
        start = registry.makeGauge(
            descriptor: .init(
                namespace: "process", metricName: "start_time", unitName: "seconds",
                helpText: "Start time of the process since unix epoch in seconds."))
        openFDs = registry.makeGauge(
            descriptor: .init(
                namespace: "process", metricName: "open_fds", helpText: "Number of open file descriptors."))
        maxFDs = registry.makeGauge(
            descriptor: .init(
                namespace: "process", metricName: "max_fds", helpText: "Maximum number of open file descriptors."))
        if let boot = Self.bootTime(), let stat = Self.stat() {
            start.set(to: boot + stat.startTicks / Self.ticksPerSecond)
        }
        collect()
    }

    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    func collect() {
        if let stat = Self.stat() {
            let seconds = (stat.utime + stat.stime) / Self.ticksPerSecond
            if seconds > cpuSeconds {
                cpu.increment(by: seconds - cpuSeconds)
                cpuSeconds = seconds
            }
            virtual.set(to: stat.vsize)
            resident.set(to: stat.rss * Double(sysconf(Int32(_SC_PAGESIZE))))
        }
        if let count = Self.openDescriptors() { openFDs.set(to: Double(count)) }
        var limit = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            maxFDs.set(to: Double(limit.rlim_cur))
        }
    }

    /// Fields of `/proc/self/stat` (proc(5)): utime 14, stime 15, starttime 22, vsize 23, rss 24,
    /// counted after the command name, which is in parentheses and may hold spaces.
    static func stat() -> (utime: Double, stime: Double, startTicks: Double, vsize: Double, rss: Double)? {
        guard let text = read("/proc/self/stat"), let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state).
        func field(_ number: Int) -> Double? { fields.count > number - 3 ? Double(fields[number - 3]) : nil }
        guard let utime = field(14), let stime = field(15), let startTicks = field(22), let vsize = field(23),
            let rss = field(24)
        else { return nil }
        return (utime, stime, startTicks, vsize, rss)
    }

    /// `btime` of `/proc/stat`: the boot time, seconds since the epoch.
    static func bootTime() -> Double? {
        guard let text = read("/proc/stat") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst("btime ".count))
        }
        return nil
    }

    static func openDescriptors() -> Int? {
        guard let directory = opendir("/proc/self/fd") else { return nil }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            if entry.pointee.d_name.0 != UInt8(ascii: ".") { count += 1 }
        }
        return count - 1  // the descriptor opendir holds
    }

    private static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
