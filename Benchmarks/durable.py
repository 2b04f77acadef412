#!/usr/bin/env python3
"""Durable changes at pipeline speed (issue 25): vary-path changes/s and server CPU per change,
with and without --state-dir, for one or more builds, with the same client in one run.

For each build and each mode (in memory; --state-dir in a fresh temp dir), a fresh cssd on the
embedded topology, and:
  pipelined   one connection keeping --window (64) vary-path requests outstanding, --count
              changes, alternately offline and online of 0.44 (one change each);
  one-at-a-time  one connection, a request after each reply, --count / 4 changes;
  12 conns    twelve connections at once, one at a time each, each its own chpid (forced),
              --count / 4 changes in all;
with the server's CPU (utime + stime of /proc/<pid>/stat, the whole process) over each part, per
change. Builds and modes alternate in --rounds rounds; the median of the rounds is reported.

Usage: Benchmarks/durable.py [--build LABEL=DIR ...] [--count 20000] [--rounds 3] [--window 64]
  DIR holds cssd (e.g. .build/release); default: main=.build/release.
Build first: swift build -c release --product cssd
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")


class Conn:
    """A negotiated QMP connection over a unix socket, read line by line."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""
        self.line()
        self.sock.sendall(b'{"execute":"qmp_capabilities"}')
        self.line()

    def line(self):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
                return line
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("server hung up")
            self.buf += chunk

    def lines(self):
        """Every complete line received so far (at least one)."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("server hung up")
            self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        return lines


FORCE = {"force": True}


def vary(n, chpid="0.44"):
    """vary-path of `chpid`, offline when `n` is odd; forced where the build knows `force` (the
    last-path interlock would refuse some of the twelve connections' varies of 0.40-0.4b)."""
    arguments = {"chpid": chpid, "state": "offline" if n % 2 else "online", **FORCE}
    return json.dumps({"execute": "vary-path", "arguments": arguments, "id": n}).encode()


def check(line):
    if b'"return"' not in line:
        raise RuntimeError(f"not a return: {line[:300]!r}")


def pipelined(sock, count, window):
    c = Conn(sock)
    sent = acked = 0
    while acked < count:
        batch = []
        while sent < count and sent - acked < window:
            sent += 1
            batch.append(vary(sent))
        if batch:
            c.sock.sendall(b"".join(batch))
        for line in c.lines():
            check(line)
            acked += 1
    c.sock.close()


def one_at_a_time(sock, count):
    c = Conn(sock)
    for n in range(1, count + 1):
        c.sock.sendall(vary(n))
        check(c.line())
    c.sock.close()


def connections(sock, count, clients=12):
    chpids = [f"0.{0x40 + i:02x}" for i in range(clients)]
    conns = [Conn(sock) for _ in chpids]
    per = count // clients
    barrier = threading.Barrier(clients + 1)
    failures = []

    def run(conn, chpid):
        barrier.wait()
        try:
            for n in range(1, per + 1):
                conn.sock.sendall(vary(n, chpid))
                check(conn.line())
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=run, args=(c, p)) for c, p in zip(conns, chpids)]
    for t in threads:
        t.start()
    barrier.wait()
    for t in threads:
        t.join()
    for c in conns:
        c.sock.close()
    if failures:
        raise failures[0]
    return per * clients


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15)


def start(binary, workdir, *args):
    sock = os.path.join(workdir, "cssd.sock")
    if os.path.exists(sock):
        os.unlink(sock)
    log = open(os.path.join(workdir, "cssd.log"), "ab")
    proc = subprocess.Popen([binary, "--qmp", f"unix:{sock}", *args], stdout=log, stderr=log,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            Conn(sock).sock.close()
            return proc, sock
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(open(os.path.join(workdir, "cssd.log")).read()[-2000:])
            time.sleep(0.01)


def measure(binary, tmp, state_dir, args):
    """{part: (changes/s, CPU ms per change)} for a fresh cssd."""
    extra = ["--state-dir", os.path.join(tmp, "state")] if state_dir else []
    if state_dir:
        shutil.rmtree(os.path.join(tmp, "state"), ignore_errors=True)
    proc, sock = start(binary, tmp, *extra)
    figures = {}
    try:
        probe = Conn(sock)
        FORCE["force"] = True
        probe.sock.sendall(vary(0, "0.4c"))
        if b"'force' is unexpected" in probe.line():  # an older build: no interlock, no force
            del FORCE["force"]
        probe.sock.close()
        parts = (("pipelined", lambda: pipelined(sock, args.count, args.window) or args.count),
                 ("one-at-a-time", lambda: one_at_a_time(sock, args.count // 4) or args.count // 4),
                 ("12 conns", lambda: connections(sock, args.count // 4)))
        for name, run in parts:
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            changes = run()
            elapsed, cpu = time.monotonic() - t0, cpu_seconds(proc.pid) - cpu0
            figures[name] = (changes / elapsed, cpu / changes * 1000)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", action="append", default=[], help="LABEL=DIR holding cssd")
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=int, default=64)
    args = parser.parse_args()
    builds = [b.split("=", 1) for b in args.build] or [["main", os.path.join(ROOT, ".build/release")]]
    results = {}
    with tempfile.TemporaryDirectory(prefix="durable", dir="/tmp") as tmp:
        for _ in range(args.rounds):
            for label, directory in builds:
                for state_dir in (False, True):
                    figures = measure(os.path.join(directory, "cssd"), tmp, state_dir, args)
                    for part, value in figures.items():
                        results.setdefault((label, state_dir, part), []).append(value)
    print(f"vary-path on the embedded topology, {args.count} changes pipelined ({args.window} outstanding), "
          f"{args.count // 4} one at a time and over 12 connections; median of {args.rounds} rounds; "
          "changes/s and server CPU ms per change")
    print(f"{'build':10} {'part':14} {'in memory':>20} {'--state-dir':>20} {'ratio':>8} {'CPU ratio':>10}")
    for label, _ in builds:
        for part in ("pipelined", "one-at-a-time", "12 conns"):
            memory = [statistics.median(v) for v in zip(*results[(label, False, part)])]
            durable = [statistics.median(v) for v in zip(*results[(label, True, part)])]
            print(f"{label:10} {part:14} {memory[0]:9,.0f}/s {memory[1]:6.3f} ms "
                  f"{durable[0]:9,.0f}/s {durable[1]:6.3f} ms {durable[0] / memory[0]:7.2f}x "
                  f"{durable[1] / memory[1]:9.2f}x")
    if args.rounds > 1:
        # The machine is shared: each round's rate, so that the spread is seen beside the median.
        print("changes/s of each round (in memory | --state-dir):")
        for label, _ in builds:
            for part in ("pipelined", "one-at-a-time", "12 conns"):
                rates = [" ".join(f"{rate:,.0f}" for rate, _ in results[(label, mode, part)]) for mode in (False, True)]
                print(f"{label:10} {part:14} {rates[0]} | {rates[1]}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
