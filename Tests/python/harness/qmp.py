"""Talking QMP to cssd (and QEMU) over a socket.

- Client: a negotiated connection that reads line by line and keeps events apart from
  replies; `call` asserts a return, `error` an error.
- exchange / exchange_full: raw bytes in (optionally in chunks), every reply line out, with
  bounded waits; what the QEMU compatibility cases compare.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Union

from .net import ExchangeError, read_line as _read_line

#: How long to wait for more replies once the expected number has arrived
#: (catches servers that send too many replies).
GRACE = float(os.environ.get("QMP_TEST_GRACE", "0.25"))
#: Idle timeout used when the number of expected replies is unknown.
IDLE = float(os.environ.get("QMP_TEST_IDLE", "0.5"))
#: Silence after which we stop waiting for replies we still expect.
STALL = float(os.environ.get("QMP_TEST_STALL", "3"))
#: Hard upper bound for one exchange.
HARD_TIMEOUT = float(os.environ.get("QMP_TEST_TIMEOUT", "10"))

_NO_ID = object()
UNPARSEABLE = "<unparseable>"


class Client:
    """A negotiated QMP connection with a line reader that keeps events apart from replies."""

    def __init__(self, path: str, rcvbuf: int | None = None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        # A hang guard, not a speed limit: a reply on a loaded machine may take seconds.
        self.sock.settimeout(60)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")
        assert "QMP" in self.line()
        assert self.call("qmp_capabilities") == {}

    def line(self) -> dict:
        raw = self.file.readline()
        assert raw.endswith(b"\r\n"), raw
        return json.loads(raw)

    def send(self, command: str, **arguments) -> None:
        request = {"execute": command}
        if arguments:
            request["arguments"] = {k.replace("_", "-"): v for k, v in arguments.items()}
        self.sock.sendall(json.dumps(request).encode())

    def reply(self, events: list | None = None) -> dict:
        """The next reply; events before it go to `events` (or fail the test)."""
        while True:
            message = self.line()
            if "event" in message:
                assert events is not None, f"unexpected event {message}"
                events.append(message)
                continue
            return message

    def call(self, command: str, events: list | None = None, **arguments):
        self.send(command, **arguments)
        reply = self.reply(events)
        assert "return" in reply, reply
        return reply["return"]

    def call_raw(self, command: str) -> dict:
        self.send(command)
        return self.reply()

    def error(self, command: str, **arguments) -> dict:
        self.send(command, **arguments)
        reply = self.reply()
        assert "error" in reply, reply
        return reply["error"]

    def events(self, n: int) -> list:
        out = []
        while len(out) < n:
            message = self.line()
            assert "event" in message, message
            out.append(message)
        return out

    def nothing_pending(self) -> bool:
        """No event queued: a query's reply comes first (the server writes queued events first)."""
        self.send("query-version")
        return "return" in self.line()

    def close(self):
        self.sock.close()


def vary(client, chpid, state, **kw):
    return client.call("vary-path", chpid=chpid, state=state, **kw)


def data_without_subscription(event):
    data = dict(event["data"])
    data.pop("subscription")
    return event["event"], event["timestamp"], data


def visible_state(c):
    return [c.call("query-chpids"), c.call("query-subchannels"), c.call("query-guests"), c.call("query-css"),
            c.call("query-path-event-journal")]


def greeted(s: socket.socket, timeout: float) -> bool:
    """Whether a QMP greeting arrives on `s` within `timeout` s."""
    s.settimeout(timeout)
    data = b""
    try:
        while not data.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                return False
            data += chunk
    except socket.timeout:
        return False
    return "QMP" in json.loads(data)


def burst(path: str, count: int) -> tuple[list[socket.socket], list[str]]:
    """`count` non-blocking connects to a unix socket; the sockets and the refusals."""
    sockets, refused = [], []
    for _ in range(count):
        s = socket.socket(socket.AF_UNIX)
        s.setblocking(False)
        try:
            s.connect(path)
            sockets.append(s)
        except OSError as error:
            refused.append(os.strerror(error.errno))
            s.close()
    return sockets, refused


def burst_while_stopped(pid: int, path: str, count: int = 300) -> None:
    """The burst while cssd is stopped (SIGSTOP), so that only the backlog holds the
    connections; then every one gets its greeting."""
    os.kill(pid, signal.SIGSTOP)
    try:
        sockets, refused = burst(path, count)
    finally:
        os.kill(pid, signal.SIGCONT)
    try:
        assert refused == [], f"{len(refused)} of {count} refused: {refused[:3]}"
        for s in sockets:
            s.setblocking(True)
            assert greeted(s, 20)
    finally:
        for s in sockets:
            s.close()


Chunking = Union[None, int, Sequence[int]]


