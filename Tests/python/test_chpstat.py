"""`cssctl chpstat` over a cssd socket.

(a) The model backend: the facility's status, --enable/--disable, chpstat's run-time and usage
    errors and exit statuses, and metrics equal to the load set with set-chpid-load (and to what
    query-chpid-measurements reports).
(b) `cssd --backend linux-sysfs:ROOT` over the chpstat fixture trees (Tests/fixtures/chpstat,
    built with make_trees.py): cssctl chpstat prints what s390-tools' chpstat v2.43.0 printed over
    the same trees (golden/), except the host name, the times and the version. Skipped while the
    linux-sysfs backend does not serve channel measurements (query-chpid-measurements says
    "unsupported").
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

from harness.cssd import cssctl_binary, start_cssd
from harness.net import wait_until
from harness.paths import REPO_ROOT
from harness.qmp import Client

FIXTURES = REPO_ROOT / "Tests" / "fixtures" / "chpstat"
CASES = {case["name"]: case for case in json.loads((FIXTURES / "cases.json").read_text())}


def chpstat(sock: str, *args: str, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
    """`cssctl --socket SOCK chpstat ARGS...` (bytes out, so that 0x1e and trailing blanks stay)."""
    environment = dict(os.environ, TZ="UTC")
    environment.update(env or {})
    return subprocess.run([cssctl_binary(), "--socket", sock, "chpstat", *args], capture_output=True,
                          timeout=timeout, env=environment)


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="chps", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def model(workdir):
    """A cssd on its embedded topology (the facility starts disabled, as after a boot)."""
    server = start_cssd(workdir)
    yield server
    server.stop()


# ---------------------------------------------------------------------------------------------
# (a) The model backend


def test_status_enable_disable(model):
    assert chpstat(model.sock, "--status").stdout == b"Channel-path statistics are disabled\n"
    table = chpstat(model.sock, "-n", "1")
    assert table.returncode == 2
    assert table.stderr == (b"cssctl chpstat: Channel-path statistics are disabled\n"
                            b"Use 'cssctl chpstat --enable' to enable statistics\n")
    enabled = chpstat(model.sock, "--enable")
    assert (enabled.returncode, enabled.stdout) == (0, b"Enabling channel-path statistics\n")
    again = chpstat(model.sock, "-e")
    assert (again.returncode, again.stdout) == (0, b"Channel-path statistics already enabled\n")
    status = json.loads(chpstat(model.sock, "--status", "--format", "json").stdout)
    assert status["chpstat_status"] == {"status": "enabled"}
    assert set(status["meta"]) == {"api_level", "version", "host", "time_epoch", "time"}
    disabled = chpstat(model.sock, "--disable")
    assert (disabled.returncode, disabled.stdout) == (0, b"Disabling channel-path statistics\n")
    assert chpstat(model.sock, "-s", "--format", "pairs").stdout.endswith(b'chpstat_status.status="disabled"\n')


def test_metrics_are_the_load_set(model):
    """The model's counters advance so that chpstat's formulas give the load back: cssctl
    chpstat's second report (a whole interval under the load) shows it, as the server does."""
    client = Client(model.sock)
    try:
        client.call("set-channel-measurement", enabled=True)
        client.call("set-chpid-load", chpid="0.40", load={"util_part": 40, "util_total": 60, "ficon_rate": 500})
        run = chpstat(model.sock, "--format", "json", "-n", "2", "-i", "3", "--keys", "chpid,util_part,util_total,ficon_rate",
                      "0.40", timeout=120)
        assert run.returncode == 0, run.stderr
        report = json.loads(run.stdout)
        second = report["chpstat"][1]["channel_paths"][0]
        assert second == {"chpid": "0.40", "cmg2": {"metrics": {"util_total": 60.0, "util_part": 40.0, "ficon_rate": 500.0}}}
        metrics = client.call("query-chpid-measurements", chpids=["0.40"])["channel-paths"][0]["metrics"]
        assert (round(metrics["util_part"], 1), round(metrics["util_total"], 1)) == (40.0, 60.0)
    finally:
        client.close()


