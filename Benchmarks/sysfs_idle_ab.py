#!/usr/bin/env python3
"""Start-up, idle CPU and read(2) calls per second (`syscr` of /proc/PID/io) of several cssd
builds, one after the other on one tree: sysfs_scale.py's tree and options (--no-inotify, a FIFO
as --kernel-log). A path followed by " nolog" runs without --kernel-log (the sweep then reads
every subchannel file, as before issue 25).
Usage: BINS="label=PATH,label2=PATH nolog" [IDLE_S=20] [BENCH_DIR=/dev/shm] \
       CSSCTL=.build/debug/cssctl python3 Benchmarks/sysfs_idle_ab.py SIZE"""
import os, sys, time, tempfile, shutil
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sysfs_scale as S

size = int(sys.argv[1])
bins = [tuple(x.split("=", 1)) for x in os.environ["BINS"].split(",")]
idle = float(os.environ.get("IDLE_S", "20"))
work = tempfile.mkdtemp(prefix="sweep25-", dir=os.environ.get("BENCH_DIR", "/dev/shm"))
try:
    t = time.time(); tree = S.build_tree(size, work); print(f"tree {size} built in {time.time()-t:.0f} s", flush=True)
    for label, path in bins:
        binary, _, extra = path.partition(" ")
        kmsg = os.path.join(work, "kmsg"); sock = os.path.join(work, "s.sock")
        for p in (kmsg, sock):
            if os.path.exists(p): os.unlink(p)
        os.mkfifo(kmsg)
        import subprocess, socket
        args = [binary, "--qmp", f"unix:{sock}", "--backend", f"linux-sysfs:{tree}", "--no-inotify", "--log-level", "warning"]
        if extra != "nolog":
            args += ["--kernel-log", kmsg]
        began = time.perf_counter()
        proc = subprocess.Popen(args)
        while True:
            try:
                probe = socket.socket(socket.AF_UNIX); probe.connect(sock); probe.close(); break
            except OSError:
                time.sleep(0.005)
        startup = time.perf_counter() - began
        feeder = open(kmsg, "w") if extra != "nolog" else None
        time.sleep(2.0)
        c0, r0, t0 = S.cpu_seconds(proc.pid), S.read_calls(proc.pid), time.monotonic()
        time.sleep(idle)
        el = time.monotonic() - t0
        cpu = (S.cpu_seconds(proc.pid) - c0) / el * 100
        reads = (S.read_calls(proc.pid) - r0) / el
        print(f"| {label} | {size:,} | {startup*1000:.0f} ms | {cpu:.2f} % | {reads:,.0f} |", flush=True)
        proc.terminate(); proc.wait()
        if feeder: feeder.close()
finally:
    shutil.rmtree(work, ignore_errors=True)
