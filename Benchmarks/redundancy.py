#!/usr/bin/env python3
"""What the redundancy counts and events (issue 22) cost a scrape and a vary at scale.

For each size, a synthetic topology from `cssctl gen-topology` (32 chpids) with PATHS paths per
subchannel (default 2: a vary of one chpid then leaves every member on one path, so every one
moves in the counts and is listed in a redundancy-lost change; with 8 nobody's count moves):
- scrape time on the server (cssd_metrics_scrape_duration_seconds, collect + render on the
  event loop): SCRAPES scrapes on one keep-alive connection, median / p99 / max, and the series;
- vary-path of one chpid offline and back online, VARIES times each, round trip of the
  command (reply and the events it published, with one chpid-granularity subscriber on another
  connection reading them): median / max; the events the subscriber got per vary offline.

Usage: Benchmarks/redundancy.py [--debug] [--paths N] [--cssd PATH] [SIZES...]
  (default 262144; --cssd runs another cssd binary, e.g. main's, for a comparison; --debug
  uses .build/debug, whose figures are not the release's)
Build first: swift build -c release --product cssd && swift build -c release --product cssctl
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Benchmarks", "tools"))
from benchlib import QMP, pct, scrapes, series_count, start_with_metrics  # noqa: E402

ARGS = sys.argv[1:]


def option(name, default):
    if name in ARGS:
        index = ARGS.index(name)
        value = ARGS[index + 1]
        del ARGS[index:index + 2]
        return value
    return default


CONFIG = "debug" if "--debug" in ARGS else "release"
if "--debug" in ARGS:
    ARGS.remove("--debug")
PATHS = int(option("--paths", "2"))
CSSD = option("--cssd", os.path.join(ROOT, f".build/{CONFIG}/cssd"))
CSSCTL = os.path.join(ROOT, f".build/{CONFIG}/cssctl")
SCRAPES = 200
VARIES = 11
CHPID = "0.11"


def start(topology, work, size):
    return start_with_metrics(CSSD, topology, work, size, timeout=120)


def measure_scrapes(port):
    server, _, body = scrapes(port, SCRAPES)
    return {"median": statistics.median(server) * 1e3, "p99": pct(server, 99) * 1e3, "max": max(server) * 1e3,
            "series": series_count(body)}


def measure_varies(sock):
    client, watcher = QMP(sock), QMP(sock)
    watcher.call("subscribe-path-events")
    offs, ons, events = [], [], []
    for _ in range(VARIES):
        for state, times in (("offline", offs), ("online", ons)):
            started = time.perf_counter()
            client.call("vary-path", chpid=CHPID, state=state)
            times.append(time.perf_counter() - started)
            # The subscriber's events up to the vary's own (a loss change follows it at once).
            count = watcher.events_until(
                lambda m: m["event"] == "CHANNEL_PATH_CHANGED" and m["data"]["change"] == state)
            if state == "offline":
                # A loss change, if any, comes right after: ask for something to see what is queued.
                watcher.sock.sendall(b'{"execute":"query-version"}')
                while "return" not in json.loads(watcher.file.readline()):
                    count += 1
                events.append(count)
    return {"offline_ms": statistics.median(offs) * 1e3, "offline_max_ms": max(offs) * 1e3,
            "online_ms": statistics.median(ons) * 1e3, "online_max_ms": max(ons) * 1e3,
            "events_per_offline": statistics.median(events)}


def main():
    sizes = [int(a) for a in ARGS] or [262144]
    results = {}
    with tempfile.TemporaryDirectory(dir="/tmp") as work:
        for size in sizes:
            topology = os.path.join(work, f"t{size}.json")
            subprocess.run([CSSCTL, "gen-topology", "--subchannels", str(size), "--chpids", "32", "--paths", str(PATHS),
                            "--output", topology], check=True)
            proc, sock, port = start(topology, work, size)
            try:
                scrapes = measure_scrapes(port)
                varies = measure_varies(sock)
                after = measure_scrapes(port)
                results[size] = {"scrape": scrapes, "vary": varies, "scrape_after": after}
                print(f"{size:>8} subchannels, {PATHS} paths ({CSSD}): scrape on the server median "
                      f"{scrapes['median']:.3f} ms, p99 {scrapes['p99']:.3f} ms, max {scrapes['max']:.3f} ms, "
                      f"{scrapes['series']} series; vary {CHPID} offline median {varies['offline_ms']:.2f} ms "
                      f"(max {varies['offline_max_ms']:.2f}), online {varies['online_ms']:.2f} ms "
                      f"(max {varies['online_max_ms']:.2f}), {varies['events_per_offline']} chpid events per "
                      f"vary offline; scrape after the varies median {after['median']:.3f} ms", flush=True)
            finally:
                proc.terminate()
                proc.wait()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
