"""Helpers for talking raw QMP to QEMU (the oracle) and to cssd.

Everything here is bounded in time: sockets have timeouts, process waits have
timeouts, and servers are killed (SIGTERM, then SIGKILL) when stopped.

The central helper is :func:`exchange`: connect, read the greeting, optionally
negotiate, send raw bytes (optionally in chunks), collect the replies.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, List, Optional, Sequence, Union

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
RECORD_FILE = HERE / "qemu_replies.json"

QEMU_BINARY = "qemu-system-s390x"
QEMU_ARGS = ["-machine", "s390-ccw-virtio", "-nodefaults", "-display", "none", "-S"]

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
PLACEHOLDER = "<version>"
LIST_PLACEHOLDER = "<list>"


# --------------------------------------------------------------------------
# Locating binaries
# --------------------------------------------------------------------------

def qemu_binary() -> Optional[str]:
    """Path of qemu-system-s390x, or None (env QEMU_BIN overrides)."""
    env = os.environ.get("QEMU_BIN")
    if env:
        return env if os.access(env, os.X_OK) else None
    return shutil.which(QEMU_BINARY)


def cssd_binary() -> Optional[str]:
    """Path of the cssd binary (env CSSD_BIN overrides), or None if missing."""
    path = os.environ.get("CSSD_BIN") or str(REPO_ROOT / ".build" / "debug" / "cssd")
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


# --------------------------------------------------------------------------
# Server processes
# --------------------------------------------------------------------------

class ServerStartError(RuntimeError):
    pass


def wait_for_unix_socket(path: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Poll until `path` accepts a connection (or the process dies / timeout)."""
    deadline = time.monotonic() + timeout
    last_err: Optional[BaseException] = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerStartError(f"server exited with status {proc.returncode} before listening")
        if os.path.exists(path):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(1.0)
            try:
                s.connect(path)
                # Probe connection: read the greeting so that single-client
                # servers (QEMU) see a clean connect/disconnect.
                try:
                    _read_line(s, time.monotonic() + 2.0, bytearray())
                except Exception:
                    pass
                return
            except OSError as e:
                last_err = e
            finally:
                s.close()
        time.sleep(0.05)
    raise ServerStartError(f"socket {path} not ready after {timeout}s ({last_err})")


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the test process dies (Linux), so that no
    server outlives an interrupted test run."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


