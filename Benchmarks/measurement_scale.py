#!/usr/bin/env python3
"""What the channel-measurement facility costs the linux-sysfs backend (issue 21).

One fixture tree of SIZE subchannels (default 65,536) on 256 chpids (8 paths per subchannel,
`cssctl gen-topology`, Tests/fixtures/sysfs/make_sysfs.py), each chpid with its measurement
files as Linux 6.13 shows them (Tests/fixtures/sysfs/make_measurement.py): CMGs 1-5 in turn,
the extended entry for CMG 2, 4 and 5. One release cssd (`--backend linux-sysfs:TREE`,
`--poll-interval 1000`, `--no-inotify`, `--metrics`) serves it throughout, in two phases:
1. `cm_enable` 0 (the facility off, as after boot): each tick reads `cm_enable` only;
2. `cm_enable` 1, written behind cssd's back: each tick also reads every chpid's `cmg`,
   `measurement`, `ext_measurement` (and `measurement` again when extended).
A "firmware" thread moves every CUE's timestamp every 2 s in both phases. Per phase, over
PHASE seconds (default 30): the process's CPU (idle: nothing else happens), and the poll
tick's duration, `cssd_backend_last_reading_duration_seconds`, scraped every second (a tick
is the chpids' attributes plus, in phase 2, the measurement pass). After phase 2:
`query-chpid-measurements` for all 256 chpids, 200 times back to back on one connection
(median and max, and the reply's size).
Usage: Benchmarks/measurement_scale.py [SIZE] [PHASE]
Build first: swift build -c release --product cssd && swift build -c release --product cssctl
(CSSD=..., CSSCTL=... to use other builds)
"""

import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSSD = os.environ.get("CSSD", os.path.join(ROOT, ".build/release/cssd"))
# Only gen-topology: a debug build gives the same file.
CSSCTL = os.environ.get("CSSCTL", os.path.join(ROOT, ".build/release/cssctl"))
FIXTURES = os.path.join(ROOT, "Tests/fixtures/sysfs")
sys.path.insert(0, FIXTURES)
import make_measurement  # noqa: E402


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cue(cmg, timestamp, n):
    return [0xff << 24 | timestamp & 0xffffff] + [(n * (i + 1) * 1000) & 0xffffffff for i in range(7)]


def description(timestamp, n=1):
    chpids = {}
    for chpid in range(256):
        cmg = 1 + chpid % 5
        entry = {"cmg": cmg, "cue": cue(cmg, timestamp, n), "speed_bps": "32G"}
        if cmg != 1:
            entry["cmcb"] = [0x6000_0000 | chpid, 0xf809_0000 | cmg, 32, 1000, 2000, 3000, 4000,
                             0x0400_0040 if cmg >= 4 else 64]
        if cmg in (2, 4, 5):
            entry["ext"] = [n * (i + 1) for i in range(16)]
        chpids[f"0.{chpid:02x}"] = entry
    return {"kernel": "6.13", "chpids": chpids}


