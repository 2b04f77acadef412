"""The cssd executable as an operator runs it: signals, startup errors, exit codes."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import time

import pytest

from harness.cssd import cssd_server
from harness.net import wait_for_unix_socket


def _connect(path: str) -> tuple[socket.socket, "socket.SocketIO"]:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    f = s.makefile("rb")
    return s, f


def _negotiated(path: str):
    s, f = _connect(path)
    assert "QMP" in json.loads(f.readline())
    s.sendall(b'{"execute":"qmp_capabilities"}')
    assert json.loads(f.readline()) == {"return": {}}
    return s, f


@pytest.mark.parametrize("signum,name", [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")])
def test_signal_shutdown(binary, short_tmp, signum, name):
    """A signal sends SHUTDOWN to negotiated clients, closes them, removes the socket, exits 0."""
    srv = cssd_server(short_tmp, extra_args=["--qmp", f"tcp:127.0.0.1:0"]).start()
    try:
        s, f = _negotiated(srv.sock)
        srv.proc.send_signal(signum)
        event = json.loads(f.readline())
        assert event["event"] == "SHUTDOWN", event
        assert event["data"] == {"guest": False, "reason": "host-signal"}
        assert f.readline() == b"", "connection not closed after SHUTDOWN"
        assert srv.proc.wait(timeout=10) == 0, srv.log_tail()
        assert not os.path.exists(srv.sock), "socket file left behind"
        assert "shutting down" in srv.log_tail()
    finally:
        srv.stop()


def test_quit_exits_zero(binary, short_tmp):
    srv = cssd_server(short_tmp, extra_args=["--allow-quit"]).start()
    try:
        s, f = _negotiated(srv.sock)
        s.sendall(b'{"execute":"quit","id":1}')
        assert json.loads(f.readline()) == {"return": {}, "id": 1}
        assert json.loads(f.readline())["data"]["reason"] == "host-qmp-quit"
        assert srv.proc.wait(timeout=10) == 0
        assert not os.path.exists(srv.sock)
    finally:
        srv.stop()


def test_nothing_pipelined_behind_quit_runs(binary, short_tmp):
    """Requests sent behind `quit` in one write are not run: a change there was made and
    recorded (--state-dir) but never answered. The replies before quit are all written."""
    state = os.path.join(short_tmp, "state")
    args = ["--allow-quit", "--state-dir", state]
    srv = cssd_server(short_tmp, extra_args=args).start()
    try:
        s, f = _negotiated(srv.sock)
        s.sendall(b'{"execute":"vary-path","arguments":{"chpid":"0.44","state":"offline"},"id":1}'
                  b'{"execute":"quit","id":2}'
                  b'{"execute":"vary-path","arguments":{"chpid":"0.45","state":"offline"},"id":3}'
                  b'{"execute":"query-version","id":4}')
        lines = []
        while line := f.readline():
            lines.append(json.loads(line))
        assert [m.get("id") for m in lines if "event" not in m] == [1, 2], lines
        assert srv.proc.wait(timeout=30) == 0
    finally:
        srv.stop()
    srv = cssd_server(short_tmp, extra_args=args).start()
    try:
        s, f = _negotiated(srv.sock)
        s.sendall(b'{"execute":"query-chpids"}')
        vary = {p["chpid"]: p["vary"] for p in json.loads(f.readline())["return"]}
        assert (vary["0.44"], vary["0.45"]) == ("offline", "online")
    finally:
        srv.stop()


def test_socket_mode_and_live_socket_refused(binary, short_tmp):
    srv = cssd_server(short_tmp).start()
    try:
        assert stat.S_IMODE(os.stat(srv.sock).st_mode) == 0o600
        second = subprocess.run([binary, "--qmp", f"unix:{srv.sock}"], capture_output=True, timeout=20)
        assert second.returncode == 1
        assert b"in use by a running server" in second.stderr
        # The first server is untouched.
        _negotiated(srv.sock)
    finally:
        srv.stop()


@pytest.mark.parametrize("args,message", [
    (["--qmp", "bogus:x"], b"expected unix:PATH or tcp:HOST:PORT"),
    (["--qmp", "tcp:127.0.0.1:99999"], b"port in 0...65535"),
    (["--log-level", "loud"], b"--log-level"),
    (["--max-request-size", "10"], b"--max-request-size"),
])
def test_bad_options(binary, args, message):
    result = subprocess.run([binary, *args], capture_output=True, timeout=20)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_readonly_listener_process(binary, short_tmp):
    ro = os.path.join(short_tmp, "ro.sock")
    srv = cssd_server(short_tmp, extra_args=["--qmp-readonly", f"unix:{ro}", "--allow-quit"]).start()
    try:
        wait_for_unix_socket(ro, srv.proc)
        s, f = _negotiated(ro)
        s.sendall(b'{"execute":"quit","id":2}')
        reply = json.loads(f.readline())
        assert reply["error"]["class"] == "CommandNotFound" and reply["id"] == 2
        s.sendall(b'{"execute":"query-version","id":3}')
        assert json.loads(f.readline())["id"] == 3
        s.sendall(b'{"execute":"vary-path","arguments":{"chpid":"0.41","state":"offline"},"id":4}')
        assert json.loads(f.readline())["error"]["class"] == "CommandNotFound"
        # Watching is not changing: a monitoring client follows path events on the read-only
        # socket (as libvirt's read-only connections register for events).
        s.sendall(b'{"execute":"subscribe-path-events","id":5}')
        subscription = json.loads(f.readline())["return"]["subscription"]
        rw, rwf = _negotiated(srv.sock)
        rw.sendall(b'{"execute":"vary-path","arguments":{"chpid":"0.41","state":"offline"}}')
        assert "return" in json.loads(rwf.readline())
        event = json.loads(f.readline())
        assert event["event"] == "CHANNEL_PATH_CHANGED" and event["data"]["chpid"] == "0.41"
        s.sendall(b'{"execute":"unsubscribe-path-events","arguments":{"subscription":%d},"id":6}' % subscription)
        assert json.loads(f.readline()) == {"return": {}, "id": 6}
        assert srv.alive()
    finally:
        srv.stop()


@pytest.mark.parametrize("content,message", [
    # A syntax error names file, line and column.
    (b'{"format": "cssd-topology", "version": 1, "chpids": [', b"bad.json:1:53: JSON syntax error"),
    # A semantic error names the field.
    (b'{"format": "cssd-topology", "version": 1, "chpids": [], "subchannels": [{"subchannel": "0.0.0000", '
     b'"devno": "0.0.1000", "cu-type": "3990/e9", "chpids": ["0.40"]}]}',
     b"subchannels[0].chpids[0]: unknown chpid 0.40"),
])
def test_bad_topology_refuses_to_start(binary, short_tmp, content, message):
    """A bad topology file stops cssd before any listener opens, with an error naming the place."""
    path = os.path.join(short_tmp, "bad.json")
    with open(path, "wb") as f:
        f.write(content)
    sock = os.path.join(short_tmp, "never.sock")
    result = subprocess.run([binary, "--qmp", f"unix:{sock}", "--topology", path], capture_output=True, timeout=20)
    assert result.returncode == 1
    assert b"cannot load the topology" in result.stderr and message in result.stderr, result.stderr
    assert not os.path.exists(sock)


def test_topology_file_is_served(binary, short_tmp):
    """A generated topology is what the server reports."""
    cssctl = os.environ.get("CSSCTL_BIN") or os.path.join(os.path.dirname(binary), "cssctl")
    if not os.path.exists(cssctl):
        pytest.skip("cssctl not built")
    path = os.path.join(short_tmp, "t.json")
    subprocess.run([cssctl, "gen-topology", "--subchannels", "64", "--chpids", "4", "--paths", "2",
                    "--output", path], check=True, timeout=30)
    srv = cssd_server(short_tmp, extra_args=["--topology", path]).start()
    try:
        s, f = _negotiated(srv.sock)
        s.sendall(b'{"execute":"query-chpids","id":1}')
        chpids = json.loads(f.readline())["return"]
        assert len(chpids) == 4 and all(c["subchannels"] == 64 * 2 // 4 for c in chpids)
    finally:
        srv.stop()


def test_help_puts_common_options_first_and_each_default_once(binary):
    """cssd --help: titled groups, the listeners and what to serve first, notifications last
    among them; no option says its default twice (its text and ArgumentParser's '(default: )')."""
    import re
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30).stdout
    headings = [line for line in out.splitlines() if re.fullmatch(r"[A-Z][A-Z ,]+:", line)]
    assert headings == ["LISTENERS AND CLIENTS:", "WHAT TO SERVE:", "STATE, PATH EVENTS AND LOGS:", "METRICS:", "TLS:",
                        "NOTIFICATIONS ON THE AMQP BUS:", "OPTIONS:"], headings
    entries = re.split(r"\n  (?=--)", out[out.index("LISTENERS AND CLIENTS:"):])
    for entry in entries:
        text = " ".join(entry.split())
        shown = re.search(r"\(default: ([^)]*)\)", text)
        if shown:
            own = text.replace(shown.group(0), "")
            assert not re.search(r"\bdefault:? " + re.escape(shown.group(1)) + r"\b", own), text
