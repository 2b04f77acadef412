#!/usr/bin/env python3
"""Path events at scale (issue 5's figures), measured over real sockets.

One synthetic topology (default 262,144 subchannels, 32 chpids, 8 paths each, so chpid 0.00 is
in 65,536 subchannels) from `cssctl gen-topology`, one release cssd on it, one control
connection that sends `vary-path` on 0.00, alternately offline and online (t0 is taken just
before the send), and subscribers on their own connections, read with epoll, non-blocking:

(a) 100 "chpid" subscribers (granularity chpid, chpids ["0.00"]): the vary-path reply time and
    when each subscriber's CHANNEL_PATH_CHANGED line arrives (median, p99, max over the 100),
    over --reps varies. Target: all 100 within 20 ms.
(b) 1 "subchannel" subscriber (granularity subchannel, chpids ["0.00"]): time until all 65,536
    SUBCHANNEL_PATHS_CHANGED lines arrived (lines are counted, not parsed; the first and last
    are parsed, the count must be exact, no PATH_EVENTS_DROPPED may appear and the server's
    counters must say published == delivered), bytes and events/s. Target: within 1 s.
(c) fan-out cost: N chpid subscribers for N in --fanout: reply time and time until the last
    subscriber has its event; N subchannel subscribers for N in --sc-fanout: time until all
    have all their events; per-subscriber cost as a least-squares slope.
(d) (a) again with one more subscriber, granularity subchannel, whose connection never reads
    (and, for comparison, with one that reads); afterwards the never-reader is drained and its
    counters (published, delivered, coalesced, dropped) are shown.

Times are as a Python client on the same machine sees them (its reading competes with cssd
for the CPU: on 2 cores they are upper bounds on cssd's own delivery time).

Usage: Benchmarks/path_events.py [--subchannels N] [--reps 20] [--sc-reps 5] [--fanout-reps 10]
           [--fanout 0,1,10,100,1000] [--sc-fanout 1,2,4] [--parts abcd] [--tcp] [--build-dir DIR]
       CSSD_BIN / CSSCTL_BIN override the binaries (default: BUILD_DIR/cssd, BUILD_DIR/cssctl,
       BUILD_DIR = ROOT/.build/release).
Build first (swift build takes one --product per invocation):
       swift build -c release --product cssd && swift build -c release --product cssctl
"""

import argparse
import gc
import json
import os
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHPID = "0.00"
VARY = {state: json.dumps({"execute": "vary-path", "arguments": {"chpid": CHPID, "state": state}}).encode()
        for state in ("offline", "online")}
CHPID_EVENT = b"CHANNEL_PATH_CHANGED"
DROPPED_EVENT = b"PATH_EVENTS_DROPPED"


def ms(seconds):
    return seconds * 1000.0


def percentile(values, fraction):
    """Nearest-rank percentile (p99 of 100 values is the 99th smallest)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


def slope(points):
    """Least-squares slope and intercept of (x, y) points."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0, mean_y
    b = sum((x - mean_x) * (y - mean_y) for x, y in points) / sxx
    return b, mean_y - b * mean_x


def load():
    return "load average %.2f %.2f %.2f" % os.getloadavg()


class Conn:
    """A negotiated QMP connection; blocking calls while setting up, raw bytes while measuring."""

    def __init__(self, address):
        if isinstance(address, tuple):
            self.sock = socket.create_connection(address)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(address)
        self.buf = bytearray()
        self.line()  # greeting
        self.call("qmp_capabilities")
        self.subscription = None

    def line(self):
        while True:
            at = self.buf.find(b"\n")
            if at >= 0:
                line = bytes(self.buf[:at + 1])
                del self.buf[:at + 1]
                return line
            data = self.sock.recv(1 << 20)
            if not data:
                raise RuntimeError("connection closed")
            self.buf += data

    def call(self, command, **arguments):
        self.sock.setblocking(True)
        self.sock.sendall(json.dumps({"execute": command, "arguments": arguments}).encode())
        while True:
            reply = json.loads(self.line())
            if "event" in reply:
                raise RuntimeError(f"{command}: unexpected event {reply['event']} before the reply")
            if "error" in reply:
                raise RuntimeError(f"{command}: {reply['error']}")
            return reply["return"]

    def subscribe(self, granularity):
        self.subscription = self.call("subscribe-path-events", granularity=granularity,
                                      chpids=[CHPID])["subscription"]
        return self

    def close(self):
        self.sock.close()