def test_every_path_of_the_server(model):
    """All chpids query-chpids lists with a CMG, in chpid order, with chpstat's keys."""
    assert chpstat(model.sock, "--enable").returncode == 0
    run = chpstat(model.sock, "--chars", "--util", "--format", "json", "-n", "1")
    assert run.returncode == 0, run.stderr
    paths = json.loads(run.stdout)["chpstat"][0]["channel_paths"]
    client = Client(model.sock)
    try:
        served = [p for p in client.call("query-chpid-measurements")["channel-paths"] if "cmg" in p]
    finally:
        client.close()
    assert [p["chpid"] for p in paths] == [p["chpid"] for p in served]
    for ours, theirs in zip(paths, served):
        # speed_bps as Linux prints it: the largest exact 1000-power suffix.
        if theirs.get("speed-bps"):
            number, unit = int(theirs["speed-bps"]), 0
            while number % 1000 == 0 and unit < 4:
                number, unit = number // 1000, unit + 1
            assert ours["speed"] == f"{number}{['', 'K', 'M', 'G', 'T'][unit]}"
        group = ours[f"cmg{theirs['cmg']}"]
        assert group.get("characteristics", {}) == theirs.get("characteristics", {})
        assert group["utilization"] == theirs["utilization"]


def test_sigint_leaves_valid_json(model):
    """Without -n chpstat runs until interrupted; SIGINT then closes the JSON (chpstat's
    FMT_HANDLEINT) and the process ends by the signal."""
    assert chpstat(model.sock, "--enable").returncode == 0
    proc = subprocess.Popen([cssctl_binary(), "--socket", model.sock, "chpstat", "--format", "json", "--util", "-i", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        seen = b""
        # Each report is written whole and flushed: wait for the first one.
        while b'"channel_paths"' not in seen or not seen.rstrip().endswith(b"}"):
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, proc.stderr.read()
            seen += chunk
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGINT, err
    report = json.loads(seen + rest)
    assert report["chpstat"][0]["iteration"] == 0


def test_run_time_errors(model):
    assert chpstat(model.sock, "--enable").returncode == 0
    missing = chpstat(model.sock, "0.99")
    assert (missing.returncode, missing.stderr) == (2, b"cssctl chpstat: CHPID 0.99 does not exist\n")
    unavailable = chpstat(model.sock, "--keys", "msg_rate_part", "-n", "1")
    assert unavailable.returncode == 2
    assert unavailable.stderr == b"cssctl chpstat: No available CHPID provides key 'msg_rate_part' (needs CMG 3)\n"


def test_usage_errors_need_no_server(workdir):
    absent = os.path.join(workdir, "absent.sock")
    run = chpstat(absent, "--interval", "0")
    assert (run.returncode, run.stderr) == (1, b"cssctl chpstat: Value 0 for option --interval is too small (min 1)\n")
    run = chpstat(absent, "--bogus")
    assert run.returncode == 1
    assert run.stderr.endswith(b"Try 'cssctl chpstat --help' for more information.\n")
    listing = subprocess.run([cssctl_binary(), "chpstat", "--help"], capture_output=True, timeout=30)
    assert listing.returncode == 0 and b"--list-columns" in listing.stdout


def test_connection_failure_is_a_run_time_error(workdir):
    run = chpstat(os.path.join(workdir, "absent.sock"), "--status")
    assert run.returncode == 2
    assert run.stderr.startswith(b"cssctl chpstat: ")


# ---------------------------------------------------------------------------------------------
# (b) linux-sysfs over the chpstat fixture trees, against chpstat's goldens

# Cases that need no new data (characteristics, raw utilization, listings, status, errors).
STATIC_CASES = ["chars", "util-json", "chars-util-csv", "keys-json", "status", "status-json", "list-columns",
                "list-keys", "list-keys-csv", "enable-already", "err-chpid-missing", "err-chpid-no-stats",
                "err-chpid-cmg", "err-chpid-excluded", "err-key-unavailable", "err-disabled", "status-unsupported", "k66-util-csv",
                "err-unsupported"]
# Cases with metrics over one interval (s0 -> s1).
METRICS_CASES = ["table", "table-all", "table-cmg3-5", "table-scale-number", "pairs", "metrics-pairs", "all-json",
                 "keys-csv", "chpids-jsonl", "nometa-csv", "k610-table", "quirks-json", "quirks-csv", "quirks-table",
                 "k66-table-n1"]


def normalized(text: bytes) -> bytes:
    """Without what may differ (README): the host, the times, the version, the program's name."""
    text = re.sub(rb'("(?:host|version|time)": )"[^"]*"', rb'\1"*"', text)
    text = re.sub(rb'("time_epoch": )\d+', rb"\1*", text)
    text = re.sub(rb'((?:^|\.)(?:host|version|time)=)"[^"]*"', rb'\1"*"', text, flags=re.M)
    text = re.sub(rb"((?:^|\.)time_epoch=)\d+", rb"\1*", text, flags=re.M)
    text = re.sub(rb"Date: \S+  Time: \S+  Host: \S+", b"Date: *  Time: *  Host: *", text)
    text = text.replace(b"cssctl chpstat", b"chpstat")
    if text.startswith(b'"meta.api_level"') or b'"meta.api_level"' in text[:200]:
        text = normalized_csv(text)
    return text


def normalized_csv(text: bytes) -> bytes:
    """The CSV with the cells of the host, time and version columns replaced (chpstat quotes
    every cell; a cell may hold commas, as cmgs "2,4,5")."""
    rows = list(csv.reader(io.StringIO(text.decode())))
    wildcard = {i for i, name in enumerate(rows[0] if rows else [])
                if name in ("meta.version", "meta.host", "meta.time", "meta.time_epoch", "time", "time_epoch")}
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(rows[0] if rows else [])
    for row in rows[1:]:
        writer.writerow(["*" if i in wildcard else cell for i, cell in enumerate(row)])
    return out.getvalue().encode()


def expected(name: str) -> bytes:
    case = CASES[name]
    if case.get("deviation"):
        return (FIXTURES / "expected" / f"{name}.stdout").read_bytes()
    return (FIXTURES / "golden" / f"{name}.stdout").read_bytes()


def build_tree(tree: str, out: str) -> str:
    subprocess.run([sys.executable, str(FIXTURES / "make_trees.py"), str(FIXTURES / f"{tree}.json"), out], check=True)
    return out


def install_sample(samples: str, index: int, root: str) -> None:
    """Puts sample `index`'s measurement entries into the tree cssd reads, each file replaced in
    one step (rename), extended entries first: a poll between two replacements sees either the
    old CUE (no new sample) or the new CUE with its extended CUE."""
    source = os.path.join(samples, f"s{index}", "devices", "css0")
    for name in ("ext_measurement", "measurement"):
        for chp in sorted(os.listdir(source)):
            path = os.path.join(source, chp, name)
            if not os.path.exists(path):
                continue
            target = os.path.join(root, "devices", "css0", chp, name)
            temporary = target + ".new"
            shutil.copyfile(path, temporary)
            os.replace(temporary, target)


@pytest.fixture
def sysfs_cssd(workdir):
    """cssd over a copy of sample 0 of a fixture tree; yields (start(tree) -> (server, samples, root))."""
    servers = []

    def start(tree: str):
        samples = build_tree(tree, os.path.join(workdir, tree))
        root = os.path.join(workdir, tree + "-root")
        shutil.copytree(os.path.join(samples, "s0"), root, symlinks=True)
        server = start_cssd(os.path.join(workdir), "--backend", f"linux-sysfs:{root}", "--poll-interval", "100")
        servers.append(server)
        client = Client(server.sock)
        try:
            state = client.call("query-chpid-measurements")
        finally:
            client.close()
        if "does not implement" in state.get("reason", ""):
            pytest.skip(f"linux-sysfs serves no channel measurements yet: {state}")
        return server, samples, root

    yield start
    for server in servers:
        server.stop()


def case_tree(name: str) -> str:
    return CASES[name]["tree"]


@pytest.mark.parametrize("name", STATIC_CASES)
def test_sysfs_static_golden(sysfs_cssd, name):
    case = CASES[name]
    server, _, _ = sysfs_cssd(case_tree(name))
    run = chpstat(server.sock, *case["args"], env=case.get("env"))
    golden_exit = int((FIXTURES / "golden" / f"{name}.exit").read_text())
    assert run.returncode == golden_exit, run.stderr
    assert normalized(run.stdout) == normalized(expected(name))
    assert normalized(run.stderr) == normalized((FIXTURES / "golden" / f"{name}.stderr").read_bytes())


@pytest.mark.parametrize("name", METRICS_CASES)
def test_sysfs_metrics_golden(sysfs_cssd, name):
    """cssctl chpstat reads sample 0 through cssd (its --debug line says when), waits for new data;
    then sample 1 goes into the tree; chpstat's report over s0 -> s1 follows."""
    case = CASES[name]
    server, samples, root = sysfs_cssd(case_tree(name))
    environment = dict(os.environ, TZ="UTC", **case.get("env", {}))
    # Unbuffered (bufsize=0): readline then takes the first line alone. A buffered reader may
    # take what follows it too (chpstat's warning, written right after), which communicate(),
    # reading the pipe's descriptor, would then never see.
    proc = subprocess.Popen([cssctl_binary(), "--socket", server.sock, "chpstat", "--debug", *case["args"]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment, bufsize=0)
    try:
        first = proc.stderr.readline()
        assert first.startswith(b"DEBUG: read("), first
        install_sample(samples, 1, root)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == int((FIXTURES / "golden" / f"{name}.exit").read_text()), err
    assert normalized(out) == normalized(expected(name))
    warnings = b"".join(line + b"\n" for line in (first + err).split(b"\n") if line and not line.startswith(b"DEBUG: "))
    assert normalized(warnings) == normalized((FIXTURES / "golden" / f"{name}.stderr").read_bytes()), (first, err, out)


def test_the_missing_extended_warning_follows_the_kernels_file_not_the_cmg(sysfs_cssd):
    """chpstat warns once when ext_measurement does not exist, for a path of any CMG
    (chpstat.c v2.43.0 read_ext_cue: util_path_exists, then warnx once); the server says per
    path whether the file exists (extended-entry-file). A Linux 6.6 tree, only its CMG 3 path
    selected: chpstat warns; a guess from the CMG (2, 4, 5 have extended entries) did not."""
    server, _, _ = sysfs_cssd("kernel-6.6")
    client = Client(server.sock)
    try:
        served = client.call("query-chpid-measurements")["channel-paths"]
    finally:
        client.close()
    assert {p["chpid"]: p.get("extended-entry-file") for p in served} == {"0.12": False, "0.21": False}
    run = chpstat(server.sock, "--util", "--format", "csv", "-n", "1", "0.21")
    assert run.returncode == 0, run.stderr
    assert run.stderr == b"cssctl chpstat: Missing kernel support for extended channel-path measurement data\n"


def test_no_missing_extended_warning_where_the_kernel_has_the_file(sysfs_cssd):
    """Linux 6.10: ext_measurement exists (extended-entry-file true): no warning."""
    server, _, _ = sysfs_cssd("kernel-6.10")
    run = chpstat(server.sock, "--util", "--format", "csv", "-n", "1")
    assert (run.returncode, run.stderr) == (0, b"")
