#!/usr/bin/env python3
"""What vfio-ccw discovery costs the linux-sysfs backend (issue 24), in one run.

One synthetic tree of N subchannels (default 65,536; 32 chpids, 8 paths each, as
Benchmarks/sysfs_scale.py builds it), served twice by cssd (`--no-inotify`, `--kernel-log none`,
default --poll-interval 1000 ms and --sweep-interval 30000 ms, `--metrics`):
  A. as built: no subchannel bound to vfio_ccw;
  B. the same tree with P subchannels (default 1,024, every N/P-th) bound to vfio_ccw as Linux
     shows it (ccw device and vpm gone, `driver` -> vfio_ccw, an mdev with an IOMMU group) and
     held by G guests (default 64), P/G each, named in libvirt status files under a `--run-root`
     (the shipped unit's case: /proc hides the QEMUs), an empty `--proc-root`.
Per run: the poll tick's duration (`cssd_backend_last_reading_duration_seconds`, sampled once a
second for 10 s: median / max), idle CPU over 10 s, back-to-back query-version for 10 s
(p50 / p99 / max), query-host-passthrough's reply time (B). In B, a chpid's `status` written
offline behind cssd's back, until CHANNEL_PATH_CHANGED arrives, until the guest's consolidated
HOST_GUEST_PATH_CHANGED arrives (a second connection, granularity guest), and until one
query-host-passthrough for that guest has answered (API/linux-sysfs.md section 8).
Usage: Benchmarks/vfio_sysfs.py [N [P [G]]]   CSSD/CSSCTL: binaries (default .build/release, else
.build/debug). Trees are built under $BENCH_DIR (default /dev/shm when writable)."""

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Tests", "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import vfio  # noqa: E402
from sysfs_scale import Client, cpu_seconds  # noqa: E402


def binary(name):
    for kind in ("release", "debug"):
        path = os.environ.get(name.upper()) or os.path.join(ROOT, ".build", kind, name)
        if os.path.exists(path):
            return path
    raise SystemExit(f"{name} not built")


CSSD = binary("cssd")
CSSCTL = binary("cssctl")
MAKE_SYSFS = os.path.join(ROOT, "Tests/fixtures/sysfs/make_sysfs.py")


