"""Fixture sysfs trees (Tests/fixtures/sysfs/make_sysfs.py builds one from a description) and
what someone's chchp does to a tree behind cssd's back."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .paths import SYSFS_FIXTURES

#: Tests/fixtures/sysfs, as a string for os.path.join.
FIXTURES = str(SYSFS_FIXTURES)


def build_tree(description: str, outdir: str) -> str:
    """OUTDIR/sys built from the fixture description `description` (e.g. "lpar.json")."""
    tree = os.path.join(outdir, "sys")
    subprocess.run([sys.executable, os.path.join(FIXTURES, "make_sysfs.py"), os.path.join(FIXTURES, description), tree],
                   check=True, timeout=30)
    return tree


def sysfs_tree(short_tmp):
    """The lpar fixture's tree in short_tmp."""
    return build_tree("lpar.json", short_tmp)


def topology_file(description: str, outdir: str) -> str:
    """OUTDIR/topology.json: the topology of the fixture description `description`."""
    with open(os.path.join(FIXTURES, description), encoding="utf-8") as f:
        topology = json.load(f)["topology"]
    path = os.path.join(outdir, "topology.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(topology, f)
    return path


def set_status(tree, chpid, status):
    """What someone's chchp -v does to the tree, behind cssd's back."""
    with open(os.path.join(tree, "devices", "css0", f"chp{chpid}", "status"), "w") as f:
        f.write(status + "\n")


def sysfs(tree, *args, name="sysfs", start=None):
    """A cssd (started with the `start` fixture) serving the tree with the linux-sysfs backend."""
    return start("--backend", f"linux-sysfs:{tree}", *args, name=name)
