// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import JSONValues

#if canImport(Glibc)
import Glibc
#endif

/// `{"execute":NAME,"id":K}` written straight into a byte buffer, so the hot loops never build
/// strings or JSON values.
struct RequestTemplate {
    private let prefix: [UInt8]
    /// Longest request: prefix, 20 digits, "}".
    let maxLength: Int

    init(command: String) {
        prefix = Array(("{\"execute\":" + JSON.string(command).serialized() + ",\"id\":").utf8)
        maxLength = prefix.count + 21
    }

    /// Writes the request for `id` (>= 0) at `destination`, which has room for `maxLength` bytes.
    @inline(__always)
    func write(id: Int, into destination: UnsafeMutableRawPointer) -> Int {
        prefix.withUnsafeBytes { destination.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        var length = prefix.count
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch for the digits
        let count = withUnsafeMutableBytes(of: &digits) { scratch -> Int in
            var value = UInt(id)
            var position = scratch.count
            repeat {
                position -= 1
                scratch[position] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
            } while value > 0
            let count = scratch.count - position
            (destination + length).copyMemory(from: scratch.baseAddress! + position, byteCount: count)
            return count
        }
        length += count
        destination.storeBytes(of: UInt8(ascii: "}"), toByteOffset: length, as: UInt8.self)
        return length + 1
    }
}

/// One measured run: latencies are per request, from writing it to reading its reply.
struct Measurement {
    var requests: Int
    var seconds: Double
    var stats: LatencyStats
    var errors = 0
    var firstError: String?
    var events = 0

    var opsPerSecond: Double { seconds > 0 ? Double(requests) / seconds : 0 }
}

/// The two benchmark loops over one negotiated connection.
struct BenchRunner {
    let connection: QMPClientConnection
    let template: RequestTemplate
    /// A server that sends nothing for this long (while we wait for it) is declared stuck.
    let stallMilliseconds: Int32

    /// One request at a time: the round-trip latency of an idle server.
    func sequential(warmup: Int, count: Int) throws(ClientFailure) -> Measurement {
        let request = UnsafeMutableRawPointer.allocate(byteCount: template.maxLength, alignment: 8)
        defer { request.deallocate() }
        var latencies = [UInt64](repeating: 0, count: count)
        var errors = 0
        var firstError: String?
        var events = 0
        var started = monotonicNanoseconds()
        for k in 0..<(warmup + count) {
            if k == warmup { started = monotonicNanoseconds() }
            let length = template.write(id: k, into: request)
            let sent = monotonicNanoseconds()
            try connection.writeAll(UnsafeRawBufferPointer(start: request, count: length))
            while true {
                let line = try connection.nextLine()
                let reply = ReplySummary(scanning: line)
                if reply.kind == .event {
                    events += 1
                    continue
                }
                guard reply.kind != .other else { throw unexpected(line) }
                // An id-less error can only be about our request: nothing else is outstanding.
                guard reply.id == k || (!reply.hasID && reply.kind == .error) else {
                    throw ClientFailure("\(connection.address): reply for request \(k) has the wrong id: \(text(line))")
                }
                if reply.kind == .error && k >= warmup {
                    errors += 1
                    if firstError == nil { firstError = errorText(line) }
                }
                break
            }
            if k >= warmup { latencies[k - warmup] = monotonicNanoseconds() - sent }
        }
        return Measurement(
            requests: count, seconds: Double(monotonicNanoseconds() - started) / 1e9,
            stats: LatencyStats(sorting: &latencies), errors: errors, firstError: firstError, events: events)
    }

    /// `count` requests with up to `window` in flight (0: no limit), on one thread.
    ///
    /// The socket is driven without blocking: queue requests while the window allows, send what
    /// the kernel takes, read what has arrived, and poll only when neither moved. So a server that
    /// stops reading while it works (QEMU suspends input at 8 queued requests) only makes our
    /// sends return short; replies keep being read and nothing deadlocks.
    func pipelined(count: Int, window: Int) throws(ClientFailure) -> Measurement {
        let sendTimes = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: count)
        let requestEnds = UnsafeMutableBufferPointer<Int>.allocate(capacity: count)
        let answered = UnsafeMutableBufferPointer<Bool>.allocate(capacity: count)
        answered.initialize(repeating: false)
        let outCapacity = 256 * 1024
        let out = UnsafeMutableRawPointer.allocate(byteCount: outCapacity, alignment: 16)
        defer {
            sendTimes.deallocate()
            requestEnds.deallocate()
            answered.deallocate()
            out.deallocate()
        }
        var latencies = [UInt64](repeating: 0, count: count)
        let limit = window == 0 ? Int.max : window

