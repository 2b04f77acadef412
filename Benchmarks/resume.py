#!/usr/bin/env python3
"""Resume and state figures (issue 13), measured over real sockets against a release cssd.

(a) durable changes/s: vary-path round trips on the embedded topology, alternately offline and
    online, one connection and --clients connections at once (each its own chpid), with
    --state-dir and without it, in one run;
(b) the same for a vary of a chpid shared by 65,536 subchannels (cssctl gen-topology
    --subchannels 65536 --chpids 8 --paths 8), with and without --state-dir;
(c) resume of --journal changes (default 100,000): time from sending subscribe-path-events
    {since: {epoch, sequence: 0}} until the last replayed event is read, and until a live
    change made right after the subscribe arrives (time until live);
(d) restart with a state dir after --restart-changes changes (default 1,000,000): the time from
    starting cssd until its socket answers, and the time cssd logs for the restore, after a
    SIGKILL (snapshot + log tail) and after a clean stop (snapshot only); and, after the SIGKILL
    restart, resume of the --journal newest changes across it (from the journal table): time
    until live.

Usage: Benchmarks/resume.py [--parts abcd] [--clients 12] [--round-trips 2000]
           [--big-round-trips 40] [--journal 100000] [--restart-changes 1000000] [--build-dir DIR]
           [--state-args '--state-snapshot-every N']
Build first: swift build -c release --product cssd && swift build -c release --product cssctl
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Conn:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = bytearray()
        self.line()
        self.call("qmp_capabilities")

    def line(self):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("server hung up")
            self.buf += chunk

    def send(self, command, **arguments):
        request = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        self.sock.sendall(json.dumps(request).encode())

    def reply(self):
        while True:
            line = self.line()
            if line.startswith(b'{"timestamp"'):
                continue
            message = json.loads(line)
            if "error" in message:
                raise RuntimeError(message)
            return message["return"]

    def call(self, command, **arguments):
        self.send(command, **arguments)
        return self.reply()


def start(binary, workdir, *args):
    sock = os.path.join(workdir, "cssd.sock")
    if os.path.exists(sock):
        os.unlink(sock)
    log = open(os.path.join(workdir, "cssd.log"), "ab")
    t0 = time.monotonic()
    proc = subprocess.Popen([binary, "--qmp", f"unix:{sock}", *args], stdout=log, stderr=log,
                            start_new_session=True)
    while True:
        try:
            Conn(sock).sock.close()
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(open(os.path.join(workdir, "cssd.log")).read()[-2000:])
            time.sleep(0.005)
    return proc, sock, time.monotonic() - t0


def stop(proc, kill=False):
    proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    proc.wait()


def round_trips(sock, chpids, count):
    """count varies per connection, one connection per chpid, all at once: changes/s."""
    conns = [Conn(sock) for _ in chpids]
    barrier = threading.Barrier(len(chpids) + 1)

    def run(conn, chpid):
        barrier.wait()
        for n in range(count):
            # force: with four or more connections, 0.40-0.43 may all be offline at once, the
            # last paths of 42 DASDs in use, which the last-path interlock refuses otherwise.
            conn.call("vary-path", chpid=chpid, state="offline" if n % 2 == 0 else "online", force=True)

    threads = [threading.Thread(target=run, args=(c, p)) for c, p in zip(conns, chpids)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    for c in conns:
        c.sock.close()
    return count * len(chpids) / elapsed, elapsed


def part_a(binary, args, tmp):
    chpids = [f"0.{0x40 + i:02x}" for i in range(args.clients)]
    print(f"(a) vary-path round trips, embedded topology ({args.round_trips} per connection)")
    for label, extra in (("without --state-dir", []), ("with --state-dir", ["--state-dir", f"{tmp}/a-state"])):
        proc, sock, _ = start(binary, tmp, *extra)
        try:
            one, _ = round_trips(sock, chpids[:1], args.round_trips)
            many, _ = round_trips(sock, chpids, args.round_trips)
        finally:
            stop(proc)
        print(f"    {label:22} 1 connection: {one:9.0f} changes/s   {len(chpids)} connections: {many:9.0f} changes/s")


def part_b(binary, cssctl, args, tmp):
    topology = f"{tmp}/big.json"
    subprocess.run([cssctl, "gen-topology", "--subchannels", "65536", "--chpids", "8", "--paths", "8",
                    "--output", topology], check=True, stdout=subprocess.DEVNULL)
    print(f"(b) vary-path on a chpid shared by 65,536 subchannels ({args.big_round_trips} round trips)")
    for label, extra in (("without --state-dir", []), ("with --state-dir", ["--state-dir", f"{tmp}/b-state"])):
        proc, sock, _ = start(binary, tmp, "--topology", topology, *extra)
        try:
            rate, elapsed = round_trips(sock, ["0.00"], args.big_round_trips)
        finally:
            stop(proc)
        print(f"    {label:22} {rate:9.1f} changes/s ({elapsed / args.big_round_trips * 1000:.2f} ms per change)")


def measure_resume(sock):
    """Subscribes from before the oldest change held, makes a live change right after: the time
    until the last replayed event, and until the live one, with the replayed event count."""
    writer = Conn(sock)
    journal = writer.call("query-path-event-journal")
    sub = Conn(sock)
    t0 = time.monotonic()
    sub.send("subscribe-path-events", since={"epoch": journal["epoch"], "sequence": journal["oldest"] - 1})
    # Live, right after the subscribe; forced: 0.4c is the last path of 0.0.3000-3001 (0.4d is
    # in standby), which the last-path interlock refuses otherwise.
    writer.send("vary-path", chpid="0.4c", state="offline", force=True)
    replayed = 0
    t_replayed = t_live = None
    newest = journal["newest"]
    while t_live is None:
        line = sub.line()
        if not line.startswith(b'{"timestamp"'):
            continue
        data = json.loads(line)["data"]
        if data["sequence"] <= newest:
            replayed += 1
            if data["sequence"] == newest:
                t_replayed = time.monotonic() - t0
        else:
            t_live = time.monotonic() - t0
    writer.reply()
    return journal["held"], replayed, t_replayed, t_live


def part_c(binary, args, tmp):
    proc, sock, _ = start(binary, tmp, "--event-journal", str(args.journal))
    try:
        chpids = [f"0.{0x40 + i:02x}" for i in range(args.clients)]
        per = -(-args.journal // len(chpids))
        round_trips(sock, chpids, per)
        held, replayed, t_replayed, t_live = measure_resume(sock)
    finally:
        stop(proc)
    print(f"(c) resume of {held:,} journaled changes: all replayed after {t_replayed * 1000:.0f} ms "
          f"({replayed:,} events), live after {t_live * 1000:.0f} ms")


def restart(binary, tmp, state, args):
    open(os.path.join(tmp, "cssd.log"), "w").close()
    proc, sock, ready = start(binary, tmp, "--state-dir", state, "--event-journal", str(args.journal),
                              *args.state_args)
    journal = Conn(sock).call("query-path-event-journal")
    log = open(os.path.join(tmp, "cssd.log")).read()
    took = re.search(r"took=([0-9.]+) seconds", log)
    split = re.search(r"reading=([0-9.]+) seconds.*replaying=([0-9.]+) seconds", log)
    commands = re.search(r"commands=([0-9]+)", log)
    print(f"    restart: socket answers after {ready:.2f} s; restore took {took.group(1) if took else '?'} s "
          f"(newest {journal['newest']:,}, journal {journal['held']:,} held, "
          f"{commands.group(1) if commands else '?'} commands replayed"
          + (f"; reading {float(split.group(1)):.2f} s, replaying {float(split.group(2)):.2f} s)" if split else ")"))
    return proc, sock, journal


def part_d(binary, args, tmp):
    state = f"{tmp}/d-state"
    proc, sock, _ = start(binary, tmp, "--state-dir", state, "--event-journal", str(args.journal), *args.state_args)
    chpids = [f"0.{0x40 + i:02x}" for i in range(args.clients)]
    per = -(-args.restart_changes // len(chpids))
    rate, elapsed = round_trips(sock, chpids, per)
    newest = Conn(sock).call("query-path-event-journal")["newest"]
    stop(proc, kill=True)
    size = sum(os.path.getsize(os.path.join(state, f)) for f in os.listdir(state))
    print(f"(d) {newest:,} durable changes made in {elapsed:.1f} s ({rate:.0f}/s, {len(chpids)} connections); "
          f"state dir {size / 1e6:.0f} MB; SIGKILL")
    proc, sock, journal = restart(binary, tmp, state, args)
    try:
        assert journal["newest"] == newest, (journal, newest)
        held, replayed, t_replayed, t_live = measure_resume(sock)
        print(f"    resume across the restart of {held:,} journaled changes: all replayed after "
              f"{t_replayed * 1000:.0f} ms ({replayed:,} events), live after {t_live * 1000:.0f} ms")
    finally:
        t0 = time.monotonic()
        stop(proc)
        print(f"    clean stop (writes a snapshot) took {time.monotonic() - t0:.2f} s")
    proc, sock, journal = restart(binary, tmp, state, args)
    stop(proc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="abcd")
    ap.add_argument("--clients", type=int, default=12)
    ap.add_argument("--round-trips", type=int, default=2000)
    ap.add_argument("--big-round-trips", type=int, default=40)
    ap.add_argument("--journal", type=int, default=100_000)
    ap.add_argument("--restart-changes", type=int, default=1_000_000)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, ".build", "release"))
    ap.add_argument("--state-args", default="", help="more cssd options for (d), e.g. '--state-snapshot-every 0'")
    args = ap.parse_args()
    args.state_args = args.state_args.split()
    binary = os.environ.get("CSSD_BIN", os.path.join(args.build_dir, "cssd"))
    cssctl = os.environ.get("CSSCTL_BIN", os.path.join(args.build_dir, "cssctl"))
    tmp = tempfile.mkdtemp(prefix="rsb", dir="/tmp")
    try:
        if "a" in args.parts:
            part_a(binary, args, tmp)
        if "b" in args.parts:
            part_b(binary, cssctl, args, tmp)
        if "c" in args.parts:
            part_c(binary, args, tmp)
        if "d" in args.parts:
            part_d(binary, args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
