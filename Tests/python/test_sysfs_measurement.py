"""The linux-sysfs backend's channel-measurement side in a running cssd: --proc-root, and the
measurement files of a fixture tree (Tests/fixtures/sysfs/make_measurement.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness.cssd import cssd_binary
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
