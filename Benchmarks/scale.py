#!/usr/bin/env python3
"""How cssd's costs grow with the topology (issue 4's figures), measured over a real socket.

For each size: generate a synthetic topology (32 chpids, 8 paths per subchannel) with
`cssctl gen-topology`, start release cssd on it, and measure
- start-up: from exec to the socket accepting a connection;
- memory: VmRSS above an almost empty server (one subchannel), per subchannel;
- vary-path on one chpid: round trip as the client sees it (median of 9 offline/online);
- query-subchannels on one chpid, in pages of 4,096: all pages, as the client sees them.
Usage: Benchmarks/scale.py [SIZES...]   (default 32768 65536 131072 262144)
Build first: swift build -c release --product cssd && swift build -c release --product cssctl
(CSSD=PATH and CSSCTL=PATH run other binaries.)
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Benchmarks", "tools"))
from benchlib import QMP  # noqa: E402  (parses with orjson where installed)

CSSD = os.environ.get("CSSD", os.path.join(ROOT, ".build/release/cssd"))
CSSCTL = os.environ.get("CSSCTL", os.path.join(ROOT, ".build/release/cssctl"))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start(topology, sock):
    began = time.perf_counter()
    proc = subprocess.Popen([CSSD, "--qmp", f"unix:{sock}", "--topology", topology, "--log-level", "warning"])
    while True:
        try:
            probe = socket.socket(socket.AF_UNIX)
            probe.connect(sock)
            probe.close()
            return proc, time.perf_counter() - began
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("cssd exited")
            time.sleep(0.002)


def measure(size, work):
    topology = os.path.join(work, f"t{size}.json")
    subprocess.run([CSSCTL, "gen-topology", "--subchannels", str(size), "--chpids", "32", "--paths", "8",
                    "--output", topology], check=True)
    sock = os.path.join(work, f"s{size}.sock")
    proc, startup = start(topology, sock)
    try:
        client = QMP(sock, timeout=None)
        time.sleep(0.2)
        rss = rss_kib(proc.pid)
        chpid = client.call("query-chpids")[0]["chpid"]
        varies = []
        for i in range(9):
            for state in ("offline", "online"):
                t = time.perf_counter()
                changed = client.call("vary-path", chpid=chpid, state=state)["changed"]
                varies.append(time.perf_counter() - t)
        def page_all(parse):
            """All pages of one chpid; with parse=False the client only reads each reply line
            and takes 'next' from its tail (the server's and the transfer's cost)."""
            t = time.perf_counter()
            seen, start_id = 0, None
            while True:
                arguments = {"chpid": chpid, "limit": 4096}
                if start_id:
                    arguments["start"] = start_id
                if parse:
                    page = client.call("query-subchannels", **arguments)
                    seen += len(page["subchannels"])
                    start_id = page.get("next")
                else:
                    client.sock.sendall(json.dumps({"execute": "query-subchannels", "arguments": arguments}).encode())
                    line = client.file.readline()
                    seen += line.count(b'"subchannel": ')
                    at = line.rfind(b'"next": "')
                    start_id = line[at + 9:line.index(b'"', at + 9)].decode() if at >= 0 else None
                if not start_id:
                    return (time.perf_counter() - t) * 1000, seen
        paging, seen = page_all(parse=False)
        parsed, _ = page_all(parse=True)
        return {"size": size, "per_chpid": changed, "startup_s": startup, "rss_kib": rss,
                "vary_ms": statistics.median(varies) * 1000, "paging_ms": paging, "parsed_ms": parsed, "paged": seen}
    finally:
        proc.terminate()
        proc.wait()


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [32768, 65536, 131072, 262144]
    with tempfile.TemporaryDirectory(prefix="cssd-scale-", dir="/tmp") as work:
        baseline = measure(8, work)["rss_kib"]
        print(f"empty-ish server (8 subchannels): VmRSS {baseline} KiB")
        print("| subchannels | per chpid | start-up | RSS above empty | per subchannel | vary-path (median) "
              "| all pages of 4,096 on one chpid | the same, parsed (orjson) |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for size in sizes:
            r = measure(size, work)
            above = (r["rss_kib"] - baseline) * 1024
            print(f"| {size:,} | {r['per_chpid']:,} | {r['startup_s'] * 1000:.0f} ms | {above / 1048576:.1f} MiB "
                  f"| {above / size:.0f} B | {r['vary_ms']:.2f} ms | {r['paging_ms']:.0f} ms ({r['paged']:,} entries) "
                  f"| {r['parsed_ms']:.0f} ms |")


if __name__ == "__main__":
    main()
