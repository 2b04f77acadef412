"""Loopback ports and waiting: every wait here polls for an outcome until a deadline (a hang
guard, not a speed limit), so that tests pass on a loaded 2-core machine."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from typing import Any, Callable, Optional


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picked it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Polls `predicate` every `interval` s until it returns something truthy, and returns that;
    AssertionError naming `what` (and the last value) after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")


def wait_connectable(address, timeout: float = 10.0) -> None:
    """Waits until a listener accepts: `address` is a unix socket path or a (host, port)."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    deadline = time.time() + timeout
    while True:
        with socket.socket(family) as s:
            try:
                s.connect(address)
                return
            except OSError:
                assert time.time() < deadline, f"{address} never accepted"
                time.sleep(0.02)


def wait_port(port: int, proc: subprocess.Popen, log: str, timeout: float = 60.0) -> None:
    """Waits until 127.0.0.1:`port` accepts; fails with the tail of `log` if `proc` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server exited: {open(log, errors='replace').read()[-3000:]}"
        with socket.socket() as s:
            try:
                s.connect(("127.0.0.1", port))
                return
            except OSError:
                time.sleep(0.05)
    raise AssertionError(f"port {port} never accepted")


class ExchangeError(RuntimeError):
    """A QMP line did not arrive (timeout, or the peer closed)."""


def read_line(s: socket.socket, deadline: float, buf: bytearray) -> bytes:
    """One CRLF/LF terminated line from s (buf holds leftovers), by the monotonic `deadline`."""
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


def wait_for_unix_socket(path: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Poll until `path` accepts a connection (or the process dies / timeout); reads the
    greeting so that single-client servers (QEMU) see a clean connect/disconnect."""
    from .process import ServerStartError
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
                try:
                    read_line(s, time.monotonic() + 2.0, bytearray())
                except Exception:
                    pass
                return
            except OSError as e:
                last_err = e
            finally:
                s.close()
        time.sleep(0.05)
    raise ServerStartError(f"socket {path} not ready after {timeout}s ({last_err})")
