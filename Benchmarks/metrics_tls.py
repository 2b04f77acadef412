#!/usr/bin/env python3
"""What TLS adds to a Prometheus scrape of cssd: HTTPS beside plain HTTP, in one run.

Two release cssd serve the same synthetic topology (`cssctl gen-topology`, 32 chpids, 8 paths
per subchannel): one with `--metrics` alone (HTTP), one with `--tls-creds` and `--tls-authz`
(HTTPS, client certificate, DN checked), certificates made by openssl (Tests/python/harness/pki.py).
The client (Python's http.client and ssl, so its own TLS cost is in the figures) alternates
between the two in rounds of ROUND scrapes, so that both see the same machine load:
- keep-alive: scrapes on one open connection (what Prometheus does between scrapes);
- new connection: a connect (and a TLS handshake) per scrape (a Prometheus that reconnects,
  or one scrape after a restart);
and reports the client's round trip (median, p99) and the server's own figure
(cssd_metrics_scrape_duration_seconds, the same work on both).

Usage: Benchmarks/metrics_tls.py [SUBCHANNELS]   (default 65536)
Build first: swift build -c release --product cssd && swift build -c release --product cssctl
"""

import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Tests", "python"))

from metrics import CSSCTL, CSSD, OPENMETRICS, pct, scrape, server_seconds  # noqa: E402
from harness.pki import PKI  # noqa: E402

ROUNDS = 10
ROUND = 100  # scrapes per round and mode
POLICY = '{"policy": "deny", "rules": [{"match": "*,CN=mgmt", "policy": "allow", "format": "glob"}]}'


def start(work, name, topology, extra):
    import re
    sock = os.path.join(work, f"{name}.sock")
    log_path = os.path.join(work, f"{name}.log")
    log = open(log_path, "wb")
    proc = subprocess.Popen([CSSD, "--qmp", f"unix:{sock}", "--topology", topology,
                             "--metrics", "tcp:127.0.0.1:0", *extra], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with open(log_path) as f:
            match = re.search(r"address=tcp:127\.0\.0\.1:(\d+)\b.*metrics listening", f.read())
        if match:
            return proc, int(match.group(1))
        if proc.poll() is not None:
            raise RuntimeError("cssd exited: " + open(log_path).read())
        time.sleep(0.01)
    raise RuntimeError("cssd did not start")


def one(connection):
    """One OpenMetrics scrape: (body, seconds)."""
    return scrape(connection, OPENMETRICS)


def main():
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 65536
    with tempfile.TemporaryDirectory(dir="/tmp") as work:
        pki = PKI(os.path.join(work, "pki"))
        policy = os.path.join(work, "authz.json")
        with open(policy, "w") as f:
            f.write(POLICY)
        topology = os.path.join(work, "t.json")
        subprocess.run([CSSCTL, "gen-topology", "--subchannels", str(size), "--chpids", "32", "--paths", "8",
                        "--output", topology], check=True)
        plain, plain_port = start(work, "plain", topology, [])
        tls, tls_port = start(work, "tls", topology, ["--tls-creds", pki.server, "--tls-authz", policy])
        context = pki.context("mgmt")

        def connect(kind):
            if kind == "tls":
                return http.client.HTTPSConnection("127.0.0.1", tls_port, timeout=30, context=context)
            return http.client.HTTPConnection("127.0.0.1", plain_port, timeout=30)

        figures = {(kind, mode): [] for kind in ("plain", "tls") for mode in ("keepalive", "connect")}
        server = {"plain": [], "tls": []}
        try:
            kept = {kind: connect(kind) for kind in ("plain", "tls")}
            for kind in kept:  # warm up: the first scrape, and the handshake of the kept connection
                one(kept[kind])
            for _ in range(ROUNDS):
                for kind in ("plain", "tls"):
                    for _ in range(ROUND):
                        body, elapsed = one(kept[kind])
                        figures[(kind, "keepalive")].append(elapsed)
                        server[kind].append(server_seconds(body))
                    for _ in range(ROUND):
                        connection = connect(kind)
                        started = time.perf_counter()
                        one(connection)
                        figures[(kind, "connect")].append(time.perf_counter() - started)
                        connection.close()
        finally:
            for proc in (plain, tls):
                proc.terminate()
                proc.wait()
        print(f"{size} subchannels, {ROUNDS} rounds of {ROUND} scrapes per mode, plain and TLS alternating; "
              f"client round trip in ms (Python http.client/ssl):")
        for mode, label in (("keepalive", "keep-alive connection"), ("connect", "new connection per scrape")):
            row = []
            for kind in ("plain", "tls"):
                values = figures[(kind, mode)]
                row.append(f"{kind} median {statistics.median(values) * 1e3:.3f} p99 {pct(values, 99) * 1e3:.3f}")
            ratio = statistics.median(figures[("tls", mode)]) / statistics.median(figures[("plain", mode)])
            print(f"  {label:<26}: {'; '.join(row)}; TLS/plain median {ratio:.2f}x")
        for kind in ("plain", "tls"):
            values = server[kind]
            print(f"  server-side scrape ({kind}): median {statistics.median(values) * 1e3:.3f} ms, "
                  f"p99 {pct(values, 99) * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
