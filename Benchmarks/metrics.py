#!/usr/bin/env python3
"""What a Prometheus scrape of cssd costs, and whether it disturbs QMP (issue 12's figures).

For each size (synthetic topologies from `cssctl gen-topology`, 32 chpids, 8 paths per
subchannel, as Benchmarks/scale.py builds them):
- scrape time on the server: cssd exports the previous scrape's time on its event loop
  (collect + render) as cssd_metrics_scrape_duration_seconds; SCRAPES scrapes on one
  keep-alive connection, median / p99 / max of those figures, plus the client's round trip;
- series: sample lines in the text format, and the body's size.
Then, at the largest size, QMP latency with and without a scraper: `cssctl bench` (sequential
round trips and pipelined requests of query-version) alone, then beside a scraper that
fetches /metrics every 100 ms (OpenMetrics, as Prometheus asks), alternating RUNS times.

Usage: Benchmarks/metrics.py [SIZES...]   (default 4096 16384 65536 262144)
Build first: swift build -c release --product cssd && swift build -c release --product cssctl
"""

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Benchmarks", "tools"))
from benchlib import pct, scrape, scrapes, series_count, start_with_metrics  # noqa: E402

CSSD = os.path.join(ROOT, ".build/release/cssd")
CSSCTL = os.path.join(ROOT, ".build/release/cssctl")
SCRAPES = 200
RUNS = 5
BENCH_COUNT = 100_000  # sequential round trips per run: about 2 s, some 20 scrapes beside them
OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


def start(topology, work, size, binary=None, timeout=60):
    """cssd (`binary`, default the release build) on `topology` with --metrics on a port it
    picks: (process, QMP socket, metrics port), once it listens on both."""
    return start_with_metrics(binary or CSSD, topology, work, size, timeout)


def measure_scrapes(port):
    server, client, body = scrapes(port, SCRAPES)
    return {
        "server_ms": {"median": statistics.median(server) * 1e3, "p99": pct(server, 99) * 1e3, "max": max(server) * 1e3},
        "client_ms": {"median": statistics.median(client) * 1e3, "p99": pct(client, 99) * 1e3},
        "series": series_count(body), "bytes": len(body),
    }


def bench(sock):
    out = subprocess.run([CSSCTL, "bench", "--socket", f"unix:{sock}", "--count", str(BENCH_COUNT), "--json"],
                         check=True, capture_output=True)
    rows = {row["mode"]: row for row in json.loads(out.stdout)["results"]}
    return {mode: {"ops_per_second": row["ops_per_second"], **row["latency_us"]} for mode, row in rows.items()}


def scraper(port, stop, counts):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    next_time = time.monotonic()
    while not stop.is_set():
        scrape(connection, OPENMETRICS)
        counts["scrapes"] += 1
        next_time += 0.1
        time.sleep(max(0.0, next_time - time.monotonic()))
    connection.close()


def qmp_with_and_without_scrapes(sock, port):
    runs = {"without": [], "with": []}
    for _ in range(RUNS):
        runs["without"].append(bench(sock))
        stop, counts = threading.Event(), {"scrapes": 0}
        thread = threading.Thread(target=scraper, args=(port, stop, counts))
        thread.start()
        result = bench(sock)
        stop.set()
        thread.join()
        result["scrapes"] = counts["scrapes"]
        runs["with"].append(result)
    return runs


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [4096, 16384, 65536, 262144]
    results = {}
    with tempfile.TemporaryDirectory(dir="/tmp") as work:
        for size in sizes:
            topology = os.path.join(work, f"t{size}.json")
            subprocess.run([CSSCTL, "gen-topology", "--subchannels", str(size), "--chpids", "32", "--paths", "8",
                            "--output", topology], check=True)
            proc, sock, port = start(topology, work, size)
            try:
                results[size] = measure_scrapes(port)
                r = results[size]
                print(f"{size:>8} subchannels: scrape on the server median {r['server_ms']['median']:.3f} ms, "
                      f"p99 {r['server_ms']['p99']:.3f} ms, max {r['server_ms']['max']:.3f} ms; "
                      f"client round trip median {r['client_ms']['median']:.3f} ms; "
                      f"{r['series']} series, {r['bytes']} bytes", flush=True)
                if size == max(sizes):
                    runs = qmp_with_and_without_scrapes(sock, port)
                    results["qmp"] = runs
                    for label in ("without", "with"):
                        for run in runs[label]:
                            s, p = run["sequential"], run["pipelined"]
                            extra = f", {run['scrapes']} scrapes" if "scrapes" in run else ""
                            print(f"  QMP {label:>7} scraper: sequential p50 {s['p50']} us p99 {s['p99']} us "
                                  f"max {s['max']} us; pipelined p50 {p['p50']} us p99 {p['p99']} us, "
                                  f"{p['ops_per_second']:.0f} ops/s{extra}", flush=True)
                    for label in ("without", "with"):
                        def med(mode, key):
                            return statistics.median(run[mode][key] for run in runs[label])
                        print(f"  median of {RUNS} runs {label:>7} scraper: sequential p50 {med('sequential', 'p50')} us "
                              f"p99 {med('sequential', 'p99')} us; pipelined p99 {med('pipelined', 'p99')} us, "
                              f"{med('pipelined', 'ops_per_second'):.0f} ops/s", flush=True)
            finally:
                proc.terminate()
                proc.wait()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
