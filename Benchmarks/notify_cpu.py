#!/usr/bin/env python3
"""Where the CPU goes with --notify, with and without --state-dir (issue 25).

notify.py's (a)/(a')/(s) share the 2 cores with oslo's Python listener consuming in the same
process, so its rates say as much about the listener as about cssd. Here the listener only
declares its durable queue and is stopped: the notifications pile up in the broker (persisted,
confirmed) with no consumer on the cores. For each build and round, three fresh cssd:
  a  --notify, no state dir;  A  --notify --state-dir;  s  --state-dir without --notify
each takes COUNT pipelined vary-path requests (64 outstanding, notify.py's client); printed:
the replies' rate, the rate until query-notify counts every notification confirmed, the CPU
time of cssd (utime + stime, and per change), of the broker and of this client over the part,
and cssd's CPU per thread.

Usage: CSSD_BIN=LABEL=PATH[,LABEL=PATH...] Benchmarks/notify_cpu.py [COUNT] [ROUNDS]
       (default: ROOT/.build/release/cssd; builds alternate within each round)
"""
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Benchmarks"))
import notify as N  # noqa: E402


def cpu(pid):
    """utime + stime of a process (or thread) in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def beam_pids():
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if "beam" in open(f"/proc/{p}/comm").read():
                    out.append(int(p))
            except OSError:
                pass
    return out


def connect(sock):
    for _ in range(6000):
        try:
            return N.QMP(sock)
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"{sock} never answered")


def run(binary, tmp, broker, count, extra, name, notify=True):
    if notify:
        proc, client = N.start_cssd(binary, tmp, broker, *extra, name=name.replace(" ", "-"))
    else:
        sock = os.path.join(tmp, name.replace(" ", "-") + ".sock")
        proc = subprocess.Popen([binary, "--qmp", f"unix:{sock}", *extra], stdout=subprocess.DEVNULL,
                                stderr=subprocess.STDOUT)
        client = connect(sock)
    beams = beam_pids()
    c0, b0, s0 = cpu(proc.pid), sum(cpu(p) for p in beams), time.process_time()
    t0 = time.monotonic()
    client.vary_pipelined(count)
    t_replies = time.monotonic() - t0
    if notify:
        N.wait_status(client, lambda s: s["confirmed"] >= count, interval=0.005)
    t_all = time.monotonic() - t0
    c1, b1, s1 = cpu(proc.pid), sum(cpu(p) for p in beams), time.process_time()
    print(f"{name}: replies {count / t_replies:,.0f}/s, confirmed {count / t_all:,.0f}/s; CPU s: cssd {c1 - c0:.2f} "
          f"({(c1 - c0) / count * 1e6:.0f} us/change), broker {b1 - b0:.2f}, client {s1 - s0:.2f}; "
          f"wall {t_all:.2f} s", flush=True)
    threads = {}
    for task in os.listdir(f"/proc/{proc.pid}/task"):
        try:
            comm = open(f"/proc/{proc.pid}/task/{task}/comm").read().strip()
            threads[f"{comm}/{task}"] = cpu(f"{proc.pid}/task/{task}")
        except OSError:
            pass
    busy = sorted(threads.items(), key=lambda kv: -kv[1])
    print("    threads (CPU s since start):", ", ".join(f"{k} {v:.2f}" for k, v in busy if v > 0.02))
    proc.terminate()
    proc.wait()


def main():
    builds = os.environ.get("CSSD_BIN", "cssd=" + os.path.join(ROOT, ".build", "release", "cssd"))
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    tmp = tempfile.mkdtemp(prefix="cssdc", dir="/tmp")
    broker = N.Broker().start()
    try:
        transport = N.queue_without_consumer(broker, tmp)
        bins = [b.split("=", 1) for b in builds.split(",")]
        for r in range(rounds):
            for label, path in bins:
                run(path, tmp, broker, count, [], f"{label} a{r}")
                run(path, tmp, broker, count, ["--state-dir", os.path.join(tmp, f"A-{label}{r}")], f"{label} A{r}")
                run(path, tmp, broker, count, ["--state-dir", os.path.join(tmp, f"s-{label}{r}")], f"{label} s{r}",
                    notify=False)
        transport.cleanup()
    finally:
        broker.close()


if __name__ == "__main__":
    main()
