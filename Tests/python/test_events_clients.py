"""Path-event clients against a live cssd: `cssctl events`, Clients/shell/wait-path.sh and
Clients/python/path_events.py.

Each test subscribes, waits for the client's "subscribed: ID" line on stderr (from then on no
change is missed), varies chpid 0.40 (shared by 42 DASD subchannels) from another connection
with `cssctl vary-path`, and checks what the client printed and how it ended.

The tests wait for outcomes (a line, an exit), never for a guess of the machine's speed: a
Python client importing qemu.qmp on a loaded 2-core machine takes seconds to start. HANG_GUARD
bounds each wait only so that a client that never answers fails the test instead of hanging it.
"""

from __future__ import annotations

import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import time

import pytest

from harness.clients import PATH_EVENTS, WAIT_PATH, shells
from harness.cssd import cssctl, cssctl_binary


# Seconds: far beyond any outcome on a loaded machine, short enough to report a hang.
HANG_GUARD = 120.0

@pytest.fixture
def spawn():
    """Starts clients (stdout/stderr piped, text) and kills any still running at teardown."""
    started = []

    def start(argv):
        p = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=HANG_GUARD)


def subscribed(p, timeout=HANG_GUARD) -> int:
    """The subscription id, once the client has said "subscribed: ID" on stderr."""
    ready, _, _ = select.select([p.stderr], [], [], timeout)
    assert ready, f"no 'subscribed:' line within {timeout} s"
    line = p.stderr.readline()
    m = re.fullmatch(r"subscribed: (\d+)\n", line)
    assert m, line + (p.stderr.read() if p.poll() is not None else "")
    return int(m.group(1))


def finish(p, timeout=HANG_GUARD):
    """(status, stdout, rest of stderr) once the client has ended by itself."""
    try:
        rc = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        pytest.fail(f"still running after {timeout} s")
    return rc, p.stdout.read(), p.stderr.read()


def vary(sock, state):
    p = cssctl(sock, "vary-path", "chpid=0.40", f"state={state}", timeout=HANG_GUARD)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["changed"] == 42


def events(sock, *args):
    return [cssctl_binary(), "events", "--socket", sock, *args]


