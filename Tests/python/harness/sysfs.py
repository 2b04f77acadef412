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


def make_dasd(tree, subchannel, device, driver="dasd-eckd", path_masks="f0 00 00 00 00 00", knobs=None,
              path_security=None):
    """Makes ccw device `device` of `subchannel` a DASD as Linux shows one (issue 22,
    host-paths.md §4): a `driver` link to bus/ccw/drivers/DRIVER, `path_masks`
    (opm nppm cablepm cuirpm hpfpm ifccpm), the knobs (default: the ECKD defaults), per-path
    `paths_info/<chpid>/fc_security`, and an empty `path_reset` standing in for the 0200 file."""
    base = os.path.join(tree, "devices", "css0", subchannel, device)
    os.makedirs(os.path.join(tree, "bus", "ccw", "drivers", driver), exist_ok=True)
    os.symlink(f"../../../../bus/ccw/drivers/{driver}", os.path.join(base, "driver"))
    values = {"path_masks": path_masks, "path_autodisable": "1", "path_threshold": "256", "path_interval": "300",
              "hpf": "1", "fc_security": "Unsupported", "path_reset": None}
    values.update(knobs or {})
    for name, value in values.items():
        with open(os.path.join(base, name), "w") as f:
            f.write("" if value is None else value + "\n")
    for chpid, value in (path_security or {}).items():
        os.makedirs(os.path.join(base, "paths_info", chpid), exist_ok=True)
        with open(os.path.join(base, "paths_info", chpid, "fc_security"), "w") as f:
            f.write(value + "\n")
    return base


class KernelLogFifo:
    """A FIFO standing in for /dev/kmsg at `path`. `writer()` opens it for writing on first
    use (line-buffered), which blocks until cssd has opened it for reading: so call it only
    once cssd has said it follows the kernel log. `close()` ends the stream (cssd sees EOF)."""

    def __init__(self, path: str):
        self.path = path
        os.mkfifo(path)
        self._file = None

    def writer(self):
        if self._file is None:
            self._file = open(self.path, "w", buffering=1)
        return self._file

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
