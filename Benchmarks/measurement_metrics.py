#!/usr/bin/env python3
"""What the channel-measurement series (issue 21) add to a Prometheus scrape, and what the
query of every chpid costs.

One model cssd on a synthetic topology (`cssctl gen-topology`: 65,536 subchannels, 256 FICON
chpids, CMG 2, 8 paths per subchannel). In one run:
- SCRAPES scrapes with the facility disabled (every chpid has only its info series), then the
  facility enabled with a load on every chpid and two samples taken (every counter, gauge and
  the interval counter present): the server's time per scrape (cssd exports the previous
  scrape's collect + render time on its event loop, cssd_metrics_scrape_duration_seconds),
  median / p99 / max, the client's round trip, sample lines and bytes;
- QUERIES calls of `query-chpid-measurements` for all 256 chpids: round trip median / p99 and
  the reply's size.

Usage: Benchmarks/measurement_metrics.py [--debug]
Build first: swift build -c release --product cssd && swift build -c release --product cssctl
(--debug uses .build/debug, for a quick look; its figures are not the release's).
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools"))
import metrics  # noqa: E402
from benchlib import QMP, pct, scrapes  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = "debug" if "--debug" in sys.argv else "release"
CSSD = os.path.join(ROOT, f".build/{CONFIG}/cssd")
CSSCTL = os.path.join(ROOT, f".build/{CONFIG}/cssctl")
SUBCHANNELS = 65536
CHPIDS = 256
SCRAPES = 200
QUERIES = 50


def start(topology, work):
    """cssd of this build on `topology`, as metrics.py starts it (65,536 subchannels: up to 120 s)."""
    return metrics.start(topology, work, "", binary=CSSD, timeout=120)


def measure_scrapes(port):
    server, client, body = scrapes(port, SCRAPES)
    lines = body.splitlines()
    samples = [line for line in lines if line and not line.startswith(b"#")]
    measurement = [line for line in samples if line.startswith((b"cssd_chpid_measurement", b"cssd_channel_measurement"))
                   or (line.startswith(b"cssd_chpid_") and b"channel_css_chpid=" in line)]
    return {
        "server median ms": statistics.median(server) * 1e3, "server p99 ms": pct(server, 99) * 1e3,
        "server max ms": max(server) * 1e3, "client median ms": statistics.median(client) * 1e3,
        "series": len(samples), "measurement series": len(measurement), "bytes": len(body),
    }


def main():
    with tempfile.TemporaryDirectory() as work:
        topology = os.path.join(work, "t.json")
        subprocess.run([CSSCTL, "gen-topology", "--subchannels", str(SUBCHANNELS), "--chpids", str(CHPIDS),
                        "--paths", "8", "--output", topology], check=True)
        proc, sock, port = start(topology, work)
        try:
            client = QMP(sock)
            rows = [("facility disabled", measure_scrapes(port))]
            assert client.call("set-channel-measurement", enabled=True)["state"] == "enabled"
            paths = client.call("query-chpid-measurements")["channel-paths"]
            assert len(paths) == CHPIDS, len(paths)
            for path in paths:
                client.call("set-chpid-load", chpid=path["chpid"],
                            load={"util_total": 60, "util_part": 20, "util_bus": 30, "read_total": 4e8,
                                  "read_part": 1e8, "write_total": 2e8, "write_part": 5e7, "ficon_rate": 2000,
                                  "ficon_active": 3, "ficon_defer": 1, "hpf_rate": 5000, "hpf_active": 2,
                                  "hpf_defer": 1})
            deadline = time.monotonic() + 60
            while True:
                paths = client.call("query-chpid-measurements")["channel-paths"]
                if all(p.get("metrics") for p in paths):
                    break
                assert time.monotonic() < deadline, "metrics did not come"
                time.sleep(0.2)
            rows.append(("enabled, 256 chpids loaded", measure_scrapes(port)))
            times = []
            for _ in range(QUERIES):
                started = time.perf_counter()
                client.call("query-chpid-measurements")
                times.append(time.perf_counter() - started)
            size = client.last_size
        finally:
            proc.terminate()
            proc.wait()
    print(f"{CONFIG} cssd, {SUBCHANNELS} subchannels, {CHPIDS} chpids (CMG 2), {SCRAPES} scrapes each\n")
    keys = list(rows[0][1])
    print("| | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for name, row in rows:
        print(f"| {name} | " + " | ".join(f"{v:.3f}" if isinstance(v, float) else f"{v:,}" for v in row.values())
              + " |")
    print(f"\nquery-chpid-measurements, all {CHPIDS} chpids, {QUERIES} calls: round trip median "
          f"{statistics.median(times) * 1e3:.2f} ms, p99 {pct(times, 99) * 1e3:.2f} ms, reply {size:,} bytes")


if __name__ == "__main__":
    main()
