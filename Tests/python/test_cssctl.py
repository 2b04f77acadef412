"""cssctl against a live cssd: exec's argument syntax, output modes and exit codes."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from harness.cssd import cssctl, cssctl_binary


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


# --socket / --timeout before or after the subcommand (as with git -C and virsh -c). Before this,
# `cssctl --socket S lschp` went to the default subcommand, exec, which sent `lschp` to the
# server and printed CommandNotFound.

def run_cssctl(*argv, timeout=60):
    return subprocess.run([cssctl_binary(), *argv], capture_output=True, text=True, timeout=timeout)


# Every subcommand that connects, with arguments that make it quick.
CONNECTING = {
    "exec": ["query-version"],
    "lschp": [],
    "lscss": ["0.0.0000-0.0.0003"],
    "events": ["--timeout", "0.2"],  # events' own --timeout: exit after 0.2 s without events
    "bench": ["--count", "20", "--warmup", "0", "--pipelined-count", "20"],
}


def connection_positions(sock, subcommand):
    rest = CONNECTING[subcommand]
    return {
        "before": ["--socket", sock, subcommand, *rest],
        "before, --socket=": [f"--socket={sock}", subcommand, *rest],
        "after": [subcommand, "--socket", sock, *rest],
        "at the end": [subcommand, *rest, "--socket", sock],
    }


@pytest.mark.parametrize("subcommand", sorted(CONNECTING))
def test_socket_before_or_after_the_subcommand(cssd, subcommand):
    outputs = {}
    for position, argv in connection_positions(cssd.sock, subcommand).items():
        p = run_cssctl(*argv)
        assert p.returncode == 0, f"{position}: {argv}: {p.stderr}"
        assert "CommandNotFound" not in p.stderr, (position, p.stderr)
        outputs[position] = p.stdout
    if subcommand in ("lschp", "lscss", "exec"):
        # The same listing or reply wherever the option was.
        assert len(set(outputs.values())) == 1, outputs
        assert outputs["before"]
    if subcommand == "lschp":
        assert outputs["before"].startswith("CHPID")
    if subcommand == "exec":
        assert set(json.loads(outputs["before"])) == {"qemu", "package"}


def test_exec_named_or_default_take_the_options_alike(cssd):
    named = run_cssctl("--timeout", "5", "--socket", cssd.sock, "exec", "query-version")
    default = run_cssctl("--timeout", "5", "--socket", cssd.sock, "query-version")
    assert named.returncode == 0 and default.returncode == 0, (named.stderr, default.stderr)
    assert named.stdout == default.stdout


@pytest.fixture
def silent_server(short_tmp):
    """A unix socket that accepts connections (in the kernel's backlog) and never says a word."""
    import socket
    path = os.path.join(short_tmp, "silent.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    try:
        yield path
    finally:
        listener.close()


@pytest.mark.parametrize("subcommand", ["exec", "lschp", "lscss", "bench"])
@pytest.mark.parametrize("position", ["before", "after"])
def test_timeout_before_or_after_the_subcommand(silent_server, subcommand, position):
    """--timeout bounds the wait for the greeting wherever it is given (bench: its stall timeout)."""
    options = ["--socket", silent_server, "--timeout", "1"]
    rest = [a for a in CONNECTING[subcommand]]
    argv = [*options, subcommand, *rest] if position == "before" else [subcommand, *options, *rest]
    # The silent server never answers: only the 1 s --timeout can end the wait, and the message
    # names it (the run's own timeout is a hang guard, not a speed limit).
    p = run_cssctl(*argv, timeout=120)
    assert p.returncode == 2, (argv, p.stdout, p.stderr)
    assert "no answer within 1 s" in p.stderr, p.stderr


@pytest.mark.parametrize("position", ["before", "after"])
def test_events_timeout_before_or_after(cssd, position):
    """events' --timeout is its idle timeout: it ends with status 0 after that long without events."""
    import time
    options = ["--socket", cssd.sock, "--timeout", "0.5"]
    argv = [*options, "events"] if position == "before" else ["events", *options]
    started = time.monotonic()
    p = run_cssctl(*argv, timeout=120)  # nothing varies: only the idle timeout ends it
    assert p.returncode == 0, p.stderr
    assert "subscribed:" in p.stderr
    assert time.monotonic() - started >= 0.5  # not before its idle timeout


def test_connection_options_before_a_command_that_does_not_connect(short_tmp):
    """schema-docs talks to no server: --socket before it is refused as an unknown option, not sent."""
    p = run_cssctl("--socket", os.path.join(short_tmp, "x.sock"), "schema-docs", "--module", "qmp")
    assert p.returncode == 64, p.stderr
    assert "--socket" in p.stderr


def test_socket_address_errors_name_the_text(short_tmp):
    """cssctl reads --socket with the server's grammar (QMPTransport), for connecting."""
    p = run_cssctl("--socket", "tcp:127.0.0.1:0", "lschp")
    assert p.returncode == 2
    assert "'tcp:127.0.0.1:0': expected tcp:HOST:PORT with a port in 1...65535" in p.stderr
    p = run_cssctl("--socket", "tcp:[::1]", "query-version")
    assert p.returncode == 2
    assert "'tcp:[::1]': expected tcp:HOST:PORT with a port in 1...65535" in p.stderr
