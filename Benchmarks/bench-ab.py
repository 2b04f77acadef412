#!/usr/bin/env python3
"""Two cssd builds side by side, the same client, order alternated: is B slower than A?

    Benchmarks/bench-ab.py --before /work/baseline/.build/release --after .build/release \
        [--runs 6] [--qemu] [-- extra cssctl bench options]

Starts one release cssd of each build (and QEMU 7.2 with --qemu) on private unix sockets,
then runs `cssctl bench` (the after build's client) --runs times, the order of the two servers
swapped every run (before first, after first, ...), one invocation per server and mode. Beside
the client's figures it reads each server's CPU time (every thread's schedstat) around its own
invocation: CPU per request is what a loaded machine disturbs least (wall-clock ops/s swing
2x here when other jobs run). Prints every run (with the load average before it), the medians
per server and mode, and the after/before ratios of the medians. Run by hand; not part of the test suite.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def wait_for_socket(path, process, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{path}: server exited with {process.returncode}")
        if os.path.exists(path):
            with socket.socket(socket.AF_UNIX) as probe:
                try:
                    probe.connect(path)
                    return
                except OSError:
                    pass
        time.sleep(0.05)
    sys.exit(f"{path}: no server after {seconds} s")


def cpu_ns(pid):
    """CPU time of every thread of `pid` so far, in ns (schedstat: exact, not in ticks)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(open(f"/proc/{pid}/task/{task}/schedstat").read().split()[0])
        except OSError:
            pass  # the thread ended meanwhile
    return total


def warmup(bench_args):
    """The sequential warm-up count the bench options ask for (cssctl's default: 500)."""
    for index, arg in enumerate(bench_args):
        if arg == "--warmup":
            return int(bench_args[index + 1])
        if arg.startswith("--warmup="):
            return int(arg.split("=", 1)[1])
    return 500


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="build directory of the old cssd (holds cssd)")
    parser.add_argument("--after", default=".build/release", help="build directory of the new cssd and cssctl")
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--qemu", action="store_true", help="add QEMU 7.2's monitor as a third server")
    parser.add_argument("--cssd-arg", action="append", default=[], help="extra option for both cssd")
    parser.add_argument("bench", nargs="*", help="extra cssctl bench options (after --)")
    args = parser.parse_args()

    directory = tempfile.mkdtemp(prefix="cssd-ab-")
    servers = {}
    try:
        for label, build in (("before", args.before), ("after", args.after)):
            path = os.path.join(directory, f"{label}.sock")
            process = subprocess.Popen(
                [os.path.join(build, "cssd"), "--qmp", f"unix:{path}", "--log-level", "warning", *args.cssd_arg])
            servers[label] = (path, process)
        if args.qemu:
            path = os.path.join(directory, "qemu.sock")
            process = subprocess.Popen(
                ["qemu-system-s390x", "-machine", "s390-ccw-virtio", "-nodefaults", "-display", "none", "-S",
                 "-qmp", f"unix:{path},server=on,wait=off"])
            servers["qemu"] = (path, process)
        for path, process in servers.values():
            wait_for_socket(path, process)

        cssctl = os.path.join(args.after, "cssctl")
        print(f"machine: {os.cpu_count()} cores; before {args.before}, after {args.after}; runs {args.runs}")
        rows = {}  # (label, mode) -> list of (result, server CPU ns per request)
        for run in range(args.runs):
            order = ["before", "after"] if run % 2 == 0 else ["after", "before"]
            if args.qemu:
                order.append("qemu")
            load = " ".join(open("/proc/loadavg").read().split()[:3])
            line = []
            for label in order:
                path, process = servers[label]
                for mode, counts in (("sequential", ["--pipelined-count", "0"]), ("pipelined", ["--count", "0"])):
                    command = [cssctl, "bench", "--json", *args.bench, *counts, "--socket", path, "--label", label]
                    before = cpu_ns(process.pid)
                    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                    used = cpu_ns(process.pid) - before
                    [entry] = json.loads(output)["results"]
                    # Sequential includes its warm-up round trips; both include connect and negotiation.
                    requests = entry["requests"] + (warmup(args.bench) if mode == "sequential" else 0)
                    cpu = used / requests
                    rows.setdefault((label, mode), []).append((entry, cpu))
                    line.append(f'{label} {mode} {entry["ops_per_second"]:,.0f}/s '
                                f'p50 {entry["latency_us"]["p50"]:.1f} p99 {entry["latency_us"]["p99"]:.1f} '
                                f'cpu {cpu / 1000:.2f} us/req')
            print(f"run {run + 1} ({order[0]} first, load {load}): " + "; ".join(line))
            sys.stdout.flush()

        print()
        print("| server | mode | runs | ops/s (median) | min-max | p50 µs | p99 µs | server CPU µs/request (median) | min-max |")
        print("|---|---|---:|---:|---|---:|---:|---:|---|")
        medians = {}
        for (label, mode), pairs in rows.items():
            entries = [e for e, _ in pairs]
            cpus = [c / 1000 for _, c in pairs]
            ops = [e["ops_per_second"] for e in entries]
            p50 = statistics.median(e["latency_us"]["p50"] for e in entries)
            p99 = statistics.median(e["latency_us"]["p99"] for e in entries)
            medians[(label, mode)] = (statistics.median(ops), statistics.median(cpus))
            print(f"| {label} | {mode} | {len(ops)} | {statistics.median(ops):,.0f} | "
                  f"{min(ops):,.0f}-{max(ops):,.0f} | {p50:,.1f} | {p99:,.1f} | "
                  f"{statistics.median(cpus):.3f} | {min(cpus):.3f}-{max(cpus):.3f} |")
        for mode in ("sequential", "pipelined"):
            if ("before", mode) in medians:
                (ops_b, cpu_b), (ops_a, cpu_a) = medians[("before", mode)], medians[("after", mode)]
                print(f"after/before {mode}: ops/s {ops_a / ops_b:.3f}x, server CPU per request {cpu_a / cpu_b:.3f}x")
        print(f"load average at the end: {' '.join(open('/proc/loadavg').read().split()[:3])}")
    finally:
        for _, process in servers.values():
            process.terminate()
        for _, process in servers.values():
            process.wait()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
