"""Tests for Clients/shell/qmp.sh and Clients/python/cssd_client.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from harness.clients import PY_CLIENT, QMP_SH, shells
from harness.cssd import cssd_binary, cssd_server
from harness.net import free_port


def run_sh(*args, shell="sh", env=None, cwd=None):
    if not (shutil.which("socat") and shutil.which("jq")):
        pytest.skip("qmp.sh needs socat and jq")
    return subprocess.run([shell, str(QMP_SH), *args], capture_output=True, text=True,
                          timeout=30, env=env, cwd=cwd)


def run_py(*args, env=None):
    pytest.importorskip("qemu.qmp")
    return subprocess.run([sys.executable, str(PY_CLIENT), *args], capture_output=True,
                          text=True, timeout=30, env=env)


# ---------------------------------------------------------------- qmp.sh ----

@pytest.mark.parametrize("shell", shells())
def test_sh_query_version(any_server, shell):
    p = run_sh("-s", any_server.sock, "query-version", shell=shell)
    assert p.returncode == 0, p.stderr
    reply = json.loads(p.stdout)
    assert set(reply["return"]["qemu"]) == {"major", "minor", "micro"}
    assert "\n  " in p.stdout, "expected pretty-printed output"


def test_sh_error_reply_exits_1(any_server):
    p = run_sh("-s", any_server.sock, "no-such-command")
    assert p.returncode == 1
    assert json.loads(p.stdout)["error"]["class"] == "CommandNotFound"


def test_sh_bad_argument_exits_1(any_server):
    p = run_sh("-s", any_server.sock, "query-version", "bogus=1")
    assert p.returncode == 1
    assert json.loads(p.stdout)["error"]["desc"] == "Parameter 'bogus' is unexpected"


def test_sh_json_mode(any_server):
    p = run_sh("-s", any_server.sock, "-j", '{"execute":"query-version","id":{"x":[1,"\u00e9"]}}')
    assert p.returncode == 0, p.stderr
    reply = json.loads(p.stdout)
    assert reply["id"] == {"x": [1, "\u00e9"]}
    assert "qemu" in reply["return"]


def test_sh_json_mode_invalid_json_is_usage_error(cssd):
    p = run_sh("-s", cssd.sock, "-j", '{"execute":')
    assert p.returncode == 64


def test_sh_skip_negotiation(any_server):
    p = run_sh("-s", any_server.sock, "-N", "-j",
               '{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}')
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"return": {}}


def test_sh_key_value_parsing(cssd):
    # Values are JSON when valid, else strings.  query-version rejects any
    # argument; the error names one of them, which proves they were sent.
    for kv, name in [("n=1", "n"), ("s=hello world", "s"), ("l=[1,2]", "l"),
                     ("o={\"a\":null}", "o"), ("b=true", "b"), ("p=/tmp/x=y", "p")]:
        p = run_sh("-s", cssd.sock, "query-version", kv)
        assert p.returncode == 1, (kv, p.stdout, p.stderr)
        assert json.loads(p.stdout)["error"]["desc"] == f"Parameter '{name}' is unexpected"


def test_sh_default_socket_env(cssd):
    env = dict(os.environ, CSSD_SOCKET=cssd.sock)
    p = run_sh("query-commands", env=env)
    assert p.returncode == 0, p.stderr
    assert {"name": "query-version"} in json.loads(p.stdout)["return"]


def test_sh_default_socket_cwd(cssd):
    env = {k: v for k, v in os.environ.items() if k != "CSSD_SOCKET"}
    p = run_sh("query-version", env=env, cwd=os.path.dirname(cssd.sock))
    assert p.returncode == 0, p.stderr


def test_sh_connection_failure_exits_2(short_tmp):
    p = run_sh("-s", os.path.join(short_tmp, "missing.sock"), "query-version")
    assert p.returncode == 2
    assert p.stdout == ""


def test_sh_connection_refused_exits_2(short_tmp):
    import socket
    path = os.path.join(short_tmp, "dead.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)  # a socket file nobody listens on
    s.close()
    p = run_sh("-s", path, "query-version")
    assert p.returncode == 2


def test_sh_usage_errors():
    assert run_sh().returncode == 64
    assert run_sh("-s", "/nonexistent", "cmd", "novalue").returncode == 64


def test_sh_is_posix():
    """The script parses with dash and has no bashisms caught by checkbashisms/sh -n."""
    for sh in shells():
        p = subprocess.run([sh, "-n", str(QMP_SH)], capture_output=True, text=True, timeout=10)
        assert p.returncode == 0, (sh, p.stderr)
    if shutil.which("checkbashisms"):
        p = subprocess.run(["checkbashisms", str(QMP_SH)], capture_output=True, text=True, timeout=10)
        assert p.returncode == 0, p.stderr


def test_sh_tcp(short_tmp):
    if cssd_binary() is None:
        pytest.skip("cssd binary not found")
    port = free_port()
    srv = cssd_server(short_tmp, extra_args=["--qmp", f"tcp:127.0.0.1:{port}"])
    with srv:
        p = run_sh("-s", f"tcp:127.0.0.1:{port}", "query-version")
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["return"]["package"].startswith("cssd")


# ---------------------------------------------------------- cssd_client.py ----

def test_py_query_version(any_server):
    p = run_py("-s", any_server.sock, "query-version")
    assert p.returncode == 0, p.stderr
    assert "server version" in p.stderr
    assert set(json.loads(p.stdout)["qemu"]) == {"major", "minor", "micro"}


def test_py_query_commands(cssd):
    p = run_py("-s", cssd.sock, "query-commands")
    assert p.returncode == 0, p.stderr
    assert {"name": "query-version"} in json.loads(p.stdout)


def test_py_error_exits_1(any_server):
    p = run_py("-s", any_server.sock, "no-such-command")
    assert p.returncode == 1
    assert "CommandNotFound" in p.stderr
    assert p.stdout == ""


def test_py_bad_argument_exits_1(cssd):
    p = run_py("-s", cssd.sock, "query-version", "bogus=[1,2]")
    assert p.returncode == 1
    assert "Parameter 'bogus' is unexpected" in p.stderr


def test_py_env_socket(cssd):
    p = run_py("query-version", env=dict(os.environ, CSSD_SOCKET=cssd.sock))
    assert p.returncode == 0, p.stderr


def test_py_connection_failure_exits_2(short_tmp):
    p = run_py("-s", os.path.join(short_tmp, "missing.sock"), "query-version")
    assert p.returncode == 2


def test_py_quit(cssd):
    """cssd is started with --allow-quit: quit ends the server."""
    p = run_py("-s", cssd.sock, "quit")
    assert p.returncode == 0, p.stderr
    cssd.proc.wait(timeout=10)


# ------------------------------------------------------ string arguments ----
# chpid=0.40 is valid JSON (the number 0.4); the schema says chpid is a string, so both clients
# send "0.40" and the path is varied (before, both got "Invalid parameter type").

def chpid_state(sock, chpid):
    from harness.qmp import Client
    return next(p["vary"] for p in Client(sock).call("query-chpids") if p["chpid"] == chpid)


@pytest.mark.parametrize("shell", shells())
def test_sh_varies_a_path(cssd, shell):
    p = run_sh("-s", cssd.sock, "vary-path", "chpid=0.40", "state=offline", shell=shell)
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["return"]["chpid"] == "0.40"
    assert chpid_state(cssd.sock, "0.40") == "offline"
    # A number where the schema wants a number stays a number; the unix: form of the address.
    p = run_sh("-s", f"unix:{cssd.sock}", "query-subchannels", "limit=1", "chpid=0.40", shell=shell)
    assert p.returncode == 0, p.stdout + p.stderr
    assert len(json.loads(p.stdout)["return"]["subchannels"]) == 1


def test_py_varies_a_path_over_unix_and_tcp(short_tmp):
    if cssd_binary() is None:
        pytest.skip("cssd binary not found")
    port = free_port()
    with cssd_server(short_tmp, extra_args=["--qmp", f"tcp:127.0.0.1:{port}"]) as srv:
        p = run_py("-s", f"unix:{srv.sock}", "vary-path", "chpid=0.40", "state=offline")
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["chpid"] == "0.40" and chpid_state(srv.sock, "0.40") == "offline"
        p = run_py("-s", f"tcp:127.0.0.1:{port}", "vary-path", "chpid=0.40", "state=online")
        assert p.returncode == 0, p.stderr
        assert chpid_state(srv.sock, "0.40") == "online"
        p = run_py("-s", f"tcp:127.0.0.1:{port}", "query-subchannels", "limit=2")
        assert p.returncode == 0 and len(json.loads(p.stdout)["subchannels"]) == 2
    p = run_py("-s", "tcp:nohost", "query-version")
    assert p.returncode != 0 and "tcp:HOST:PORT" in p.stderr