        var outStart = 0
        var outEnd = 0  // unsent bytes in `out`
        var queuedBytes = 0
        var sentBytes = 0  // totals over the run, to find which requests went out
        var nextID = 0  // next request to queue
        var stampNext = 0  // first request not yet completely sent
        var received = 0
        var inOrder = 0  // lowest unanswered id, for replies that carry none
        var errors = 0
        var firstError: String?
        var events = 0

        let started = monotonicNanoseconds()
        while received < count {
            if outStart == outEnd {
                outStart = 0
                outEnd = 0
            } else if outCapacity - outEnd < template.maxLength && outStart > 0 {
                out.copyMemory(from: out + outStart, byteCount: outEnd - outStart)
                outEnd -= outStart
                outStart = 0
            }
            while nextID < count && nextID - received < limit && outCapacity - outEnd >= template.maxLength {
                let length = template.write(id: nextID, into: out + outEnd)
                outEnd += length
                queuedBytes += length
                requestEnds[nextID] = queuedBytes
                nextID += 1
            }

            var progress = false
            if outEnd > outStart {
                let now = monotonicNanoseconds()
                let n = try connection.sendSome(out + outStart, count: outEnd - outStart)
                if n > 0 {
                    progress = true
                    outStart += n
                    sentBytes += n
                    // A request counts as sent when its last byte is.
                    while stampNext < nextID && requestEnds[stampNext] <= sentBytes {
                        sendTimes[stampNext] = now
                        stampNext += 1
                    }
                }
            }

            if try connection.fill(blocking: false) > 0 {
                progress = true
                let now = monotonicNanoseconds()
                while let line = connection.takeLine() {
                    let reply = ReplySummary(scanning: line)
                    if reply.kind == .event {
                        events += 1
                        continue
                    }
                    guard reply.kind != .other else { throw unexpected(line) }
                    let id: Int
                    if let given = reply.id {
                        id = given
                    } else if !reply.hasID {
                        while inOrder < count && answered[inOrder] { inOrder += 1 }
                        id = inOrder
                    } else {
                        throw ClientFailure("\(connection.address): reply with a non-integer id: \(text(line))")
                    }
                    guard id >= 0, id < stampNext, !answered[id] else {
                        throw ClientFailure("\(connection.address): reply for no outstanding request: \(text(line))")
                    }
                    answered[id] = true
                    latencies[id] = now - sendTimes[id]
                    received += 1
                    if reply.kind == .error {
                        errors += 1
                        if firstError == nil { firstError = errorText(line) }
                    }
                }
            }

            if !progress {
                var interest = Int16(POLLIN)
                if outEnd > outStart { interest |= Int16(POLLOUT) }
                do {
                    try connection.waitFor(interest, timeoutMilliseconds: stallMilliseconds)
                } catch {
                    throw ClientFailure(
                        "\(connection.address): stalled with \(received) of \(count) replies (\(stampNext) requests sent): \(error)"
                    )
                }
            }
        }
        return Measurement(
            requests: count, seconds: Double(monotonicNanoseconds() - started) / 1e9,
            stats: LatencyStats(sorting: &latencies), errors: errors, firstError: firstError, events: events)
    }

    private func text(_ line: UnsafeRawBufferPointer) -> String {
        String(decoding: line.prefix(300), as: UTF8.self)
    }

    private func unexpected(_ line: UnsafeRawBufferPointer) -> ClientFailure {
        ClientFailure("\(connection.address): expected a reply, got: \(text(line))")
    }

    /// `CLASS: desc` of an error reply (slow path: parsed once, for the report).
    private func errorText(_ line: UnsafeRawBufferPointer) -> String {
        let text = String(decoding: line, as: UTF8.self)
        guard let error = JSON.parse(text)?["error"] else { return text }
        return qmpErrorText(error)
    }
}
