"""Failure scenarios (API/scenarios.md) through cssctl, without a server: `cssctl scenario check`
refuses a bad file with FILE:LINE:COLUMN and the reason, checks ids against a topology, and
`cssctl scenario from-kmsg` turns a host's kernel log into a scenario that checks."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from harness.cssd import cssctl_binary
from harness.paths import REPO_ROOT

EXAMPLES = REPO_ROOT / "API" / "examples"


def scenario(*argv, stdin=None):
    return subprocess.run([cssctl_binary(), "scenario", *argv], capture_output=True, text=True, timeout=60,
                          input=stdin)


@pytest.mark.parametrize("name,steps", [("switch-failure", 2), ("flapping-link", 21), ("storage-port-service", 4)])
def test_shipped_examples_check_on_their_topology(name, steps):
    p = scenario("check", str(EXAMPLES / f"{name}.json"), "--topology", str(EXAMPLES / "topology.json"))
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"{name}: ") and f" {steps} steps, " in p.stdout


def test_a_refusal_names_the_file_line_and_reason(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"scenario": "x", "steps": [\n'
                    '  {"at": 5, "execute": "remove-device", "arguments": {"device": "0.0.4700"}},\n'
                    '  {"at": 4, "execute": "remove-device", "arguments": {"device": "0.0.4701"}}]}\n')
    p = scenario("check", str(path))
    assert p.returncode == 1
    assert p.stderr.strip() == (f"{path}:3:3: steps out of order: step 'step-2' is at 4 ms, "
                                "before the step above it (5 ms)")


def test_unknown_chpids_are_refused_against_the_topology(tmp_path):
    path = tmp_path / "unknown.json"
    path.write_text('{"scenario": "x", "steps": [\n'
                    '  {"at": 0, "execute": "inject-path-fault", "arguments": {"chpids": ["0.40", "0.7f"], '
                    '"fault": "permanent-error"}}]}\n')
    # Without a topology the file is well formed.
    assert scenario("check", str(path)).returncode == 0
    p = scenario("check", str(path), "--topology", str(EXAMPLES / "topology.json"))
    assert p.returncode == 1
    assert p.stderr.strip() == f"{path}:2:78: step 'step-1': unknown chpid 0.7f (not in the topology)"


def test_not_a_scenario(tmp_path):
    path = tmp_path / "topology.json"
    path.write_text((EXAMPLES / "topology.json").read_text())
    p = scenario("check", str(path))
    assert p.returncode == 1
    assert "1:1: not a scenario" in p.stderr


def test_not_utf8_and_endless_input_are_refused(tmp_path):
    """A stray byte in a scenario is named at its line and column (it was taken as U+FFFD and
    accepted); a file without end (/dev/zero) is refused at 64 MiB, not read until memory runs
    out, by check and by from-kmsg."""
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"scenario": "x",\n "description": "caf\xe9", "steps": []}')
    p = scenario("check", str(path))
    assert p.returncode != 0 and p.stderr.strip() == f"{path}:2:21: not UTF-8 (byte 0xe9)", p.stderr
    for command in ("check", "from-kmsg"):
        p = scenario(command, "/dev/zero")
        assert p.returncode != 0 and "/dev/zero is larger than 64 MiB: refused" in p.stderr, p.stderr


def test_a_kernel_log_becomes_a_scenario_that_checks(tmp_path):
    log = tmp_path / "incident.log"
    log.write_text(
        "[  100.000000] crw_info : CRW reports slct=0, oflw=0, chn=0, rsc=4, anc=0, erc=6, rsid=40\n"
        "[  100.000200] crw_info : CRW reports slct=0, oflw=0, chn=0, rsc=4, anc=0, erc=6, rsid=42\n"
        "[  100.000900] crw_info : CRW reports slct=0, oflw=0, chn=0, rsc=3, anc=0, erc=4, rsid=1\n"
        "[  101.250000] dasd-eckd 0.0.4700: Path 0.44 (pathmask 20) is disabled - IFCC threshold exceeded\n"
        "[  130.000000] crw_info : CRW reports slct=0, oflw=0, chn=0, rsc=4, anc=0, erc=2, rsid=40\n")
    p = scenario("from-kmsg", str(log), "--name", "host-incident")
    assert p.returncode == 0, p.stderr
    converted = json.loads(p.stdout)
    assert converted["scenario"] == "host-incident"
    assert [(s["at"], s["execute"]) for s in converted["steps"]] == [
        (0, "inject-path-fault"), (0, "inject-path-fault"), (1250, "inject-device-path-fault"),
        (30000, "inject-path-fault")]
    assert p.stderr.startswith(f"{log}:3: skipped: a channel report with rsc 3")
    out = tmp_path / "incident.json"
    out.write_text(p.stdout)
    check = scenario("check", str(out), "--topology", str(EXAMPLES / "topology.json"))
    assert check.returncode == 0, check.stderr
    assert check.stdout == "host-incident: model clock, 4 steps, 30000 ms\n"


def test_from_kmsg_reads_standard_input_and_checks_the_name():
    p = scenario("from-kmsg", "-", stdin="6,1,5000000,-;cio: Processing deconfigure for channel path 0.41\n")
    assert p.returncode == 0, p.stderr
    step = json.loads(p.stdout)["steps"][0]
    assert step["arguments"] == {"chpid": "0.41", "state": "standby", "force": True}
    bad = scenario("from-kmsg", "-", "--name", "no spaces", stdin="")
    assert bad.returncode == 1 and "--name 'no spaces'" in bad.stderr
