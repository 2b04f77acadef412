"""cssctl against a live cssd: exec's argument syntax, output modes and exit codes."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

import oracle


def cssctl_binary() -> str:
    cssd = oracle.cssd_binary()
    path = os.environ.get("CSSCTL_BIN") or (os.path.join(os.path.dirname(cssd), "cssctl") if cssd else "")
    if not path or not os.path.exists(path):
        pytest.skip("cssctl not built")
    return path


def cssctl(sock, *args, timeout=30):
    return subprocess.run([cssctl_binary(), "--socket", sock, *args], capture_output=True, text=True, timeout=timeout)


def test_exec_prints_return(cssd):
    p = cssctl(cssd.sock, "query-version")
    assert p.returncode == 0, p.stderr
    assert set(json.loads(p.stdout)) == {"qemu", "package"}


def test_exec_raw_prints_reply_line(cssd):
    p = cssctl(cssd.sock, "--raw", "query-version")
    assert p.returncode == 0, p.stderr
    reply = json.loads(p.stdout)
    assert reply["id"] == "cssctl" and "return" in reply


def test_exec_error_reply_exits_1(cssd):
    p = cssctl(cssd.sock, "query-subchannels", "devno=nonsense")
    assert p.returncode == 1
    assert p.stderr.startswith("GenericError: ")


def test_string_arguments_keep_their_text(cssd):
    """chpid=0.40 is a chpid id, not the number 0.4: the schema says the argument is a string."""
    p = cssctl(cssd.sock, "vary-path", "chpid=0.40", "state=offline")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["changed"] == 42
    p = cssctl(cssd.sock, "query-chpids")
    chp = next(c for c in json.loads(p.stdout) if c["chpid"] == "0.40")
    assert chp["vary"] == "offline"
    # Integers stay integers where the schema wants them.
    p = cssctl(cssd.sock, "query-subchannels", "chpid=0.40", "limit=2")
    assert p.returncode == 0, p.stderr
    assert len(json.loads(p.stdout)["subchannels"]) == 2


def test_quoted_json_string_still_accepted(cssd):
    p = cssctl(cssd.sock, "vary-path", 'chpid="0.40"', "state=offline")
    assert p.returncode == 0, p.stderr


def test_json_mode(cssd):
    p = cssctl(cssd.sock, "--json", '{"execute":"query-css"}')
    assert p.returncode == 0, p.stderr
    assert isinstance(json.loads(p.stdout), list)


def test_connection_failure_exits_2(short_tmp):
    p = cssctl(os.path.join(short_tmp, "absent.sock"), "query-version")
    assert p.returncode == 2