def build_tree(size, work):
    topology = os.path.join(work, "t.json")
    subprocess.run([CSSCTL, "gen-topology", "--subchannels", str(size), "--chpids", "32", "--paths", "8",
                    "--cssid", "0", "--output", topology], check=True)
    with open(topology) as f:
        wrapped = {"topology": json.load(f)}
    with open(os.path.join(work, "d.json"), "w") as f:
        json.dump(wrapped, f)
    tree = os.path.join(work, "sys")
    began = time.perf_counter()
    subprocess.run([sys.executable, MAKE_SYSFS, os.path.join(work, "d.json"), tree], check=True)
    print(f"tree of {size:,} built in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    return tree


def pass_through(tree, run, size, count, guests):
    """Binds every size/count-th subchannel, an mdev each, count/guests per libvirt domain."""
    names = sorted(n for n in os.listdir(os.path.join(tree, "devices", "css0")) if re.match(r"0\.\d\.[0-9a-f]{4}$", n))
    chosen = names[:: size // count][:count]
    held = {}
    for n, sch in enumerate(chosen):
        vfio.bind_vfio(tree, sch)
        vfio.create_mdev(tree, sch, vfio.uuid_of(n + 1), n)
        held.setdefault(f"guest-{n % guests:02d}", []).append(vfio.uuid_of(n + 1))
    for g, (name, uuids) in enumerate(sorted(held.items())):
        vfio.libvirt_domain(run, name, 10000 + g, uuids)
    return chosen


def start(tree, work, run, proc):
    sock = os.path.join(work, "s.sock")
    if os.path.exists(sock):
        os.remove(sock)
    log = open(os.path.join(work, "cssd.log"), "w")
    server = subprocess.Popen([CSSD, "--qmp", f"unix:{sock}", "--backend", f"linux-sysfs:{tree}", "--no-inotify",
                               "--kernel-log", "none", "--metrics", "tcp:127.0.0.1:0", "--run-root", run,
                               "--proc-root", proc], stderr=log, stdout=log)
    began = time.monotonic()
    while True:
        try:
            probe = socket.socket(socket.AF_UNIX)
            probe.connect(sock)
            probe.close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() - began > 600:
                raise RuntimeError("cssd did not start")
            time.sleep(0.05)
    port = None
    while port is None:
        with open(os.path.join(work, "cssd.log")) as f:
            m = re.search(r"address=tcp:127\.0\.0\.1:(\d+)\b.*metrics listening", f.read())
        port = m and int(m.group(1))
        time.sleep(0.1)
    return server, sock, port


def tick_seconds(port):
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
    m = re.search(r"^cssd_backend_last_reading_duration_seconds\{[^}]*\} (\S+)$", body, re.M)
    return float(m.group(1))


def measure(tree, work, run, proc, bound):
    server, sock, port = start(tree, work, run, proc)
    result = {}
    try:
        client = Client(sock)
        time.sleep(3)
        ticks = []
        c0, t0 = cpu_seconds(server.pid), time.monotonic()
        for _ in range(10):
            time.sleep(1)
            ticks.append(tick_seconds(port) * 1000)
        result["idle_cpu"] = (cpu_seconds(server.pid) - c0) / (time.monotonic() - t0) * 100
        result["tick_ms"] = (statistics.median(ticks), max(ticks))
        lat = []
        end = time.monotonic() + 10
        while time.monotonic() < end:
            t = time.perf_counter()
            client.sock.sendall(b'{"execute":"query-version"}')
            client.readline()
            lat.append(time.perf_counter() - t)
        lat.sort()
        result["version_ms"] = (lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000, lat[-1] * 1000)
        if bound:
            t = time.perf_counter()
            entries = client.call("query-host-passthrough")
            result["query_ms"] = (time.perf_counter() - t) * 1000
            result["listed"] = len(entries)
            result["libvirt"] = sum(e.get("holder") == "libvirt" for e in entries)
            entries = [e for e in entries if e.get("holder") == "libvirt"]
            sub = Client(sock)
            sub.call("subscribe-path-events", granularity="chpid")
            gsub = Client(sock)
            gsub.call("subscribe-path-events", granularity="guest")
            attributed = []
            for i in range(3):
                target = entries[i * 97 % len(entries)]
                chpid = target["chpids"][0]
                path = os.path.join(tree, "devices", "css0", "chp" + chpid, "status")
                time.sleep(0.37 * (i + 1))  # a different point of the poll interval each time
                t = time.monotonic()
                with open(path, "w") as f:
                    f.write("offline\n")
                got = sub.wait_event(lambda e: e["event"] == "CHANNEL_PATH_CHANGED" and e["data"]["chpid"] == chpid, 30)
                event_ms = (got - t) * 1000
                guest_event = gsub.wait_event(
                    lambda e: e["event"] == "HOST_GUEST_PATH_CHANGED" and e["data"]["guest"] == target["guest"]
                    and e["data"]["host-chpid"] == chpid, 30)
                # None: a cssd without the event (an older build, for a before/after run).
                guest_ms = (guest_event - t) * 1000 if guest_event is not None else float("nan")
                # The server applied the reading before it sent the event: one query names the
                # guest and shows the device's host paths as of that change.
                now = client.call("query-host-passthrough", guest=target["guest"])
                assert any(e["subchannel"] == target["subchannel"] for e in now)
                attributed.append((event_ms, guest_ms, (time.monotonic() - t) * 1000))
                with open(path, "w") as f:
                    f.write("online\n")
                sub.wait_event(lambda e: e["event"] == "CHANNEL_PATH_CHANGED" and e["data"]["chpid"] == chpid, 30)
                sub.drain()
                if guest_event is not None:
                    gsub.wait_event(lambda e: e["event"] == "HOST_GUEST_PATH_CHANGED"
                                    and e["data"]["change"] == "online" and e["data"]["guest"] == target["guest"], 30)
                gsub.drain()
            result["attributed_ms"] = attributed
        return result
    finally:
        server.terminate()
        server.wait()


def main():
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 65536
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
    guests = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    base = os.environ.get("BENCH_DIR") or ("/dev/shm" if os.access("/dev/shm", os.W_OK) else "/tmp")
    work = tempfile.mkdtemp(prefix="cssd-vfio-", dir=base)
    try:
        tree = build_tree(size, work)
        run, proc = os.path.join(work, "run"), os.path.join(work, "proc")
        os.makedirs(run)
        os.makedirs(proc)
        without = measure(tree, work, run, proc, [])
        print("no passthrough:", without, flush=True)
        bound = pass_through(tree, run, size, count, guests)
        with_pt = measure(tree, work, run, proc, bound)
        print("passthrough:", with_pt, flush=True)
        print(f"bound {len(bound)}, listed {with_pt['listed']}, named by libvirt {with_pt['libvirt']}")
        print(f"cssd: {CSSD}")
        print("| tree | poll tick median / max | idle CPU | query-version p50 / p99 / max | query-host-passthrough |")
        print("|---|---:|---:|---|---:|")
        for label, r in ((f"{size:,}, no passthrough", without),
                         (f"{size:,}, {count:,} passed through to {guests} guests", with_pt)):
            print(f"| {label} | {r['tick_ms'][0]:.1f} / {r['tick_ms'][1]:.1f} ms | {r['idle_cpu']:.1f} % "
                  f"| {r['version_ms'][0]:.3f} / {r['version_ms'][1]:.3f} / {r['version_ms'][2]:.1f} ms "
                  f"| {r.get('query_ms', 0):.1f} ms |")
        print("chpid status written -> CHANNEL_PATH_CHANGED / -> HOST_GUEST_PATH_CHANGED / -> "
              "query-host-passthrough(guest) answered (ms): "
              + ", ".join(f"{a:.0f} / {g:.0f} / {b:.0f}" for a, g, b in with_pt["attributed_ms"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