class Server:
    def __init__(self, cssd, topology, work, tcp=False):
        if tcp:
            with socket.socket() as free:
                free.bind(("127.0.0.1", 0))
                self.address = free.getsockname()
            listen = "tcp:%s:%d" % self.address
        else:
            self.address = os.path.join(work, "cssd.sock")
            listen = f"unix:{self.address}"
        began = time.perf_counter()
        self.proc = subprocess.Popen([cssd, "--qmp", listen, "--topology", topology, "--log-level", "warning"])
        while True:
            try:
                probe = socket.socket(socket.AF_INET if tcp else socket.AF_UNIX)
                probe.connect(self.address)
                probe.close()
                break
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("cssd exited")
                time.sleep(0.002)
        self.startup = time.perf_counter() - began
        self.state = "online"  # of CHPID; every generated path starts online

    def connect(self, granularity=None):
        conn = Conn(self.address)
        return conn.subscribe(granularity) if granularity else conn

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Run:
    """Subscribers on one server, read through one epoll selector; `vary` measures one change."""

    def __init__(self, server, control, chpid_subs=(), sc_subs=(), per_chpid=0):
        self.server = server
        self.control = control
        self.chpid_subs = list(chpid_subs)
        self.sc_subs = list(sc_subs)
        self.per_chpid = per_chpid
        self.selector = selectors.DefaultSelector()
        control.sock.setblocking(False)
        self.selector.register(control.sock, selectors.EVENT_READ, -1)
        for i, conn in enumerate(self.chpid_subs):
            conn.sock.setblocking(False)
            self.selector.register(conn.sock, selectors.EVENT_READ, i)
        for j, conn in enumerate(self.sc_subs):
            conn.sock.setblocking(False)
            self.selector.register(conn.sock, selectors.EVENT_READ, len(self.chpid_subs) + j)

    def close(self):
        self.selector.close()
        self.control.sock.setblocking(True)
        for conn in self.chpid_subs + self.sc_subs:
            conn.sock.setblocking(True)

    def vary(self, timeout=30.0):
        state = "offline" if self.server.state == "online" else "online"
        n_chpid, n_sc = len(self.chpid_subs), len(self.sc_subs)
        chpid_at = [None] * n_chpid
        chpid_buf = [b""] * n_chpid
        sc_at = [None] * n_sc
        sc_lines = [0] * n_sc
        sc_bytes = [0] * n_sc
        sc_first = [b""] * n_sc
        sc_tail = [b""] * n_sc
        sc_dropped = [False] * n_sc
        waiting_chpid, waiting_sc = n_chpid, n_sc
        reply_at, reply = None, b""
        select, perf = self.selector.select, time.perf_counter
        gc.disable()
        t0 = perf()
        self.control.sock.sendall(VARY[state])
        deadline = t0 + timeout
        try:
            while reply_at is None or waiting_chpid or waiting_sc:
                ready = select(max(0.0, deadline - perf()))
                now = perf()
                if not ready:
                    raise RuntimeError(
                        f"timeout: reply {'missing' if reply_at is None else 'in'}, {waiting_chpid} chpid and "
                        f"{waiting_sc} subchannel subscribers waiting, lines {sc_lines} of {self.per_chpid}")
                for key, _ in ready:
                    i = key.data
                    sock = key.fileobj
                    if i < 0:
                        reply += sock.recv(65536)
                        if reply_at is None and b"\n" in reply:
                            reply_at = now
                    elif i < n_chpid:
                        data = sock.recv(65536)
                        if not data:
                            raise RuntimeError(f"chpid subscriber {i} closed")
                        chpid_buf[i] += data
                        if chpid_at[i] is None and CHPID_EVENT in chpid_buf[i] and b"\n" in chpid_buf[i]:
                            chpid_at[i] = now  # readable when select returned: the line was there
                            waiting_chpid -= 1
                    else:
                        j = i - n_chpid
                        data = sock.recv(1 << 20)
                        if not data:
                            raise RuntimeError(f"subchannel subscriber {j} closed")
                        sc_bytes[j] += len(data)
                        sc_lines[j] += data.count(b"\n")
                        if len(sc_first[j]) < 512:
                            sc_first[j] += data[:512]
                        if DROPPED_EVENT in sc_tail[j][-32:] + data[:32] or DROPPED_EVENT in data:
                            sc_dropped[j] = True
                        sc_tail[j] = data[-1024:] if len(data) >= 1024 else (sc_tail[j] + data)[-1024:]
                        if sc_at[j] is None and sc_lines[j] >= self.per_chpid:
                            sc_at[j] = perf()  # counted after the read that completed it
                            waiting_sc -= 1
        finally:
            gc.enable()
        self.server.state = state
        # Checks, outside the timed part.
        reply_value = json.loads(reply.split(b"\n")[0])
        if "return" not in reply_value:
            raise RuntimeError(f"vary-path failed: {reply_value}")
        changed = reply_value["return"]["changed"]
        if changed != self.per_chpid:
            raise RuntimeError(f"vary-path changed {changed} subchannels, expected {self.per_chpid}")
        for i, data in enumerate(chpid_buf):
            lines = data.split(b"\r\n")
            event = json.loads(lines[0])
            if (len(lines) != 2 or lines[1] or event["event"] != "CHANNEL_PATH_CHANGED"
                    or event["data"]["change"] != state or event["data"]["subchannels"] != changed
                    or event["data"]["subscription"] != self.chpid_subs[i].subscription):
                raise RuntimeError(f"chpid subscriber {i}: unexpected {data[:400]!r}")
        for j in range(n_sc):
            first = json.loads(sc_first[j].split(b"\n")[0])
            last = json.loads(sc_tail[j].rstrip(b"\r\n").split(b"\n")[-1])
            for event in (first, last):
                if (event["event"] != "SUBCHANNEL_PATHS_CHANGED" or event["data"]["change"] != state
                        or event["data"]["subscription"] != self.sc_subs[j].subscription):
                    raise RuntimeError(f"subchannel subscriber {j}: unexpected {event}")
            if sc_lines[j] != self.per_chpid or not sc_tail[j].endswith(b"\n"):
                raise RuntimeError(f"subchannel subscriber {j}: {sc_lines[j]} lines, expected {self.per_chpid}")
            if sc_dropped[j]:
                raise RuntimeError(f"subchannel subscriber {j}: PATH_EVENTS_DROPPED")
        return {
            "state": state,
            "reply": reply_at - t0,
            "chpid": [at - t0 for at in chpid_at],
            "sc": [at - t0 for at in sc_at],
            "sc_bytes": sc_bytes,
            "first": first if n_sc else None,
        }

    def measure(self, reps, warmup=2):
        for _ in range(warmup):
            self.vary()
        results = []
        for _ in range(reps):
            time.sleep(0.01)
            results.append(self.vary())
        return results


