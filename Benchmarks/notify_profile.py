#!/usr/bin/env python3
"""Where cssd's CPU goes with --notify and --state-dir (issue 25): notify_cpu.py's part A (a
durable queue declared by oslo's listener, then no consumer; COUNT pipelined vary-path on one
connection), with `perf record -g` attached to cssd for the drive, until query-notify counts
every notification confirmed. Prints the rates; read the profile with e.g.
    perf report -i OUT --no-children --sort comm
    perf report -i OUT --children --sort symbol -g none | grep -v '\\[k\\]' | head -60
Usage: Benchmarks/notify_profile.py CSSD_BINARY [COUNT] [OUT]   (defaults 20000, /tmp/notify.data)
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import notify as N  # noqa: E402


def main():
    binary = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    out = sys.argv[3] if len(sys.argv) > 3 else "/tmp/notify.data"
    tmp = tempfile.mkdtemp(prefix="cssd-nprof", dir="/tmp")
    broker = N.Broker().start()
    try:
        transport = N.queue_without_consumer(broker, tmp)
        proc, client = N.start_cssd(binary, tmp, broker, "--state-dir", os.path.join(tmp, "A"), name="A")
        perf = subprocess.Popen(["perf", "record", "-F", "1999", "-g", "-p", str(proc.pid), "-o", out],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        t0 = time.monotonic()
        client.vary_pipelined(count)
        t_replies = time.monotonic() - t0
        N.wait_status(client, lambda s: s["confirmed"] >= count, interval=0.005)
        t_all = time.monotonic() - t0
        perf.send_signal(signal.SIGINT)
        perf.wait()
        print(f"replies {count / t_replies:,.0f}/s, confirmed {count / t_all:,.0f}/s; profile in {out}")
        proc.terminate()
        proc.wait()
        transport.cleanup()
    finally:
        broker.close()


if __name__ == "__main__":
    main()
