"""Lifecycle cases found by trying real clients (issue 11), against cssd and QEMU 7.2 alike.

- A client that sends its requests and half-closes (``... | socat - UNIX-CONNECT:S``,
  ``shutdown(SHUT_WR)``) gets a whole reply to every request, then EOF.
- A client that writes a whole batch with one blocking write and only then reads
  (40,000 ``query-version``, 1.5 MB) gets every reply; no deadlock.
- A client that never reads is bounded: cssd stops reading it, its memory stays bounded, and
  others are served (the Swift live tests check the latter).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time

import pytest

CAPS = b'{"execute":"qmp_capabilities"}'
CRLF = b"\r\n"


def _requests(command: str, count: int) -> bytes:
    return b"".join(b'{"execute":"%s","id":%d}' % (command.encode(), i) for i in range(count))


def _read_to_eof(s: socket.socket, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    data = bytearray()
    while time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = s.recv(1 << 20)
        except socket.timeout:
            break
        if not chunk:
            return bytes(data)
        data += chunk
    raise AssertionError(f"no EOF within {timeout}s ({len(data)} bytes, {data.count(CRLF)} lines)")


def _check_replies(data: bytes, count: int) -> None:
    """Greeting, the negotiation reply, then `count` replies with ids 0..count-1, whole lines."""
    assert data.endswith(b"\r\n"), f"torn last line: {data[-120:]!r}"
    lines = data.split(b"\r\n")[:-1]
    assert len(lines) == count + 2, f"{len(lines) - 2} replies of {count}"
    assert b'"QMP"' in lines[0]
    assert json.loads(lines[1]) == {"return": {}}
    for i, line in enumerate(lines[2:]):
        reply = json.loads(line)
        assert "return" in reply and reply["id"] == i, line[:200]


def _command(server) -> str:
    # Large replies: cssd's subchannel list, QEMU's schema (about 200 KB each).
    return "query-subchannels" if server.name == "cssd" else "query-qmp-schema"


@pytest.mark.parametrize("how", ["shutdown", "socat"])
def test_half_close_gets_every_reply(any_server, how):
    command = _command(any_server)
    payload = CAPS + _requests(command, 40)
    if how == "socat":
        if shutil.which("socat") is None:
            pytest.skip("socat not installed")
        done = subprocess.run(["socat", "-t", "30", "-", f"UNIX-CONNECT:{any_server.sock}"], input=payload,
                              capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
        data = done.stdout
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(any_server.sock)
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        data = _read_to_eof(s, 60)
        s.close()
    _check_replies(data, 40)
    assert any_server.alive()


def test_half_close_inside_a_value_drops_it_without_reply(any_server):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(any_server.sock)
    s.sendall(CAPS + _requests("query-version", 3) + b'{"execute":"query-version"')
    s.shutdown(socket.SHUT_WR)
    data = _read_to_eof(s, 30)
    s.close()
    _check_replies(data, 3)


def test_blocking_batch_then_read(any_server):
    """One blocking write of 40,000 requests (1.5 MB), then read: every reply, in order."""
    count = 40_000
    payload = _requests("query-version", count)
    assert len(payload) > 1_400_000
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(any_server.sock)
    s.settimeout(10)
    s.recv(4096)  # greeting
    s.sendall(CAPS)
    assert s.recv(4096).startswith(b'{"return": {}}')
    # A server that stops reading while its replies are not read deadlocks here.
    s.settimeout(60)
    s.sendall(payload)
    data = bytearray()
    while data.count(b"\r\n") < count:
        chunk = s.recv(1 << 20)
        assert chunk, f"EOF after {data.count(CRLF)} replies"
        data += chunk
    s.close()
    lines = bytes(data).split(b"\r\n")
    assert len(lines) == count + 1 and lines[-1] == b""
    assert json.loads(lines[0])["id"] == 0 and json.loads(lines[-2])["id"] == count - 1


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_client_that_never_reads_is_bounded(cssd):
    """20 MB of requests from a client that reads nothing: cssd stops reading it (the writer
    blocks) and holds at most the input backlog (4 MiB) plus its output mark."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(cssd.sock)
    s.recv(4096)
    s.sendall(CAPS)
    before = _rss_kib(cssd.proc.pid)
    payload = _requests("query-version", 20 * 1024 * 1024 // 37)
    sent = [0]

    def writer():
        try:
            view = memoryview(payload)
            while view:
                n = s.send(view[:65536])
                sent[0] += n
                view = view[n:]
        except OSError:
            pass

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    time.sleep(3)
    assert t.is_alive(), "the server read everything from a client that reads nothing"
    grown = _rss_kib(cssd.proc.pid) - before
    assert sent[0] < 12 * 1024 * 1024, sent[0]
    assert grown < 48 * 1024, f"cssd grew by {grown} KiB"
    s.close()
    t.join(10)
    assert cssd.alive()