def check_counters(conn, expect_exact=True):
    """The subscription's counters, from its own connection (all its events must be read)."""
    info = conn.call("query-path-event-subscriptions")[0]
    if expect_exact and (info["published"] != info["delivered"] or info["dropped"] or info["coalesced"]
                         or info["queued"]):
        raise RuntimeError(f"subscription counters: {info}")
    return info


def chpid_summary(results):
    """Per vary: reply, and median / p99 / max of the chpid subscribers' arrival; then over all."""
    replies = [ms(r["reply"]) for r in results]
    medians = [ms(statistics.median(r["chpid"])) for r in results]
    p99s = [ms(percentile(r["chpid"], 0.99)) for r in results]
    maxes = [ms(max(r["chpid"])) for r in results]
    every = [ms(t) for r in results for t in r["chpid"]]
    return {
        "reply_median": statistics.median(replies), "reply_max": max(replies),
        "median": statistics.median(every), "p99": percentile(every, 0.99), "max": max(every),
        "last_median": statistics.median(maxes), "per_vary_p99_median": statistics.median(p99s),
        "per_vary_median_median": statistics.median(medians),
        "within_20ms": sum(1 for t in every if t <= 20.0), "events": len(every),
        "replies": replies, "maxes": maxes,
    }


def print_chpid_row(label, s):
    print(f"| {label} | {s['reply_median']:.2f} ms (max {s['reply_max']:.2f}) | {s['median']:.2f} ms "
          f"| {s['p99']:.2f} ms | {s['max']:.2f} ms | {s['last_median']:.2f} ms "
          f"| {s['within_20ms']:,} / {s['events']:,} |")