@dataclass
class Server:
    """A running QMP server process with its socket(s)."""

    name: str
    argv: List[str]
    sock: str
    workdir: str
    proc: Optional[subprocess.Popen] = None
    log_path: Optional[str] = None
    extra: dict = field(default_factory=dict)

    # The timeouts below are hang guards, not speed limits: start waits for the socket (or the
    # process's death), stop for the exit; on a loaded 2-core machine either may take seconds
    # (a clean stop writes a snapshot and fsyncs), and a test that asserts on a clean stop must
    # not see a SIGKILL because the machine was busy. A test of a bound passes its own timeout.
    def start(self, timeout: float = 60.0) -> "Server":
        self.log_path = os.path.join(self.workdir, f"{self.name}.log")
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_die_with_parent,
            )
        finally:
            log.close()
        try:
            wait_for_unix_socket(self.sock, self.proc, timeout)
        except BaseException:
            self.stop()
            raise ServerStartError(f"{self.name} did not start: {self.log_tail()}")
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 60.0) -> Optional[int]:
        p = self.proc
        if p is None:
            return None
        if p.poll() is None:
            self.extra["stopped"] = True  # else it had exited by itself (describe_end)
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=timeout)
            except ProcessLookupError:
                pass
        return p.returncode

    def describe_end(self, n: int = 20_000) -> str:
        """How the process ended and the tail of its log, for a failed test's report."""
        if self.proc is None:
            return f"{self.name}: never started"
        code = self.proc.poll()
        if code is None:
            how = "still running"
        elif self.extra.get("stopped"):
            how = f"stopped by the test (SIGTERM), exit status {code}"
        else:
            how = f"EXITED BY ITSELF during the test, exit status {code}"
        return f"--- {self.name} pid {self.proc.pid}: {how}; {' '.join(self.argv)}\n{self.log_tail(n)}"

    def log_tail(self, n: int = 4000) -> str:
        try:
            with open(self.log_path or "", "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def qemu_server(workdir: str, sock: Optional[str] = None) -> Server:
    binary = qemu_binary()
    if not binary:
        raise ServerStartError(f"{QEMU_BINARY} not found on PATH")
    sock = sock or os.path.join(workdir, "qemu.sock")
    argv = [binary, *QEMU_ARGS, "-qmp", f"unix:{sock},server=on,wait=off"]
    return Server("qemu", argv, sock, workdir)


def cssd_server(workdir: str, sock: Optional[str] = None, extra_args: Sequence[str] = ()) -> Server:
    binary = cssd_binary()
    if not binary:
        raise ServerStartError("cssd binary not found (build it or set CSSD_BIN)")
    sock = sock or os.path.join(workdir, "cssd.sock")
    argv = [binary, "--qmp", f"unix:{sock}", *extra_args]
    return Server("cssd", argv, sock, workdir)


# --------------------------------------------------------------------------
# Raw exchanges
# --------------------------------------------------------------------------

def test_failed(request) -> bool:
    """Whether the test that `request` (a fixture's) belongs to failed in its call phase
    (conftest.py keeps each phase's report on the item)."""
    report = getattr(request.node, "rep_call", None)
    return report is not None and report.failed


class ExchangeError(RuntimeError):
    pass


def _read_line(s: socket.socket, deadline: float, buf: bytearray) -> bytes:
    """Read one CRLF/LF terminated line from s (buf holds leftovers)."""
    while True:
        i = buf.find(b"\n")
        if i >= 0:
            line = bytes(buf[: i + 1])
            del buf[: i + 1]
            return line
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ExchangeError(f"timeout waiting for a line (have {bytes(buf)[:200]!r})")
        s.settimeout(remaining)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            raise ExchangeError(f"timeout waiting for a line (have {bytes(buf)[:200]!r})")
        if not chunk:
            raise ExchangeError(f"connection closed while waiting for a line (have {bytes(buf)[:200]!r})")
        buf += chunk


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


# --------------------------------------------------------------------------
# Normalisation / comparison
# --------------------------------------------------------------------------

def normalize(replies: Iterable[Any], case_id: str = "") -> List[Any]:
    """Mask values that legitimately differ between QEMU and cssd.

    - query-version returns (recognised by shape) -> PLACEHOLDER
    - greeting objects -> version/package masked
    - list returns (query-commands / query-qmp-schema) -> LIST_PLACEHOLDER
    """
    out = []
    for r in replies:
        if isinstance(r, dict):
            r = dict(r)
            if "QMP" in r:
                r["QMP"] = mask_greeting(r["QMP"])
            if "return" in r:
                ret = r["return"]
                if _is_version(ret):
                    r["return"] = PLACEHOLDER
                elif isinstance(ret, list):
                    r["return"] = LIST_PLACEHOLDER
        out.append(r)
    return out


#: QEMU's version object exactly as QEMU 7.2 writes it (member order and spacing included):
#: only a reply written byte for byte like QEMU's gets its numbers masked.
_VERSION_TEXT = re.compile(
    rb'\{"qemu": \{"micro": -?\d+, "minor": -?\d+, "major": -?\d+\}, "package": "(?:[^"\\\\]|\\\\.)*"\}')
_LIST_RETURN = b'{"return": ['


def mask_line(line: bytes) -> bytes:
    """One raw reply line with what legitimately differs between QEMU and cssd masked, for a
    byte-for-byte comparison: the version object (numbers and package) and the list a
    query-commands / query-qmp-schema reply returns. Everything else, spacing and member
    order included, stays."""
    line = _VERSION_TEXT.sub(PLACEHOLDER.encode(), line)
    if line.startswith(_LIST_RETURN):
        text = line.decode("latin-1")
        try:
            _, end = json.JSONDecoder().raw_decode(text, len(_LIST_RETURN) - 1)
        except ValueError:
            return line
        line = line[: len(_LIST_RETURN) - 1] + LIST_PLACEHOLDER.encode() + line[end:]
    return line


def _is_version(v: Any) -> bool:
    return (isinstance(v, dict) and set(v) == {"qemu", "package"}
            and isinstance(v["qemu"], dict)
            and set(v["qemu"]) == {"major", "minor", "micro"})


def mask_greeting(qmp: Any) -> Any:
    if isinstance(qmp, dict) and _is_version(qmp.get("version")):
        qmp = dict(qmp)
        qmp["version"] = PLACEHOLDER
    return qmp


#: QMP_TEST_STRICT_NUMBERS=1: 1500 (int) and 1500.0 (float) compare unequal.
#: Default: numbers compare by value, like the parsed JSON values they are
#: (QEMU prints every double with %.17g, so 1.5e3 comes back as 1500).
STRICT_NUMBERS = os.environ.get("QMP_TEST_STRICT_NUMBERS") == "1"


def canonical(v: Any, strict_numbers: Optional[bool] = None) -> Any:
    """Comparable form: booleans are tagged (so true != 1), numbers compare
    by value (exactly: Python compares int and float without rounding), or
    by type and value when strict_numbers."""
    strict = STRICT_NUMBERS if strict_numbers is None else strict_numbers
    if isinstance(v, bool):
        return ["bool", v]
    if isinstance(v, (int, float)):
        if strict:
            return ["float", repr(v)] if isinstance(v, float) else ["int", v]
        return ["num", v]
    if isinstance(v, list):
        return ["list", [canonical(x, strict) for x in v]]
    if isinstance(v, dict):
        return ["dict", {k: canonical(x, strict) for k, x in sorted(v.items())}]
    return v


def load_records(path: Path = RECORD_FILE) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def raw_sha256(raw: bytes) -> str:
    import hashlib
    return hashlib.sha256(raw).hexdigest()


def raw_to_record(raw: bytes) -> str:
    """Identity of a case input as stored in the recording."""
    return raw_sha256(raw)


def raw_preview(raw: bytes, limit: int = 300) -> str:
    """Human-readable (latin-1, Python-escaped) excerpt of raw input."""
    r = raw if len(raw) <= limit else raw[: limit - 60] + b"..." + raw[-40:]
    return repr(r)[2:-1]


class ServerHolder:
    """Keeps one server process for a test session; restarts it if it died."""

    def __init__(self, factory):
        self._factory = factory
        self.server: Optional[Server] = None
        self.restarts = 0

    def get(self) -> Server:
        if self.server is None or not self.server.alive():
            if self.server is not None:
                self.restarts += 1
                self.server.stop()
            self.server = self._factory().start()
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def dump_records(records: dict, path: Path = RECORD_FILE) -> None:
    """Write the recording: one case per block, one reply per line (ASCII)."""
    def compact(v: Any) -> str:
        return json.dumps(v, ensure_ascii=True, separators=(", ", ": "))

    parts = []
    for key, rec in records.items():
        if isinstance(rec, dict) and "replies" in rec:
            fields = [f"  {json.dumps(k)}: {compact(v)}" for k, v in rec.items() if k != "replies"]
            fields = [f for f in fields if not f.startswith('  "lines"')]
            replies = rec["replies"]
            body = ",\n".join("   " + compact(r) for r in replies)
            fields.append('  "replies": [' + ("\n" + body + "\n  ]" if replies else "]"))
            if "lines" in rec:
                lines = rec["lines"]
                body = ",\n".join("   " + compact(r) for r in lines)
                fields.append('  "lines": [' + ("\n" + body + "\n  ]" if lines else "]"))
            parts.append(f" {json.dumps(key)}: {{\n" + ",\n".join(fields) + "\n }")
        else:
            parts.append(f" {json.dumps(key)}: {compact(rec)}")
    with open(path, "w") as f:
        f.write("{\n" + ",\n".join(parts) + "\n}\n")
