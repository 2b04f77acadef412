"""Server processes: started in their own session with a log file, waited for on their unix
socket, stopped with SIGTERM (then SIGKILL); a failed test prints how each one ended.

Everything is bounded in time, and no server outlives an interrupted test run (the child gets
SIGKILL when the test process dies)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import List, Optional

from .net import wait_for_unix_socket


class ServerStartError(RuntimeError):
    pass


def die_with_parent() -> None:
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
                start_new_session=True, preexec_fn=die_with_parent,
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

    def wait_line(self, *parts: str, timeout: float = 10.0, n: int = 400000) -> str:
        """The first line of the log's last `n` bytes holding every part (swift-log writes
        metadata sorted by key), polled until `timeout` s; AssertionError with the log's tail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_tail(n).splitlines():
                if all(part in line for part in parts):
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no log line with {parts}:\n{self.log_tail(n)[-3000:]}")

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


def call_failed(request) -> bool:
    """Whether the test that `request` (a fixture's) belongs to failed in its call phase
    (conftest.py keeps each phase's report on the item)."""
    report = getattr(request.node, "rep_call", None)
    return report is not None and report.failed


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