CHPID_HEADER = ("| subscribers | vary-path reply (median) | event arrival median | p99 | max "
                "| last of the 100, median over varies | events within 20 ms |\n|---|---:|---:|---:|---:|---:|---:|")


def part_a(server, args, per_chpid):
    control = server.connect()
    subs = [server.connect("chpid") for _ in range(100)]
    try:
        run = Run(server, control, subs, (), per_chpid)
        results = run.measure(args.reps)
        run.close()
        s = chpid_summary(results)
        print(f"(a) 100 chpid subscribers, {args.reps} varies ({load()})")
        print(CHPID_HEADER)
        print_chpid_row("100 chpid", s)
        print("per vary, last arrival (ms): " + " ".join(f"{t:.2f}" for t in s["maxes"]))
        print("per vary, reply (ms):        " + " ".join(f"{t:.2f}" for t in s["replies"]))
        rows = [("100 chpid", s)]
        if "d" in args.parts:
            # (d) the same 100 plus one subchannel subscriber that never reads.
            never = server.connect("subchannel")
            run = Run(server, control, subs, (), per_chpid)
            results = run.measure(args.reps)
            run.close()
            d = chpid_summary(results)
            rows.append(("100 chpid + 1 subchannel never reading", d))
            never_maxes = d["maxes"]
            # Drain the never-reader and show what its queue did, then close it.
            never.sock.settimeout(2.0)
            drained, lines, dropped_seen, tail = 0, 0, 0, b""
            try:
                while True:
                    data = never.sock.recv(1 << 20)
                    if not data:
                        break
                    drained += len(data)
                    lines += data.count(b"\n")
                    joined = tail + data
                    dropped_seen += joined.count(DROPPED_EVENT)
                    tail = joined[-32:]
            except socket.timeout:
                pass
            never.sock.settimeout(None)
            info = check_counters(never, expect_exact=False)
            never.close()
            # For comparison: one subchannel subscriber that reads (its 65,536 events are written too).
            reader = server.connect("subchannel")
            run = Run(server, control, subs, [reader], per_chpid)
            results = run.measure(args.reps)
            run.close()
            r = chpid_summary(results)
            r_sc = [ms(x["sc"][0]) for x in results]
            rows.append(("100 chpid + 1 subchannel reading", r))
            reader.close()
            print(f"\n(d) the same with one more subchannel subscriber ({load()})")
            print(CHPID_HEADER)
            for label, s2 in rows:
                print_chpid_row(label, s2)
            print("never reading, per vary, last arrival (ms): " + " ".join(f"{t:.2f}" for t in never_maxes))
            print("reading, per vary, last arrival (ms):       " + " ".join(f"{t:.2f}" for t in r["maxes"]))
            print(f"the reading subchannel subscriber had its {per_chpid:,} events after {statistics.median(r_sc):.0f} ms "
                  f"(median; max {max(r_sc):.0f} ms)")
            print(f"the never-reader, drained afterwards: {lines:,} lines ({drained / 1e6:.1f} MB), "
                  f"PATH_EVENTS_DROPPED lines {dropped_seen}; counters: published {info['published']:,}, "
                  f"delivered {info['delivered']:,}, coalesced {info['coalesced']:,}, dropped {info['dropped']:,}, "
                  f"queued {info['queued']:,} (queue-limit {info['queue-limit']:,})")
        return rows
    finally:
        for conn in subs:
            conn.close()
        control.close()


