"""The clients shipped in Clients/ that tests run against a live cssd, and the shells to run
the shell ones with."""

from __future__ import annotations

import os
import shutil

from .paths import REPO_ROOT

QMP_SH = REPO_ROOT / "Clients" / "shell" / "qmp.sh"
WAIT_PATH = REPO_ROOT / "Clients" / "shell" / "wait-path.sh"
PY_CLIENT = REPO_ROOT / "Clients" / "python" / "cssd_client.py"
PATH_EVENTS = REPO_ROOT / "Clients" / "python" / "path_events.py"


def shells():
    """The POSIX shells installed (dash, sh, bash), each once (sh is often dash)."""
    out = []
    for sh in ("dash", "sh", "bash"):
        p = shutil.which(sh)
        if p and os.path.realpath(p) not in [os.path.realpath(x) for x in out]:
            out.append(p)
    return out