def build_tree(size, work):
    topology = os.path.join(work, "t.json")
    subprocess.run([CSSCTL, "gen-topology", "--subchannels", str(size), "--chpids", "256", "--paths", "8",
                    "--cssid", "0", "--output", topology], check=True)
    with open(topology) as f:
        wrapped = {"topology": json.load(f)}
    # Every chpid configured (make_sysfs writes cmg only for those); cmg comes from the extras.
    wrapped["sysfs"] = {"chpids": {f"0.{c:02x}": {"cmg": 2} for c in range(256)}}
    desc = os.path.join(work, "d.json")
    with open(desc, "w") as f:
        json.dump(wrapped, f)
    tree = os.path.join(work, "sys")
    began = time.perf_counter()
    subprocess.run([sys.executable, os.path.join(FIXTURES, "make_sysfs.py"), desc, tree], check=True)
    d = description(1)
    d["cm_enable"] = 0
    make_measurement.build(d, tree)
    print(f"  tree of {size:,} built in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    return tree


class Firmware(threading.Thread):
    """Moves every chpid's CUE timestamp and counters every 2 s, as firmware does."""

    def __init__(self, tree):
        super().__init__(daemon=True)
        self.tree = tree
        self.stop = threading.Event()

    def run(self):
        n = 1
        while not self.stop.wait(2.0):
            n += 1
            css0 = os.path.join(self.tree, "devices", "css0")
            for chpid in range(256):
                path = os.path.join(css0, f"chp0.{chpid:02x}", "measurement")
                os.chmod(path, 0o600)
                with open(path, "wb") as f:
                    f.write(struct.pack(">8I", *cue(1 + chpid % 5, n * 15625, n)))
                os.chmod(path, 0o400)


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("cssd_backend_last_reading_duration_seconds"):
                return float(line.rsplit(" ", 1)[1])
    return None


def query_times(sock, n=200):
    """query-chpid-measurements (every chpid) n times on one connection: times in ms, reply bytes."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b'{"execute":"qmp_capabilities"}')
    f.readline()
    times, size = [], 0
    for _ in range(n):
        t = time.perf_counter()
        s.sendall(b'{"execute":"query-chpid-measurements"}')
        line = f.readline()
        times.append((time.perf_counter() - t) * 1000)
        size = len(line)
    reply = json.loads(line)["return"]
    available = sum(1 for p in reply["channel-paths"] if p["available"])
    s.close()
    return times, size, len(reply["channel-paths"]), available


def phase(proc, port, seconds):
    ticks = []
    c0, t0 = cpu_seconds(proc.pid), time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end:
        time.sleep(1.0)
        value = scrape(port)
        if value:
            ticks.append(value * 1000)
    cpu = (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0) * 100
    return cpu, ticks


def main():
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 65536
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 30
    work = tempfile.mkdtemp(prefix="cssd-cm-", dir=os.environ.get("BENCH_DIR", "/tmp"))
    proc = None
    firmware = None
    try:
        tree = build_tree(size, work)
        sock = os.path.join(work, "s.sock")
        port = free_port()
        proc = subprocess.Popen([CSSD, "--qmp", f"unix:{sock}", "--backend", f"linux-sysfs:{tree}", "--no-inotify",
                                 "--kernel-log", "none", "--metrics", f"tcp:127.0.0.1:{port}",
                                 "--log-level", "warning"])
        deadline = time.monotonic() + 300
        while True:
            try:
                scrape(port)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("cssd did not start")
                time.sleep(0.05)
        firmware = Firmware(tree)
        firmware.start()
        time.sleep(3)
        off_cpu, off_ticks = phase(proc, port, seconds)
        with open(os.path.join(tree, "devices", "css0", "cm_enable"), "w") as f:
            f.write("1\n")
        time.sleep(3)
        on_cpu, on_ticks = phase(proc, port, seconds)
        qtimes, qsize, qpaths, qavailable = query_times(sock)
        print(f"| subchannels | chpids measured | phase | idle CPU | poll tick median / p90 / max (n) |")
        print("|---:|---:|---|---:|---|")
        for name, cpu, ticks in (("cm_enable 0", off_cpu, off_ticks), ("cm_enable 1", on_cpu, on_ticks)):
            ticks.sort()
            p90 = ticks[int(len(ticks) * 0.9)] if ticks else float("nan")
            print(f"| {size:,} | {256 if name.endswith('1') else 0} | {name} | {cpu:.2f} % "
                  f"| {statistics.median(ticks):.2f} / {p90:.2f} / {max(ticks):.2f} ms ({len(ticks)}) |")
        print(f"extra per tick (medians): {statistics.median(on_ticks) - statistics.median(off_ticks):.2f} ms; "
              f"extra idle CPU: {on_cpu - off_cpu:.2f} points")
        print(f"query-chpid-measurements, {qpaths} chpids ({qavailable} with metrics), {qsize:,} bytes: "
              f"median {statistics.median(qtimes):.2f} ms, max {max(qtimes):.2f} ms ({len(qtimes)} queries)")
    finally:
        if firmware:
            firmware.stop.set()
        if proc:
            proc.terminate()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