def part_b(server, args, per_chpid):
    control = server.connect()
    sub = server.connect("subchannel")
    try:
        run = Run(server, control, (), [sub], per_chpid)
        results = run.measure(args.sc_reps, warmup=1)
        run.close()
        info = check_counters(sub)
        times = [ms(r["sc"][0]) for r in results]
        nbytes = results[0]["sc_bytes"][0]
        print(f"(b) 1 subchannel subscriber, {per_chpid:,} events per vary ({load()})")
        print("| vary | state | reply | all events | bytes | events/s |\n|---:|---|---:|---:|---:|---:|")
        for k, r in enumerate(results, 1):
            t = r["sc"][0]
            print(f"| {k} | {r['state']} | {ms(r['reply']):.1f} ms | {ms(t):.1f} ms | {r['sc_bytes'][0]:,} "
                  f"| {per_chpid / t:,.0f} |")
        med = statistics.median(times)
        print(f"median {med:.0f} ms, {per_chpid / med * 1000:,.0f} events/s, "
              f"{nbytes / (med / 1000) / 1e6:.0f} MB/s ({nbytes / per_chpid:.0f} B per event); "
              f"counters: published {info['published']:,} = delivered {info['delivered']:,}, "
              f"coalesced {info['coalesced']}, dropped {info['dropped']}")
        print("first event: " + json.dumps(results[0]["first"]))
        return {"times": times, "median": med, "bytes": nbytes, "results": results}
    finally:
        sub.close()
        control.close()