def running(program, needle):
    """Pids of running `program`s with `needle` in an argument (none may outlive wait-path.sh)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if os.path.basename(argv[0]) == program.encode() and any(needle.encode() in a for a in argv[1:]):
            found.append(int(pid))
    return found


def needs_socat_jq():
    if not (shutil.which("socat") and shutil.which("jq")):
        pytest.skip("wait-path.sh needs socat and jq")


# ---------------------------------------------------------------- cssctl events ----

@pytest.mark.parametrize("granularity, name, n", [
    ("chpid", "CHANNEL_PATH_CHANGED", 1),
    ("subchannel", "SUBCHANNEL_PATHS_CHANGED", 42),
])
def test_events_json_one_vary(cssd, spawn, granularity, name, n):
    """--count N ends after N events; a second subscriber that ends on --timeout shows there
    are exactly N."""
    counted = spawn(events(cssd.sock, "--granularity", granularity, "--count", n))
    idle = spawn(events(cssd.sock, "--granularity", granularity, "--timeout", "1"))
    ids = {subscribed(counted), subscribed(idle)}
    vary(cssd.sock, "offline")
    for p in (counted, idle):
        rc, out, err = finish(p)
        assert rc == 0 and err == "", err
        lines = out.splitlines()
        assert len(lines) == n, out
        evs = [json.loads(line) for line in lines]
        assert {e["event"] for e in evs} == {name}
        assert all(e["data"]["chpid"] == "0.40" and e["data"]["change"] == "offline" for e in evs)
        assert {e["data"]["subscription"] for e in evs} <= ids
        assert all(set(e["timestamp"]) == {"seconds", "microseconds"} for e in evs)
    if granularity == "chpid":
        assert evs[0]["data"]["subchannels"] == 42 and evs[0]["data"]["vary"] == "offline"
    else:
        subchannels = [e["data"]["subchannel"] for e in evs]
        assert len(set(subchannels)) == 42


def test_events_offers_the_schemas_values():
    """--granularity and --change take the values of the schema's enums, in schema order:
    help lists them, and another value is refused (status 64) with them listed."""
    from harness.paths import REPO_ROOT

    schema = json.loads((REPO_ROOT / "API" / "path-events.json").read_text())
    enums = {d["enum"]: [v["name"] if isinstance(v, dict) else v for v in d["data"]]
             for d in schema["definitions"] if "enum" in d}
    helped = subprocess.run([cssctl_binary(), "events", "--help"], capture_output=True, text=True, timeout=30)
    assert helped.returncode == 0, helped.stderr
    options = " ".join(helped.stdout.split("OPTIONS:")[1].split())
    for option, name in (("--granularity", "PathEventGranularity"), ("--change", "PathEventChange")):
        described = options.split(f"{option} <", 1)[1].split(" --", 1)[0]  # up to the next option
        assert described.endswith(f"(values: {', '.join(enums[name])})"), described
        refused = subprocess.run([cssctl_binary(), "events", option, "sideways"], capture_output=True, text=True,
                                 timeout=30)
        assert refused.returncode == 64, refused.stderr
        assert "'sideways' is invalid" in refused.stderr, refused.stderr
        assert all(value in refused.stderr for value in enums[name]), refused.stderr


def test_events_filters_are_sent(cssd, spawn):
    """--change online lets an offline vary through unseen; the next online one ends it."""
    p = spawn(events(cssd.sock, "--chpid", "0.40", "--change", "online", "--count", "1"))
    subscribed(p)
    vary(cssd.sock, "offline")
    vary(cssd.sock, "online")
    rc, out, err = finish(p)
    assert rc == 0, err
    assert json.loads(out)["data"]["change"] == "online"


def test_events_table(cssd, spawn):
    p = spawn(events(cssd.sock, "--granularity", "both", "--format", "table", "--count", "2"))
    subscribed(p)
    vary(cssd.sock, "offline")
    rc, out, err = finish(p)
    assert rc == 0, err
    header, chpid_row, subchannel_row = out.splitlines()
    assert header.split() == ["TIME", "EVENT", "CHPID", "CHANGE", "SUBCHANNEL/DEVNO", "DETAIL"]
    time_re = r"\d\d:\d\d:\d\d\.\d{3}"
    assert re.fullmatch(time_re + r" +CHANNEL_PATH_CHANGED +0\.40 +offline +- +"
                        r"vary=offline configure=configured subchannels=42", chpid_row), chpid_row
    assert re.fullmatch(time_re + r" +SUBCHANNEL_PATHS_CHANGED +0\.40 +offline +"
                        r"\d+\.\d\.[0-9a-f]{4}/\d+\.\d\.[0-9a-f]{4} +"
                        r"pam=[0-9a-f]{2} pom=[0-9a-f]{2} lpm=[0-9a-f]{2} pnom=[0-9a-f]{2}",
                        subchannel_row), subchannel_row
    # Aligned: every column starts where the header's does.
    for word in ("EVENT", "CHPID", "CHANGE"):
        col = header.index(word)
        assert chpid_row[col - 1] == " " and chpid_row[col] != " "


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_events_signal_ends_cleanly(cssd, spawn, sig):
    """The signal ends the client by itself (it would otherwise wait for events forever), with
    status 0 and nothing printed: a client killed by the signal would end with -sig."""
    p = spawn(events(cssd.sock))
    subscribed(p)
    p.send_signal(sig)
    rc, out, err = finish(p)
    assert rc == 0
    assert out == "" and err == ""


def test_events_unknown_chpid_exits_1(cssd):
    p = subprocess.run(events(cssd.sock, "--chpid", "9.99"), capture_output=True, text=True, timeout=HANG_GUARD)
    assert p.returncode == 1
    assert p.stderr.startswith("DeviceNotFound: "), p.stderr
    assert p.stdout == ""


def test_events_server_hangup_exits_2(cssd, spawn):
    p = spawn(events(cssd.sock))
    subscribed(p)
    assert cssctl(cssd.sock, "quit", timeout=HANG_GUARD).returncode == 0
    rc, out, err = finish(p)
    assert rc == 2
    assert "closed the connection" in err
    assert json.loads(out)["event"] == "SHUTDOWN"  # every client gets it


def test_events_connection_failure_exits_2(short_tmp):
    p = subprocess.run(events(os.path.join(short_tmp, "absent.sock")), capture_output=True, text=True,
                       timeout=HANG_GUARD)
    assert p.returncode == 2
    assert "cannot connect" in p.stderr


# ---------------------------------------------------------------- wait-path.sh ----

@pytest.mark.parametrize("shell", shells())
def test_wait_path_runs_command(cssd, spawn, shell):
    needs_socat_jq()
    # A timeout of its own: the sleep behind it must be gone too, and is easy to recognise. Far
    # beyond the event's arrival however loaded the machine: the event, not the timeout, ends it.
    timeout = f"{int(HANG_GUARD)}.{random.randrange(10**8):08d}"
    p = spawn([shell, WAIT_PATH, "-s", cssd.sock, "-t", timeout, "0.40", "offline", "echo", "went offline"])
    subscribed(p)
    vary(cssd.sock, "offline")
    rc, out, err = finish(p)
    assert rc == 0, err
    assert out == "went offline\n"
    assert running("socat", cssd.sock) == [] and running("sleep", timeout) == []


def test_wait_path_without_command_exits_0(cssd, spawn):
    needs_socat_jq()
    p = spawn(["sh", WAIT_PATH, "-s", cssd.sock, "0.40", "offline"])
    subscribed(p)
    vary(cssd.sock, "offline")
    assert finish(p)[:2] == (0, "")


def test_wait_path_timeout_exits_1(cssd, spawn):
    """Another change of the path does not count: 0.40 goes offline, the script waits for online."""
    needs_socat_jq()
    start = time.monotonic()
    p = spawn(["sh", WAIT_PATH, "-s", cssd.sock, "-t", "0.8", "0.40", "online", "echo", "ran"])
    subscribed(p)
    vary(cssd.sock, "offline")
    rc, out, err = finish(p)
    assert rc == 1
    assert out == ""
    assert "did not become online within 0.8s" in err
    assert time.monotonic() - start >= 0.8  # not before its timeout (any later is the machine's load)
    assert running("socat", cssd.sock) == []


def test_wait_path_unknown_chpid_exits_1(cssd):
    needs_socat_jq()
    p = subprocess.run(["sh", str(WAIT_PATH), "-s", cssd.sock, "-t", "5", "9.99", "offline"],
                       capture_output=True, text=True, timeout=HANG_GUARD)
    assert p.returncode == 1
    assert "DeviceNotFound: " in p.stderr


def test_wait_path_connection_failure_exits_2(short_tmp):
    needs_socat_jq()
    for sock in (os.path.join(short_tmp, "absent.sock"), "unix:" + os.path.join(short_tmp, "absent.sock")):
        p = subprocess.run(["sh", str(WAIT_PATH), "-s", sock, "0.40", "offline"],
                           capture_output=True, text=True, timeout=HANG_GUARD)
        assert p.returncode == 2, p.stderr


def test_wait_path_usage_errors():
    for args in ([], ["0.40"], ["0.40", "sideways"], ["-t", "soon", "0.40", "online"]):
        p = subprocess.run(["sh", str(WAIT_PATH), *args], capture_output=True, text=True, timeout=HANG_GUARD)
        assert p.returncode == 64, (args, p.stderr)


def test_wait_path_is_posix():
    for sh in shells():
        p = subprocess.run([sh, "-n", str(WAIT_PATH)], capture_output=True, text=True, timeout=HANG_GUARD)
        assert p.returncode == 0, (sh, p.stderr)
    if shutil.which("checkbashisms"):
        p = subprocess.run(["checkbashisms", str(WAIT_PATH)], capture_output=True, text=True, timeout=HANG_GUARD)
        assert p.returncode == 0, p.stderr


# ---------------------------------------------------------------- path_events.py ----

def path_events(sock, *args):
    pytest.importorskip("qemu.qmp")
    return [sys.executable, PATH_EVENTS, "-s", sock, *args]


def test_path_events_prints_and_exits_after_count(cssd, spawn):
    p = spawn(path_events(cssd.sock, "--chpid", "0.40", "--count", "1"))
    subscribed(p)
    vary(cssd.sock, "offline")
    rc, out, err = finish(p)
    assert rc == 0, err
    assert out == "CHANNEL_PATH_CHANGED 0.40 offline vary=offline configure=configured subchannels=42\n"


def test_path_events_subchannel_lines(cssd, spawn):
    p = spawn(path_events(cssd.sock, "--granularity", "subchannel", "--count", "42"))
    subscribed(p)
    vary(cssd.sock, "offline")
    rc, out, err = finish(p)
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 42
    assert all(re.fullmatch(r"SUBCHANNEL_PATHS_CHANGED 0\.40 offline \S+ devno=\S+"
                            r" pam=[0-9a-f]{2} pom=[0-9a-f]{2} lpm=[0-9a-f]{2} pnom=[0-9a-f]{2}", line)
               for line in lines), lines[0]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_path_events_signal_ends_cleanly(cssd, spawn, sig):
    p = spawn(path_events(cssd.sock))
    subscribed(p)
    p.send_signal(sig)
    rc, out, err = finish(p)
    assert rc == 0
    assert out == "" and err == ""


def test_path_events_unknown_chpid_exits_1(cssd):
    p = subprocess.run(path_events(cssd.sock, "--chpid", "9.99"), capture_output=True, text=True, timeout=HANG_GUARD)
    assert p.returncode == 1
    assert "DeviceNotFound: " in p.stderr


def test_events_guest_granularity_table(cssd):
    """cssctl events --granularity guest: one GUEST_PATH_CHANGED row per guest reached."""
    proc = subprocess.Popen([cssctl_binary(), "events", "--socket", cssd.sock, "--granularity", "guest",
                             "--guest", "guest1", "--format", "table", "--count", "1", "--timeout", "10"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr.readline().startswith("subscribed: ")
        subprocess.run([cssctl_binary(), "--socket", cssd.sock, "configure-chpid", "chpid=0.40", "state=standby"],
                       check=True, capture_output=True, timeout=HANG_GUARD)
        out, _ = proc.communicate(timeout=HANG_GUARD)
    finally:
        proc.kill()
    header, row = out.splitlines()
    assert header.split()[:3] == ["TIME", "EVENT", "CHPID"]
    assert row.split()[1:4] == ["GUEST_PATH_CHANGED", "fe.40", "standby"]
    assert "guest=guest1 host-chpid=0.40 strategy=crw devices=42 visible=42" in row and row.endswith("crw=queued")
