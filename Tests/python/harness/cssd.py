"""cssd and cssctl: where the binaries are, cssd processes (plain, with metrics on a port it
picks, refused at start), cssctl runs.

- CSSD_BIN overrides the cssd binary (default: <repo>/.build/debug/cssd).
- CSSCTL_BIN overrides cssctl (default: beside cssd).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Optional, Sequence

import pytest

from .net import wait_until
from .paths import REPO_ROOT
from .process import Server, ServerStartError


def cssd_binary() -> Optional[str]:
    """Path of the cssd binary (env CSSD_BIN overrides), or None if missing."""
    path = os.environ.get("CSSD_BIN") or str(REPO_ROOT / ".build" / "debug" / "cssd")
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def cssctl_binary() -> str:
    """Path of cssctl (env CSSCTL_BIN overrides; else beside cssd); skips the test if missing."""
    cssd = cssd_binary()
    path = os.environ.get("CSSCTL_BIN") or (os.path.join(os.path.dirname(cssd), "cssctl") if cssd else "")
    if not path or not os.path.exists(path):
        pytest.skip("cssctl not built")
    return path


def cssctl(sock, *args, timeout=30):
    """`cssctl --socket SOCK ARGS...`, output as text."""
    return subprocess.run([cssctl_binary(), "--socket", sock, *args], capture_output=True, text=True, timeout=timeout)


def cssd_server(workdir: str, sock: Optional[str] = None, extra_args: Sequence[str] = ()) -> Server:
    """A cssd (not started yet) serving QMP on `sock` (default WORKDIR/cssd.sock), its log in workdir."""
    binary = cssd_binary()
    if not binary:
        raise ServerStartError("cssd binary not found (build it or set CSSD_BIN)")
    sock = sock or os.path.join(workdir, "cssd.sock")
    argv = [binary, "--qmp", f"unix:{sock}", *extra_args]
    return Server("cssd", argv, sock, workdir)


def start_cssd(workdir, *args) -> Server:
    """A started cssd with `args` (its socket and log in workdir)."""
    return cssd_server(workdir, extra_args=list(args)).start()


def refused(workdir, *args) -> str:
    """cssd with `args` refuses to start: exit status 1; returns what it wrote on stderr."""
    argv = [cssd_binary(), "--qmp", f"unix:{workdir}/r.sock", *args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1, result
    return result.stderr


def metrics_port(server: Server) -> int:
    """The port of a running cssd's --metrics tcp:127.0.0.1:0 listener, learnt from its log."""
    return int(wait_until(
        lambda: re.search(r"address=tcp:127\.0\.0\.1:(\d+)\b.*metrics listening", server.log_tail(20000)),
        10, "the metrics address in cssd's log", interval=0.2).group(1))


def start_with_metrics(workdir: str, *args: str) -> Server:
    """cssd with --metrics on a free port (learnt from its log, kept in extra["metrics_port"])
    and a QMP unix socket."""
    if cssd_binary() is None:
        pytest.skip("cssd binary not found: build it (swift build) or set CSSD_BIN")
    server = cssd_server(workdir, extra_args=["--metrics", "tcp:127.0.0.1:0", *args])
    server.start()
    server.extra["metrics_port"] = metrics_port(server)
    return server


def write_policy(path: str, policy: dict) -> None:
    """An authz rules file (--tls-authz) written whole: a reader sees the old file or the new one."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(policy, f)
    os.replace(tmp, path)
