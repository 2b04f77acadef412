"""cssctl against a live cssd: exec's argument syntax, output modes and exit codes."""

from __future__ import annotations

import json
import os
import shutil
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


SUBCOMMANDS = ["exec", "schema-docs", "bench", "gen-topology", "events", "lschp", "lscss", "chchp"]


def help_blocks():
    """Every `discussion:`/`help:` text block of cssctl and cssd, as (file, hard lines): lines a
    trailing backslash joins are one line, which ArgumentParser wraps itself."""
    import glob
    import re
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    files = sorted(glob.glob(os.path.join(root, "Sources", "cssctl", "*.swift"))
                   + glob.glob(os.path.join(root, "Sources", "cssd", "*.swift")))
    for path in files:
        for m in re.finditer(r'(?:discussion|help):\s*(?:ArgumentHelp\()?"""\n(.*?)\n(\s*)"""', open(path).read(), re.S):
            indent, lines, joined = len(m.group(2)), [], ""
            for line in m.group(1).split("\n"):
                line = line[indent:]
                if line.endswith("\\"):
                    joined += line[:-1]
                    continue
                lines.append((joined + line, bool(joined)))
                joined = ""
            yield os.path.basename(path), lines


def test_help_lines_are_not_broken():
    """ArgumentParser wraps help at 80 columns: a hand-broken line longer than that (an example,
    a list) comes out broken in two, its tail alone on a line. Joined lines are prose it wraps."""
    long = [(name, line) for name, lines in help_blocks() for line, joined in lines if not joined and len(line) > 80]
    assert not long, long


@pytest.mark.parametrize("subcommand", [None] + SUBCOMMANDS)
def test_help_examples_come_out_whole(subcommand):
    args = [cssctl_binary()] + ([subcommand] if subcommand else []) + ["--help"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=30, env={**os.environ, "COLUMNS": "80"}).stdout
    examples = [l for l in out.splitlines() if l.startswith("  cssctl ") or l.startswith("  cssd ")]
    if subcommand in (None, "bench", "gen-topology", "chchp"):
        assert examples, out
    for line in examples:
        assert len(line) <= 80, line


def test_version_is_cssds(cssd):
    p = subprocess.run([cssctl_binary(), "--version"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    package = json.loads(cssctl(cssd.sock, "query-version").stdout)["package"]
    assert p.stdout.strip() == package.replace("cssd ", "cssctl ")


def test_help_subcommand(cssd):
    """`cssctl help lschp` is `cssctl lschp --help`, as git's and s390-tools' users type it."""
    a = subprocess.run([cssctl_binary(), "help", "lschp"], capture_output=True, text=True, timeout=30)
    b = subprocess.run([cssctl_binary(), "lschp", "--help"], capture_output=True, text=True, timeout=30)
    assert a.returncode == 0 and a.stdout == b.stdout and "lschp" in a.stdout


def test_cannot_connect_says_how_to_point_elsewhere(short_tmp):
    env = {k: v for k, v in os.environ.items() if k != "CSSD_SOCKET"}
    p = subprocess.run([cssctl_binary(), "--socket", os.path.join(short_tmp, "none.sock"), "query-version"],
                       capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode == 2
    assert "cannot connect to unix:" in p.stderr and "--socket unix:PATH or tcp:HOST:PORT" in p.stderr
    assert "CSSD_SOCKET" in p.stderr and "/run/cssd/qmp.sock" in p.stderr


def test_default_socket_is_the_installed_one(short_tmp):
    """With no --socket and no $CSSD_SOCKET, cssctl talks to /run/cssd/qmp.sock when it exists
    (the installed service's), whatever the directory. Only where no cssd is installed: the test
    makes /run/cssd itself and removes it."""
    from harness.cssd import cssd_server
    if os.path.exists("/run/cssd") or not os.access("/run", os.W_OK):
        pytest.skip("/run/cssd exists (an installed cssd) or /run is not writable")
    os.mkdir("/run/cssd")
    try:
        srv = cssd_server(short_tmp, sock="/run/cssd/qmp.sock")
        with srv:
            env = {k: v for k, v in os.environ.items() if k != "CSSD_SOCKET"}
            p = subprocess.run([cssctl_binary(), "query-version"], capture_output=True, text=True, timeout=30,
                               env=env, cwd=short_tmp)
            assert p.returncode == 0, p.stderr
            assert json.loads(p.stdout)["package"].startswith("cssd ")
    finally:
        shutil.rmtree("/run/cssd", ignore_errors=True)
