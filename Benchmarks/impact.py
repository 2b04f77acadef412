#!/usr/bin/env python3
"""The impact query over a real socket (issue 22): query-path-impact for one chpid and for all 256,
query-path-redundancy, and what the last-path interlock adds to a vary-path, at 262,144
subchannels of the model (cssctl gen-topology, 256 chpids, PATHS paths per subchannel).

For each PATHS (default 1 2 8): start release cssd on the generated topology and measure, as the
client sees it (median of 9 round trips):
- query-path-impact on one chpid (limit 256) and on all 256 (limit 256, and limit 0: counts only);
- query-path-redundancy (limit 256);
- vary-path offline/online on one chpid: checked by the interlock (no force) and forced (the
  check skipped), so the difference is the interlock's cost. With PATHS 1 every device is on
  one path: the unforced vary is refused, and that refusal's round trip is reported instead.
The model's own cost, without the socket and JSON: Benchmarks/CSSModelBench impact-bench.
Usage: Benchmarks/impact.py [PATHS...]
Build first: swift build -c release --product cssd && swift build -c release --product cssctl
(or set CSSD and CSSCTL to the binaries).
"""

import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Benchmarks", "tools"))
from benchlib import timed, wait_for_qmp  # noqa: E402

CSSD = os.environ.get("CSSD", os.path.join(ROOT, ".build/release/cssd"))
CSSCTL = os.environ.get("CSSCTL", os.path.join(ROOT, ".build/release/cssctl"))
SUBCHANNELS = int(os.environ.get("SUBCHANNELS", "262144"))


def start(topology, workdir):
    sock = os.path.join(workdir, "q.sock")
    proc = subprocess.Popen([CSSD, "--topology", topology, "--qmp", f"unix:{sock}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, wait_for_qmp(proc, sock)


def main():
    paths_list = [int(a) for a in sys.argv[1:]] or [1, 2, 8]
    everything = [f"0.{n:02x}" for n in range(256)]
    print(f"cssd {CSSD}: {SUBCHANNELS:,} subchannels, 256 chpids; {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}; median of 9 round trips, ms\n")
    print("| paths | per chpid | impact one chpid | impact all 256 | all 256, counts only | redundancy "
          "| vary checked | vary forced |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for paths in paths_list:
        with tempfile.TemporaryDirectory(prefix="cssd-impact-", dir="/tmp") as work:
            topology = os.path.join(work, "t.json")
            subprocess.run([CSSCTL, "gen-topology", "--subchannels", str(SUBCHANNELS), "--chpids", "256",
                            "--paths", str(paths), "--output", topology], check=True, stdout=subprocess.DEVNULL)
            proc, c = start(topology, work)
            try:
                one, r1 = timed(lambda: c.call("query-path-impact", chpids=["0.11"]))
                every, r2 = timed(lambda: c.call("query-path-impact", chpids=everything))
                counts, _ = timed(lambda: c.call("query-path-impact", chpids=everything, limit=0))
                redundancy, _ = timed(lambda: c.call("query-path-redundancy"))
                assert r2["lost-last-path-count"] == SUBCHANNELS, r2["lost-last-path-count"]

                def vary(force):
                    def run():
                        extra = {"force": True} if force else {}
                        first = c.raw("vary-path", chpid="0.11", state="offline", **extra)
                        if "return" in first:
                            c.call("vary-path", chpid="0.11", state="online")
                        return first
                    return run
                checked, reply = timed(vary(False))
                forced, _ = timed(vary(True))
                note = " (refused)" if "error" in reply else ""
                print(f"| {paths} | {SUBCHANNELS * paths // 256:,} | {one:.2f} | {every:.1f} | {counts:.1f} "
                      f"| {redundancy:.1f} | {checked:.2f}{note} | {forced:.2f} |")
                sys.stdout.flush()
            finally:
                proc.terminate()
                proc.wait()


if __name__ == "__main__":
    main()
