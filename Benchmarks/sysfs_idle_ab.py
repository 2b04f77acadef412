#!/usr/bin/env python3
"""Start-up, idle CPU and read(2) calls per second (`syscr` of /proc/PID/io) of several cssd
builds on one tree: sysfs_scale.py's tree and options (--no-inotify, a FIFO as --kernel-log).
A path followed by " nolog" runs without --kernel-log (the sweep then reads every subchannel
file, as before issue 25). The builds alternate, ROUNDS times (A B A B ...), so that a machine
loaded by others weighs on each alike; each row is one run, then per build the median and the
range (lowest-highest) of the rounds. Idle CPU is the process's CPU time (utime + stime), not
wall time.
Usage: BINS="label=PATH,label2=PATH nolog" [IDLE_S=20] [ROUNDS=1] [BENCH_DIR=/dev/shm] \
       [TREE=DIR (an existing tree, kept)] CSSCTL=.build/debug/cssctl python3 Benchmarks/sysfs_idle_ab.py SIZE"""
import os, sys, time, tempfile, shutil, statistics, subprocess, socket
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sysfs_scale as S

size = int(sys.argv[1])
bins = [tuple(x.split("=", 1)) for x in os.environ["BINS"].split(",")]
idle = float(os.environ.get("IDLE_S", "20"))
rounds = int(os.environ.get("ROUNDS", "1"))
work = tempfile.mkdtemp(prefix="sweep25-", dir=os.environ.get("BENCH_DIR", "/dev/shm"))
results = {label: [] for label, _ in bins}


def run(label, path, tree):
    binary, _, extra = path.partition(" ")
    kmsg = os.path.join(work, "kmsg"); sock = os.path.join(work, "s.sock")
    for p in (kmsg, sock):
        if os.path.exists(p): os.unlink(p)
    os.mkfifo(kmsg)
    args = [binary, "--qmp", f"unix:{sock}", "--backend", f"linux-sysfs:{tree}", "--no-inotify", "--log-level", "warning"]
    if extra != "nolog":
        args += ["--kernel-log", kmsg]
    began = time.perf_counter()
    proc = subprocess.Popen(args)
    feeder = None
    try:
        while True:
            try:
                probe = socket.socket(socket.AF_UNIX); probe.connect(sock); probe.close(); break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"{label}: cssd exited ({proc.returncode})")
                time.sleep(0.005)
        startup = time.perf_counter() - began
        start_cpu = S.cpu_seconds(proc.pid)
        feeder = open(kmsg, "w") if extra != "nolog" else None
        time.sleep(2.0)
        c0, r0, t0 = S.cpu_seconds(proc.pid), S.read_calls(proc.pid), time.monotonic()
        time.sleep(idle)
        el = time.monotonic() - t0
        cpu = (S.cpu_seconds(proc.pid) - c0) / el * 100
        reads = (S.read_calls(proc.pid) - r0) / el
        load = open("/proc/loadavg").read().split()[0]
        print(f"| {label} | {size:,} | {startup*1000:.0f} ms ({start_cpu:.1f} s CPU) | {cpu:.2f} % | {reads:,.0f} | {load} |",
              flush=True)
        results[label].append((startup, cpu, reads))
    finally:
        proc.terminate(); proc.wait()
        if feeder: feeder.close()


try:
    tree = os.environ.get("TREE")
    if not tree:
        t = time.time(); tree = S.build_tree(size, work); print(f"tree {size} built in {time.time()-t:.0f} s", flush=True)
    print("| build | subchannels | start-up | idle CPU | read(2)/s idle | load (1 min) |\n|---|---:|---:|---:|---:|---:|")
    for _ in range(rounds):
        for label, path in bins:
            run(label, path, tree)
    if rounds > 1:
        print("\n| build | rounds | start-up median (range) | idle CPU median (range) | read(2)/s median |\n|---|---:|---:|---:|---:|")
        for label, rows in results.items():
            s, c, r = zip(*rows)
            print(f"| {label} | {len(rows)} | {statistics.median(s)*1000:,.0f} ms ({min(s)*1000:,.0f}-{max(s)*1000:,.0f}) "
                  f"| {statistics.median(c):.2f} % ({min(c):.2f}-{max(c):.2f}) | {statistics.median(r):,.0f} |")
finally:
    shutil.rmtree(work, ignore_errors=True)
