"""Where things are: the repository, the Python tests, the fixtures."""

from __future__ import annotations

import os
from pathlib import Path

#: Tests/python
HERE = Path(__file__).resolve().parent.parent
REPO_ROOT = HERE.parent.parent
#: QEMU 7.2's replies to the compatibility cases (record_qemu.py writes it).
RECORD_FILE = HERE / "qemu_replies.json"
#: Tests/fixtures and the sysfs tree descriptions with make_sysfs.py.
FIXTURES = REPO_ROOT / "Tests" / "fixtures"
SYSFS_FIXTURES = FIXTURES / "sysfs"


def fill_filesystem(directory: str) -> str:
    """Writes DIRECTORY/filler until the filesystem is full (ENOSPC); the filler's path, whose
    removal frees the space."""
    filler = os.path.join(directory, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.write(fd, b"\0" * 4096) > 0:
            pass
    except OSError:
        pass  # ENOSPC: full
    finally:
        os.close(fd)
    return filler
