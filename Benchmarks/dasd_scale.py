#!/usr/bin/env python3
"""What DASD path health (issue 22) costs the linux-sysfs backend, and how fast it sees a path
the DASD driver disabled.

One run, one tree: a synthetic topology of SIZE subchannels (default 65,536; 32 chpids, 8 paths
each) built as sysfs_scale.py builds it, served by release cssd with the defaults (poll 1 s,
sweep 30 s), `--no-inotify` and `--kernel-log FIFO`:
1. without DASDs (no ccw device bound to a DASD driver): idle CPU over 20 s, then 10 s each of
   back-to-back query-version and query-chpids (which carries the per-chpid DASD roll-up);
2. the same tree with every second device made a DASD (`driver` link to dasd-eckd,
   `path_masks`, the knobs, `paths_info/`), a fresh server: the same figures. The difference is
   the cost: the sweep reads each DASD's `path_masks` once per round (SIZE/2 files per 30 s);
   nothing else is read while nothing changes;
3. detection: 20 times, a DASD's `path_masks` gets an IFCC-disabled path and the driver's line
   (`dasd-eckd 0.0.XXXX: Path 0.YY (pathmask ZZ) is disabled - IFCC threshold exceeded`) goes to
   the FIFO; the time until query-dasd-paths for that device shows it (polled back to back on
   one connection, so the figure includes up to one query's round trip).
Usage: Benchmarks/dasd_scale.py [SIZE]
Build first: swift build -c release --product cssd && swift build -c release --product cssctl
"""

import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sysfs_scale  # noqa: E402
from sysfs_scale import Client, build_tree, cpu_seconds, start  # noqa: E402

# A debug build for a quick try: CSSD=.build/debug/cssd CSSCTL=.build/debug/cssctl.
sysfs_scale.CSSD = os.environ.get("CSSD", sysfs_scale.CSSD)
sysfs_scale.CSSCTL = os.environ.get("CSSCTL", sysfs_scale.CSSCTL)


def make_dasds(tree):
    """Every second I/O subchannel's device becomes a healthy ECKD DASD; returns their
    (subchannel, device, chpids) in id order."""
    css0 = os.path.join(tree, "devices", "css0")
    drivers = os.path.join(tree, "bus", "ccw", "drivers", "dasd-eckd")
    os.makedirs(drivers, exist_ok=True)
    out = []
    names = sorted(n for n in os.listdir(css0) if n.startswith("0."))
    for index, name in enumerate(names):
        if index % 2:
            continue
        sch = os.path.join(css0, name)
        devices = [d for d in os.listdir(sch) if d.startswith("0.") and os.path.isdir(os.path.join(sch, d))]
        if not devices:
            continue
        device = os.path.join(sch, devices[0])
        pim = int(open(os.path.join(sch, "pimpampom")).read().split()[0], 16)
        chpids = open(os.path.join(sch, "chpids")).read().split()
        os.symlink("../../../../bus/ccw/drivers/dasd-eckd", os.path.join(device, "driver"))
        for file, value in (("path_masks", f"{pim:02x} 00 00 00 00 00"), ("path_autodisable", "1"),
                            ("path_threshold", "256"), ("path_interval", "300"), ("hpf", "1"),
                            ("fc_security", "Unsupported")):
            with open(os.path.join(device, file), "w") as f:
                f.write(value + "\n")
        open(os.path.join(device, "path_reset"), "w").close()
        out.append((name, devices[0], chpids, pim))
    return out


def figures(proc, client):
    c0, t0 = cpu_seconds(proc.pid), time.monotonic()
    time.sleep(20)
    result = {"idle_cpu": (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0) * 100}
    for command in ("query-version", "query-chpids"):
        lat = []
        end = time.monotonic() + 10
        req = ('{"execute":"%s"}' % command).encode()
        while time.monotonic() < end:
            t = time.perf_counter()
            client.sock.sendall(req)
            client.readline()
            lat.append(time.perf_counter() - t)
        lat.sort()
        result[command] = (lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000, lat[-1] * 1000, len(lat))
    return result


def serve(tree, work, tag):
    kmsg = os.path.join(work, f"kmsg-{tag}")
    os.mkfifo(kmsg)
    sock = os.path.join(work, f"{tag}.sock")
    proc, startup = start(tree, sock, kmsg)
    feeder = open(kmsg, "w", buffering=1)
    client = Client(sock)
    time.sleep(2.0)  # the first poll tick and sweep slice
    return proc, startup, feeder, client


def stop(proc, feeder):
    proc.terminate()
    proc.wait(30)
    feeder.close()


def main():
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 65536
    work = tempfile.mkdtemp(prefix="dasd-scale-", dir=os.environ.get("BENCH_DIR", "/tmp"))
    try:
        tree = build_tree(size, work)
        proc, startup, feeder, client = serve(tree, work, "plain")
        plain = figures(proc, client)
        plain["startup_s"] = startup
        stop(proc, feeder)
        began = time.perf_counter()
        dasds = make_dasds(tree)
        print(f"  {len(dasds):,} DASDs made in {time.perf_counter() - began:.0f} s", file=sys.stderr)
        proc, startup, feeder, client = serve(tree, work, "dasd")
        with_dasd = figures(proc, client)
        with_dasd["startup_s"] = startup
        served = client.call("query-dasd-paths", devno="0.0." + dasds[0][1].split(".")[2])
        assert served and served[0]["driver"] == "dasd-eckd", served
        detections = []
        css0 = os.path.join(tree, "devices", "css0")
        step = max(1, len(dasds) // 20)
        for sch, device, chpids, pim in dasds[::step][:20]:
            slot = 1  # a path that every generated subchannel has (8 paths)
            bit = 0x80 >> slot
            with open(os.path.join(css0, sch, device, "path_masks"), "w") as f:
                f.write(f"{pim & ~bit:02x} 00 00 00 00 {bit:02x}\n")
            devno = device
            t = time.perf_counter()
            feeder.write(f"3,900,1,-;dasd-eckd {devno}: Path 0.{chpids[slot]} (pathmask {bit:02x}) is disabled - "
                         "IFCC threshold exceeded\n")
            while True:
                [info] = client.call("query-dasd-paths", devno=devno)
                if any("ifcc-threshold" in p["disabled-because"] for p in info["paths"]):
                    break
                if time.perf_counter() - t > 30:
                    raise RuntimeError(f"{devno}: not seen in 30 s")
            detections.append((time.perf_counter() - t) * 1000)
        stop(proc, feeder)
        print(f"subchannels {size:,}, DASDs {len(dasds):,}")
        for name, r in (("without DASDs", plain), ("with DASDs", with_dasd)):
            v, c = r["query-version"], r["query-chpids"]
            print(f"{name}: start-up {r['startup_s'] * 1000:.0f} ms, idle CPU {r['idle_cpu']:.2f} %, "
                  f"query-version p50/p99/max {v[0]:.2f}/{v[1]:.2f}/{v[2]:.2f} ms ({v[3]} requests), "
                  f"query-chpids p50/p99/max {c[0]:.2f}/{c[1]:.2f}/{c[2]:.2f} ms ({c[3]} requests)")
        detections.sort()
        print(f"IFCC line -> query-dasd-paths shows it ({len(detections)}): median "
              f"{statistics.median(detections):.1f} ms, max {detections[-1]:.1f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
