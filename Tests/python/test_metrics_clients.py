"""The metrics endpoint against greedy, slow and unusual HTTP clients (issue #20).

- A client that pipelines thousands of scrapes and reads nothing holds one answer, not all of
  them: cssd's resident memory stays bounded and QMP is answered meanwhile.
- Sixteen slow clients (half a request, then nothing; reconnecting when closed) cannot keep
  real scrapes out: the connection that has waited longest for its request makes room.
- RFC 9112: an absolute-form request target is accepted; HTTP/1.1 without Host is 400.
"""

from __future__ import annotations

import http.client
import socket
import statistics
import threading
import time

from harness.net import wait_until
from harness.prometheus import raw_http
from harness.qmp import Client


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _round_trips(client: Client, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.monotonic()
        assert "qemu" in client.call("query-version")
        times.append(time.monotonic() - started)
    return times


def test_pipelined_scrapes_that_are_never_read_hold_one_answer(metrics_cssd):
    """8,000 pipelined GET /metrics (about 300 KB) and no read: before, cssd made and buffered
    every answer (hundreds of MiB) and QMP waited seconds; now it answers one at a time, each
    after the previous one was written, and stops reading meanwhile."""
    port = metrics_cssd.extra["metrics_port"]
    pid = metrics_cssd.proc.pid
    client = Client(metrics_cssd.sock)
    greedy = socket.create_connection(("127.0.0.1", port))
    try:
        baseline = statistics.median(_round_trips(client, 50))
        rss_before = _rss_kib(pid)
        request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
        payload = request * 8000
        greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        greedy.setblocking(False)
        sent = 0
        during: list[float] = []
        deadline = time.monotonic() + 20
        # Send what cssd takes (it stops reading once its answers back up), asking QMP
        # meanwhile; then give cssd time to work through what it took.
        while sent < len(payload) and time.monotonic() < deadline:
            try:
                sent += greedy.send(payload[sent:sent + 65536])
            except BlockingIOError:
                pass
            during += _round_trips(client, 5)
        settle = time.monotonic() + 3
        while time.monotonic() < settle:
            during += _round_trips(client, 5)
        rss_after = _rss_kib(pid)
        # One metrics answer is some tens of KiB; before the fix the growth was over 100 MiB.
        assert rss_after - rss_before < 48 * 1024, (rss_before, rss_after, sent)
        # QMP round trips stay in the order of the baseline (generous: a loaded machine).
        assert statistics.median(during) < max(20 * baseline, 0.25), (baseline, statistics.median(during))
        assert max(during) < 5.0, (baseline, max(during))  # a sanity bound; 1.4 s before, 0.1 s now
        # The greedy client gets its answers in order when it finally reads.
        greedy.setblocking(True)
        greedy.settimeout(10)
        data = b""
        while data.count(b"HTTP/1.1 200 OK") < 3:
            chunk = greedy.recv(65536)
            assert chunk, data[-200:]
            data += chunk
        assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    finally:
        greedy.close()
        client.close()
    assert metrics_cssd.alive()


def _slowloris(port: int, stop: threading.Event, counts: dict) -> None:
    """Half a request, then nothing; when cssd closes the connection, again."""
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: slow\r\nX-Trickle: ")
                counts["connects"] += 1
                while not stop.is_set():
                    try:
                        if not s.recv(4096):
                            break
                    except socket.timeout:
                        continue
        except OSError:
            time.sleep(0.01)


def _scrape_status(port: int) -> int | str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException) as error:
        return type(error).__name__
    finally:
        connection.close()


def test_sixteen_slow_clients_do_not_keep_scrapes_out(metrics_cssd):
    """16 slowloris clients take the 16 connections; 20 scrapes at one a second still get
    their 200 (at least 18), because a new connection at the limit closes the one that has
    waited longest for a request."""
    port = metrics_cssd.extra["metrics_port"]
    stop = threading.Event()
    counts = {"connects": 0}
    threads = [threading.Thread(target=_slowloris, args=(port, stop, counts), daemon=True) for _ in range(16)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: counts["connects"] >= 16, 10, "16 slow clients connected")
        time.sleep(0.5)
        statuses = []
        next_time = time.monotonic()
        for _ in range(20):
            statuses.append(_scrape_status(port))
            next_time += 1.0
            time.sleep(max(0.0, next_time - time.monotonic()))
        assert statuses.count(200) >= 18, statuses
        client = Client(metrics_cssd.sock)
        try:
            assert "qemu" in client.call("query-version")
        finally:
            client.close()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    assert metrics_cssd.alive()


def test_absolute_form_and_host(metrics_cssd):
    """RFC 9112 3.2: a server accepts the absolute form; HTTP/1.1 without Host (or with two)
    is 400; HTTP/1.0 needs no Host."""
    port = metrics_cssd.extra["metrics_port"]
    cases = [
        (b"GET http://127.0.0.1:%d/metrics HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n" % (port, port),
         b"HTTP/1.1 200 OK\r\n"),
        (b"GET HTTP://LOCALHOST/metrics?x=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
         b"HTTP/1.1 200 OK\r\n"),
        (b"GET http://127.0.0.1/other HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
         b"HTTP/1.1 404 Not Found\r\n"),
        (b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\n"),
        (b"GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\n"),
        (b"GET /metrics HTTP/1.0\r\n\r\n", b"HTTP/1.0 200 OK\r\n"),
    ]
    for request, status in cases:
        answer = raw_http(port, request)
        assert answer.startswith(status), (request, answer[:300])
        if status.endswith(b"200 OK\r\n"):
            assert b"cssd_build_info{" in answer
    assert metrics_cssd.alive()