def _split(data: bytes, chunks: Chunking) -> List[bytes]:
    """Split data: None -> one piece; int n -> pieces of n bytes; list -> cut offsets."""
    if not chunks or not data:
        return [data]
    if isinstance(chunks, int):
        return [data[i: i + chunks] for i in range(0, len(data), chunks)]
    out, prev = [], 0
    for cut in chunks:
        out.append(data[prev:cut])
        prev = cut
    out.append(data[prev:])
    return [c for c in out if c]


@dataclass
class Exchange:
    greeting: Any
    replies: List[Any]
    raw_lines: List[bytes]
    closed_by_peer: bool
    greeting_line: bytes = b""


def exchange_full(sock_path: str, raw: bytes, negotiate: bool = True, *,
                  chunks: Chunking = None, chunk_delay: float = 0.0,
                  expect: Optional[int] = None, until_id: Any = _NO_ID,
                  grace: float = GRACE, idle: float = IDLE,
                  stall: float = STALL,
                  timeout: float = HARD_TIMEOUT) -> Exchange:
    """Like :func:`exchange` but returns greeting, raw lines and EOF state too.

    Data is sent from a helper thread while this thread reads, so a server that
    blocks on writing replies cannot deadlock against a client that is still
    sending.
    """
    deadline = time.monotonic() + timeout
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(min(timeout, 5.0))
    buf = bytearray()
    sender: Optional[threading.Thread] = None
    send_error: List[BaseException] = []
    tx: Optional[socket.socket] = None
    try:
        s.connect(sock_path)
        greeting_line = _read_line(s, deadline, buf)
        greeting = json.loads(greeting_line)
        if negotiate:
            s.sendall(b'{"execute":"qmp_capabilities"}')
            line = _read_line(s, deadline, buf)
            neg = json.loads(line)
            if neg != {"return": {}}:
                raise ExchangeError(f"negotiation failed: {line!r}")
        pieces = _split(raw, chunks)
        tx = s.dup()

        def send_all():
            try:
                for n, piece in enumerate(pieces):
                    tx.settimeout(max(0.001, deadline - time.monotonic()))
                    tx.sendall(piece)
                    if chunk_delay and n + 1 < len(pieces):
                        time.sleep(chunk_delay)
            except BaseException as e:  # reported below
                send_error.append(e)

        sender = threading.Thread(target=send_all, daemon=True)
        sender.start()
        lines: List[bytes] = []
        closed = False
        done_at: Optional[float] = None  # when the stop condition was first met

        def satisfied() -> bool:
            if until_id is not _NO_ID:
                for ln in lines:
                    try:
                        obj = json.loads(ln)
                    except ValueError:
                        continue
                    if isinstance(obj, dict) and obj.get("id") == until_id:
                        return True
                return False
            return expect is not None and len(lines) >= expect

        # Collect complete lines.  Stop when: the expected count / id arrived
        # and nothing more came within `grace`; or (no expectation) nothing
        # came for `idle` seconds after everything was sent.
        while True:
            while True:
                i = buf.find(b"\n")
                if i < 0:
                    break
                lines.append(bytes(buf[: i + 1]))
                del buf[: i + 1]
            now = time.monotonic()
            if now >= deadline:
                break
            polling = sender.is_alive()
            if polling:
                wait = 0.05           # re-check soon: sending may finish any moment
            elif satisfied():
                wait = grace
            elif expect is None and until_id is _NO_ID:
                wait = idle
            else:
                wait = stall          # expected more: give up after this much silence
            s.settimeout(max(0.001, min(wait, deadline - now)))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                if polling:      # short poll while sending: not a real silence
                    continue
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            buf += chunk
        if buf:
            lines.append(bytes(buf))  # unterminated trailing data: keep for diagnosis
        replies = []
        for ln in lines:
            try:
                replies.append(json.loads(ln))
            except ValueError:
                replies.append({UNPARSEABLE: ln.decode("latin-1")})
        return Exchange(greeting, replies, lines, closed, greeting_line)
    except socket.timeout as e:
        raise ExchangeError(f"timeout talking to {sock_path}: {e}") from e
    finally:
        if tx is not None:
            try:
                tx.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if sender is not None:
            sender.join(timeout=5)
        if tx is not None:
            tx.close()
        s.close()


def exchange(sock_path: str, raw: bytes, negotiate: bool = True, **kw) -> List[Any]:
    """Connect, read greeting, optionally negotiate, send `raw`, return replies.

    Keyword args: chunks (None | int | list of offsets), chunk_delay (s),
    expect (int: number of replies to wait for, then a short grace period),
    until_id (stop once a reply with this id arrived, then grace),
    grace, idle (silence that ends an exchange with no expectation),
    stall (silence that ends an exchange still short of `expect`), timeout.
    """
    return exchange_full(sock_path, raw, negotiate, **kw).replies
