"""The linux-sysfs backend's channel-measurement side in a running cssd: --proc-root, and the
measurement files of a fixture tree (Tests/fixtures/sysfs/make_measurement.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from harness.cssd import cssd_binary
from harness.qmp import Client
from harness.sysfs import FIXTURES, build_tree, sysfs

# As the kernel prints it: the name padded to 8 columns, a blank extended name.
SYSINFO = ("Manufacturer:         IBM\n"
           "Type:                 3931\n"
           "Sequence Code:        00000000000ABC12\n"
           "\n"
           "LPAR Number:          47\n"
           "LPAR Characteristics: Shared\n"
           "LPAR Name:            LP47    \n"
           "LPAR Extended Name:   \n")


def proc_root(short_tmp, release="6.13.0-rc1", sysinfo=SYSINFO):
    root = os.path.join(short_tmp, "proc")
    os.makedirs(os.path.join(root, "sys", "kernel"), exist_ok=True)
    with open(os.path.join(root, "sys", "kernel", "osrelease"), "w") as f:
        f.write(release + "\n")
    if sysinfo is not None:
        with open(os.path.join(root, "sysinfo"), "w") as f:
            f.write(sysinfo)
    return root


def test_proc_root_names_the_partition_and_kernel(start, short_tmp):
    tree = build_tree("lpar.json", short_tmp)
    server = sysfs(tree, "--proc-root", proc_root(short_tmp), "--log-level", "info", start=start)
    line = next(l for l in server.log_tail(20000).splitlines() if "sysfs read" in l)
    assert "partition=LP47" in line and "kernel=6.13" in line


def test_without_sysinfo_there_is_no_partition(start, short_tmp):
    tree = build_tree("lpar.json", short_tmp)
    server = sysfs(tree, "--proc-root", proc_root(short_tmp, sysinfo=None), "--log-level", "info", start=start)
    line = next(l for l in server.log_tail(20000).splitlines() if "sysfs read" in l)
    assert "partition=-" in line


def test_proc_root_must_be_a_directory(short_tmp):
    binary = cssd_binary()
    if binary is None:
        pytest.skip("cssd binary not found")
    result = subprocess.run([binary, "--qmp", f"unix:{short_tmp}/n.sock", "--proc-root", f"{short_tmp}/nowhere"],
                            capture_output=True, timeout=20)
    assert result.returncode != 0
    assert b"--proc-root" in result.stderr and b"is not a directory" in result.stderr


def test_make_measurement_refuses_unknown_keys(short_tmp):
    tree = build_tree("lpar.json", short_tmp)
    path = os.path.join(short_tmp, "m.json")
    with open(path, "w") as f:
        f.write('{"chpids": {"0.40": {"cmg": 2, "cue": [0,0,0,0,0,0,0,0], "typo": 1}}}')
    p = subprocess.run([sys.executable, os.path.join(FIXTURES, "make_measurement.py"), path, tree],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "unknown keys ['typo']" in p.stderr


def measurement(tree, description):
    path = os.path.join(os.path.dirname(tree), "m.json")
    with open(path, "w") as f:
        json.dump(description, f)
    subprocess.run([sys.executable, os.path.join(FIXTURES, "make_measurement.py"), path, tree], check=True, timeout=30)


CMCB = [0x6000_0040, 0xf809_0002, 32, 1000, 2000, 3000, 4000, 64]


def cue(timestamp, cwu_cpc, cwu):
    return [0xff << 24 | timestamp, 0, cwu_cpc, cwu, 0, 0, 0, 0]


def wait_for(client, predicate, what, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        reply = client.call("query-chpid-measurements")
        if predicate(reply):
            return reply
        assert time.monotonic() < deadline, f"{what}: {reply}"
        time.sleep(0.05)


def path(reply, chpid):
    return next(p for p in reply["channel-paths"] if p["chpid"] == chpid)


def test_measurements_of_a_fixture_tree_over_qmp(start, short_tmp):
    """cssd --backend linux-sysfs over a tree with measurement files: the facility off, then
    enabled through set-channel-measurement (cm_enable written), a first sample, the firmware's
    next update giving chpstat's utilization, and a malformed block on another chpid reported
    for that chpid only."""
    tree = build_tree("lpar.json", short_tmp)
    ext = [0] * 16
    measurement(tree, {"cm_enable": 0, "chpids": {
        "0.40": {"cmg": 2, "cmcb": CMCB, "cue": cue(100, 1000, 400), "ext": ext, "speed_bps": "32G"},
        "0.41": {"cmg": 2, "cmcb": CMCB, "cue": cue(100, 1000, 400), "ext": ext}}})
    client = Client(sysfs(tree, "--poll-interval", "100", "--proc-root", proc_root(short_tmp), start=start).sock)
    reply = client.call("query-chpid-measurements", chpids=["0.40"])
    assert reply["state"] == "disabled"
    assert path(reply, "0.40")["available"] is False and path(reply, "0.40")["reason"] == "facility-disabled"

    assert client.call("set-channel-measurement", enabled=True) == {"state": "enabled"}
    with open(os.path.join(tree, "devices", "css0", "cm_enable")) as f:
        assert f.read() == "1"
    first = path(client.call("query-chpid-measurements"), "0.40")
    assert first["reason"] == "first-sample" and first["cmg"] == 2 and first["speed-bps"] == 32_000_000_000
    assert first["blocks"]["cue"] == "".join(f"{w:08x}" for w in cue(100, 1000, 400))
    assert first["blocks"]["cmcb"] == "".join(f"{w:08x}" for w in CMCB) and first["blocks"]["cmcb-full"] is True
    assert first["totals"]["channel_work_units_cpc"] == 1000

    # The firmware's next update, 7813 ticks (1.000064 s) later; 0.41's block goes bad.
    measurement(tree, {"cm_enable": 1, "chpids": {
        "0.40": {"cmg": 2, "cmcb": CMCB, "cue": cue(100 + 7813, 2000, 900), "ext": ext, "speed_bps": "32G"},
        "0.41": {"cmg": 2, "cmcb": CMCB, "cue": "00ff00", "ext": ext}}})
    reply = wait_for(client, lambda r: path(r, "0.40")["available"], "0.40's interval")
    p40, p41 = path(reply, "0.40"), path(reply, "0.41")
    seconds = 7813 * 0.000128
    assert p40["metrics"]["util_total"] == pytest.approx(100.0 * 1000 / (2000 * seconds), rel=1e-12)
    assert p40["metrics"]["util_part"] == pytest.approx(100.0 * 500 / (2000 * seconds), rel=1e-12)
    assert p40["totals"]["channel_work_units_cpc"] == 2000 and p40["samples"] == 2
    assert p41["available"] is False and p41["reason"] == "malformed"
    assert "must be 32 bytes, got 3" in p41["reason-text"]

    assert client.call("set-channel-measurement", enabled=False) == {"state": "disabled"}
    assert path(client.call("query-chpid-measurements"), "0.40")["reason"] == "facility-disabled"


def test_problems_found_at_start_up_are_logged_once(start, short_tmp):
    """A malformed block, a FIFO, a directory and a symlink loop where measurement files
    should be, with the facility already on when cssd starts: each chpid's problem is logged
    once (the start-up pass used to note them before the log was attached, so they were
    never logged at all), not once per tick, and the good chpid is served."""
    tree = build_tree("lpar.json", short_tmp)
    ext = [0] * 16
    good = {"cmg": 2, "cmcb": CMCB, "cue": cue(100, 1000, 400), "ext": ext}
    measurement(tree, {"cm_enable": 1, "chpids": {
        "0.40": good, "0.41": {**good, "cue": "00ff00"}, "0.42": good, "0.43": good, "0.44": good}})
    css = os.path.join(tree, "devices", "css0")
    os.remove(os.path.join(css, "chp0.42", "measurement"))
    os.mkfifo(os.path.join(css, "chp0.42", "measurement"))
    os.remove(os.path.join(css, "chp0.43", "measurement"))
    os.mkdir(os.path.join(css, "chp0.43", "measurement"))
    os.remove(os.path.join(css, "chp0.44", "measurement"))
    os.symlink("measurement", os.path.join(css, "chp0.44", "measurement"))
    server = sysfs(tree, "--poll-interval", "50", "--proc-root", proc_root(short_tmp), start=start)
    client = Client(server.sock)

    def lines(chpid):
        return [l for l in server.log_tail(1 << 20).splitlines()
                if f"chp{chpid}: measurement not available" in l]

    deadline = time.monotonic() + 60
    while not all(lines(c) for c in ["0.41", "0.42", "0.43", "0.44"]):
        assert time.monotonic() < deadline, server.log_tail(20000)
        time.sleep(0.05)
    assert "chp0.41/measurement has 3 bytes, not 32" in lines("0.41")[0]
    # More ticks: the firmware's next update of 0.40, served once a tick has read it.
    measurement(tree, {"cm_enable": 1, "chpids": {"0.40": {**good, "cue": cue(100 + 7813, 2000, 900)}}})
    reply = wait_for(client, lambda r: path(r, "0.40")["available"], "0.40's interval")
    for chpid in ["0.41", "0.42", "0.43", "0.44"]:
        assert path(reply, chpid)["available"] is False
        assert len(lines(chpid)) == 1, lines(chpid)
