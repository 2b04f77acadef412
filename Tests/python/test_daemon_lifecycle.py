"""Signals at any moment of start-up and while serving, and unix socket paths of 104-107 bytes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from harness.cssd import cssd_server


# From the first instructions of cssd's own code to serving: the C constructor catches signals
# before main, the topology is loaded, sockets are bound, READY. (Between exec and that
# constructor only the dynamic loader runs: a signal there has its default action, as for any
# program; `handlers_installed` waits for the constructor, read from /proc/PID/status.)
DELAYS = [0, 0.0005, 0.001, 0.002, 0.004, 0.007, 0.01, 0.015, 0.02, 0.03, 0.045, 0.06, 0.08, 0.1, 0.15, 0.2,
          0.3, 0.5]


def handlers_installed(pid: int, signum: int, timeout: float = 10.0) -> None:
    """Waits until the process catches `signum` (SigCgt in /proc/PID/status)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:") and int(line.split()[1], 16) & (1 << (signum - 1)):
                    return
    raise AssertionError(f"process {pid} never caught signal {signum}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_at_every_moment_of_startup(binary, short_tmp, signum):
    sock = os.path.join(short_tmp, "s.sock")
    for delay in DELAYS:
        proc = subprocess.Popen([binary, "--qmp", f"unix:{sock}", "--qmp", "tcp:127.0.0.1:0"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        handlers_installed(proc.pid, signum)
        if delay:
            time.sleep(delay)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, f"delay {delay}: exit {proc.returncode}: {err.decode()[-2000:]}"
        assert not os.path.exists(sock), f"delay {delay}: socket file left"


def test_stop_signal_reaches_clients_after_startup(binary, short_tmp):
    srv = cssd_server(short_tmp).start()
    s = socket.socket(socket.AF_UNIX)
    s.connect(srv.sock)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b'{"execute":"qmp_capabilities"}')
    f.readline()
    srv.proc.send_signal(signal.SIGTERM)
    assert json.loads(f.readline())["event"] == "SHUTDOWN"
    assert srv.proc.wait(timeout=10) == 0
    assert not os.path.exists(srv.sock)


def test_sighup_never_kills(binary, short_tmp):
    sock = os.path.join(short_tmp, "h.sock")
    for delay in DELAYS:
        proc = subprocess.Popen([binary, "--qmp", f"unix:{sock}"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        handlers_installed(proc.pid, signal.SIGHUP)
        if delay:
            time.sleep(delay)
        proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while not os.path.exists(sock):
            assert proc.poll() is None, f"delay {delay}: died of SIGHUP: {proc.returncode}"
            assert time.time() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.05)
        assert proc.poll() is None, f"delay {delay}: died of SIGHUP"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert not os.path.exists(sock)


def path_of_length(base: str, n: int) -> str:
    """A socket path of exactly n bytes under base (directories made)."""
    prefix = os.path.join(base, "d")
    remaining = n - len(prefix) - len("/s.sock")
    assert remaining > 0
    directory = prefix + "x" * remaining
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "s.sock")
    assert len(path.encode()) == n
    return path


@pytest.mark.parametrize("length", [103, 104, 105, 106, 107])
def test_long_unix_paths(binary, short_tmp, length):
    path = path_of_length(short_tmp, length)
    srv = cssd_server(short_tmp, sock=path).start()
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        f = s.makefile("rb")
        assert "QMP" in json.loads(f.readline())
        s.sendall(b'{"execute":"qmp_capabilities"}{"execute":"query-connections"}')
        f.readline()
        assert json.loads(f.readline())["return"][0]["listener"] == f"unix:{path}"
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(timeout=10) == 0
        assert not os.path.exists(path)
    finally:
        srv.stop()


def test_unix_path_of_108_bytes_refused(binary, short_tmp):
    path = path_of_length(short_tmp, 108)
    r = subprocess.run([binary, "--qmp", f"unix:{path}"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "shorter than 108 bytes" in r.stderr
