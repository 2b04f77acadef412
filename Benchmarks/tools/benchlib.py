"""What the benchmarks share: a lean QMP client, percentiles, timed runs and /metrics scrapes.

Benchmarks import it with `sys.path.insert(0, os.path.join(os.path.dirname(__file__), "tools"))`.
The client is deliberately leaner than the test harness's (Tests/python/harness/qmp.py): no
per-line assertions on the hot path, so that what a benchmark times is cssd, not the client.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import time

try:  # a 262,144-subchannel reply is 90 MB: orjson parses it several times faster
    from orjson import loads
except ImportError:
    from json import loads


class QMP:
    """A negotiated QMP connection over a unix socket. `call` skips events and raises on an
    error reply; `raw` returns the reply as it came; `events_until` counts messages."""

    def __init__(self, path: str, timeout: float = 60):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # A hang guard, not a speed limit.
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")
        self.file.readline()
        #: Bytes of the last reply line (the page-size benchmarks report it).
        self.last_size = 0
        self.call("qmp_capabilities")

    def send(self, command: str, **arguments) -> None:
        request = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        self.sock.sendall(json.dumps(request).encode())

    def raw(self, command: str | None = None, **arguments) -> dict:
        """The next reply (events before it skipped); sends `command` first when given."""
        if command is not None:
            self.send(command, **arguments)
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("cssd closed the connection")
            message = loads(line)
            if "event" not in message:
                self.last_size = len(line)
                return message

    def reply(self):
        message = self.raw()
        if "return" not in message:
            raise RuntimeError(f"error reply: {message}")
        return message["return"]

    def call(self, command: str, **arguments):
        message = self.raw(command, **arguments)
        if "return" not in message:
            raise RuntimeError(f"{command}: {message}")
        return message["return"]

    def events_until(self, predicate) -> int:
        """Reads messages until `predicate(message)`; how many it read."""
        count = 0
        while True:
            message = loads(self.file.readline())
            count += 1
            if predicate(message):
                return count

    def vary_pipelined(self, count: int, first: int = 0, window: int = 64, chpid: str = "0.40", **extra) -> None:
        """`count` vary-path of `chpid`, alternately offline and online (offline when
        `first + i` is even), with at most `window` requests outstanding; returns when every
        reply is in."""
        outstanding = 0
        for i in range(count):
            self.send("vary-path", chpid=chpid, state="offline" if (first + i) % 2 == 0 else "online", **extra)
            outstanding += 1
            if outstanding >= window:
                self.reply()
                outstanding -= 1
        while outstanding:
            self.reply()
            outstanding -= 1

    def close(self) -> None:
        self.sock.close()


def wait_for_qmp(proc: subprocess.Popen, path: str, timeout: float = 300) -> QMP:
    """A connection to `path` once cssd (`proc`) accepts one; raises if it exits or the
    deadline passes (a big topology takes minutes to load on a debug build)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return QMP(path)
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"cssd exited with {proc.returncode}")
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("cssd did not start")


def pct(values, p):
    """The `p`th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def timed(function, runs: int = 9):
    """(median milliseconds over `runs` calls, the last call's result)."""
    times = []
    result = None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = function()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), result


def scrape(connection: http.client.HTTPConnection, accept: str = "text/plain"):
    """One GET /metrics: (body, client seconds)."""
    started = time.perf_counter()
    connection.request("GET", "/metrics", headers={"Accept": accept})
    response = connection.getresponse()
    body = response.read()
    assert response.status == 200, response.status
    return body, time.perf_counter() - started


def server_seconds(body: bytes) -> float:
    """cssd's own time for the previous scrape (`cssd_metrics_scrape_duration_seconds`)."""
    match = re.search(rb"^cssd_metrics_scrape_duration_seconds ([0-9.e+-]+)$", body, re.M)
    return float(match.group(1))


def scrapes(port: int, count: int, accept: str = "text/plain", timeout: float = 60):
    """`count` scrapes on one connection: (server seconds, client seconds, last body).

    Each scrape reports the previous one's server time, so `count + 2` are made and the
    first two server figures (0, then the connection's first scrape) are dropped; the client
    times drop the first scrape too."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    server, client = [], []
    body = b""
    for _ in range(count + 2):
        body, elapsed = scrape(connection, accept)
        server.append(server_seconds(body))
        client.append(elapsed)
    connection.close()
    return server[2:], client[1:-1], body


def series_count(body: bytes) -> int:
    """Samples in an exposition (lines that are neither empty nor comments)."""
    return sum(1 for line in body.split(b"\n") if line and not line.startswith(b"#"))


def start_with_metrics(binary: str, topology: str, work: str, tag, timeout: float = 60, extra=()):
    """cssd (`binary`) on `topology` with --metrics on a port it picks, its log in `work`:
    (process, QMP socket path, metrics port), once it listens on both."""
    sock = os.path.join(work, f"s{tag}.sock")
    log_path = os.path.join(work, f"cssd{tag}.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [binary, "--qmp", f"unix:{sock}", "--topology", topology, "--metrics", "tcp:127.0.0.1:0", *extra],
            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log_path) as f:
            match = re.search(r"address=tcp:127\.0\.0\.1:(\d+)\b.*metrics listening", f.read())
        if match and os.path.exists(sock):
            return proc, sock, int(match.group(1))
        if proc.poll() is not None:
            raise RuntimeError("cssd exited: " + open(log_path).read())
        time.sleep(0.01)
    proc.kill()
    raise RuntimeError("cssd did not start")