def part_c(server, args, per_chpid):
    rows_chpid, rows_sc = [], []
    control = server.connect()
    try:
        for n in args.fanout:
            subs = [server.connect("chpid") for _ in range(n)]
            run = Run(server, control, subs, (), per_chpid)
            results = run.measure(args.fanout_reps)
            run.close()
            reply = statistics.median(ms(r["reply"]) for r in results)
            first = statistics.median(ms(min(r["chpid"])) for r in results) if n else None
            last = statistics.median(ms(max(r["chpid"])) for r in results) if n else None
            worst = max(ms(max(r["chpid"] + [r["reply"]])) for r in results)
            rows_chpid.append((n, reply, first, last, worst))
            for conn in subs:
                conn.close()
            time.sleep(0.2)
        for n in args.sc_fanout:
            subs = [server.connect("subchannel") for _ in range(n)]
            run = Run(server, control, (), subs, per_chpid)
            results = run.measure(args.sc_fanout_reps, warmup=1)
            run.close()
            for conn in subs:
                check_counters(conn)
            reply = statistics.median(ms(r["reply"]) for r in results)
            last = statistics.median(ms(max(r["sc"])) for r in results)
            rows_sc.append((n, reply, last, max(ms(r["reply"]) for r in results), max(ms(max(r["sc"])) for r in results)))
            for conn in subs:
                conn.close()
            time.sleep(0.2)
    finally:
        control.close()
    print(f"(c) fan-out, median of {args.fanout_reps} varies per row ({load()})")
    print("| chpid subscribers | vary-path reply | first subscriber has its event | last subscriber has its event "
          "| worst of reply and events, any vary |\n|---:|---:|---:|---:|---:|")
    for n, reply, first, last, worst in rows_chpid:
        print(f"| {n:,} | {reply:.2f} ms | {'-' if first is None else f'{first:.2f} ms'} "
              f"| {'-' if last is None else f'{last:.2f} ms'} | {worst:.2f} ms |")
    if len(rows_chpid) >= 2:
        b_reply, a_reply = slope([(r[0], r[1]) for r in rows_chpid])
        with_subs = [(r[0], r[3]) for r in rows_chpid if r[3] is not None]
        print(f"slope: reply +{b_reply * 1000:.1f} us per chpid subscriber (intercept {a_reply:.2f} ms)"
              + (f", last event +{slope(with_subs)[0] * 1000:.1f} us" if len(with_subs) >= 2 else ""))
    print(f"\n| subchannel subscribers ({per_chpid:,} events each) | vary-path reply | all have all their events "
          f"| per subscriber | reply, worst | all events, worst |\n|---:|---:|---:|---:|---:|---:|")
    for n, reply, last, reply_max, last_max in rows_sc:
        print(f"| {n} | {reply:.1f} ms | {last:.0f} ms | {last / n:.0f} ms | {reply_max:.1f} ms | {last_max:.0f} ms |")
    if len(rows_sc) >= 2:
        b_reply, a_reply = slope([(r[0], r[1]) for r in rows_sc])
        b_last, a_last = slope([(r[0], r[2]) for r in rows_sc])
        print(f"slope: reply +{b_reply:.1f} ms (intercept {a_reply:.1f} ms), all events +{b_last:.0f} ms "
              f"(intercept {a_last:.0f} ms) per subchannel subscriber")
    return rows_chpid, rows_sc


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subchannels", type=int, default=262144)
    parser.add_argument("--reps", type=int, default=20, help="varies for (a) and (d)")
    parser.add_argument("--sc-reps", type=int, default=5, help="varies for (b)")
    parser.add_argument("--fanout-reps", type=int, default=10, help="varies per chpid row of (c)")
    parser.add_argument("--sc-fanout-reps", type=int, default=5, help="varies per subchannel row of (c)")
    parser.add_argument("--fanout", default="0,1,10,100,1000")
    parser.add_argument("--sc-fanout", default="1,2,4")
    parser.add_argument("--parts", default="abcd", help="which of a, b, c, d (d needs a)")
    parser.add_argument("--tcp", action="store_true", help="connect over TCP on 127.0.0.1 instead of a unix socket")
    parser.add_argument("--build-dir", default=os.path.join(ROOT, ".build/release"))
    args = parser.parse_args()
    args.fanout = [int(x) for x in args.fanout.split(",") if x]
    args.sc_fanout = [int(x) for x in args.sc_fanout.split(",") if x]
    cssd = os.environ.get("CSSD_BIN", os.path.join(args.build_dir, "cssd"))
    cssctl = os.environ.get("CSSCTL_BIN", os.path.join(args.build_dir, "cssctl"))
    for binary in (cssd, cssctl):
        if not os.access(binary, os.X_OK):
            sys.exit(f"{binary} not found: build first (swift build -c release --product cssd; "
                     f"swift build -c release --product cssctl), or pass --build-dir / CSSD_BIN / CSSCTL_BIN")

    # 1,000 subscribers and their server ends: raise the soft limit (cssd inherits it).
    needed = 2 * (max(args.fanout + [100]) + max(args.sc_fanout + [1])) + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            sys.exit(f"open files: need {needed}, hard limit {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))

    chpids, paths = 32, 8
    per_chpid = args.subchannels * paths // chpids
    with tempfile.TemporaryDirectory(prefix="cssd-path-events-", dir="/tmp") as work:
        topology = os.path.join(work, "topology.json")
        subprocess.run([cssctl, "gen-topology", "--subchannels", str(args.subchannels), "--chpids", str(chpids),
                        "--paths", str(paths), "--output", topology], check=True)
        server = Server(cssd, topology, work, tcp=args.tcp)
        try:
            print(f"cssd {cssd} over {'TCP' if args.tcp else 'a unix socket'}: {args.subchannels:,} subchannels, {per_chpid:,} on chpid {CHPID}; "
                  f"start-up {server.startup * 1000:.0f} ms; {os.cpu_count()} CPUs, {load()}\n")
            if "a" in args.parts:
                part_a(server, args, per_chpid)
                print()
            if "b" in args.parts:
                part_b(server, args, per_chpid)
                print()
            if "c" in args.parts:
                part_c(server, args, per_chpid)
                print()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
