#!/usr/bin/env python3
"""A/B of sysfs_scale.py's vary-path round trip: two cssd binaries on one tree (built as
sysfs_scale.py builds it), runs alternating (before, after; after, before; ...). Each run makes
sysfs_scale.py's 20 round trips (offline and online on chpids[20..29], the reply waiting for
the re-read of the chpid's subchannels) REPEAT times (default 1) and reads the server's CPU time
around them (utime + stime, /proc/PID/stat): on a loaded machine the CPU per round trip says
more than the wall-clock time.
Usage: BENCH_DIR=/dev/shm REPEAT=5 Benchmarks/sysfs_vary_ab.py SIZE RUNS BEFORE_CSSD AFTER_CSSD CSSCTL"""
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sysfs_scale as s
REPEAT = int(os.environ.get("REPEAT", "1"))

size, rounds = int(sys.argv[1]), int(sys.argv[2])
binaries, s.CSSCTL = {"before": sys.argv[3], "after": sys.argv[4]}, sys.argv[5]
work = tempfile.mkdtemp(prefix="cssd-vary-ab-", dir=os.environ.get("BENCH_DIR", "/tmp"))
try:
    tree = s.build_tree(size, work)
    results = {k: [] for k in binaries}
    cpus = {k: [] for k in binaries}
    for r in range(rounds):
        for name in (["before", "after"] if r % 2 == 0 else ["after", "before"]):
            s.CSSD = binaries[name]
            kmsg = os.path.join(work, f"kmsg{r}{name}")
            os.mkfifo(kmsg)
            sock = os.path.join(work, f"s{r}{name}.sock")
            proc, _ = s.start(tree, sock, kmsg)
            feeder = open(kmsg, "w", buffering=1)
            try:
                client = s.Client(sock)
                time.sleep(1.0)
                chpids = [c["chpid"] for c in client.call("query-chpids")]
                vary = []
                c0 = s.cpu_seconds(proc.pid)
                for i in list(range(10)) * REPEAT:
                    for state in ("offline", "online"):
                        t = time.perf_counter()
                        client.call("vary-path", chpid=chpids[20 + i], state=state)
                        vary.append((time.perf_counter() - t) * 1000)
                cpu = (s.cpu_seconds(proc.pid) - c0) * 1000 / len(vary)
                results[name] += vary
                cpus[name].append(cpu)
                print(f"round {r} {name}: median {statistics.median(vary):.1f} ms, max {max(vary):.1f} ms, server CPU {cpu:.2f} ms per round trip", flush=True)
            finally:
                proc.terminate()
                proc.wait()
                feeder.close()
    for name, v in results.items():
        print(f"{name}: {len(v)} round trips, median {statistics.median(v):.1f} ms, p90 {sorted(v)[int(len(v)*0.9)]:.1f} ms, max {max(v):.1f} ms; server CPU per round trip, median of runs {statistics.median(cpus[name]):.2f} ms")
finally:
    shutil.rmtree(work, ignore_errors=True)
