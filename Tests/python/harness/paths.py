"""Where things are: the repository, the Python tests, the fixtures."""

from __future__ import annotations

from pathlib import Path

#: Tests/python
HERE = Path(__file__).resolve().parent.parent
REPO_ROOT = HERE.parent.parent
#: QEMU 7.2's replies to the compatibility cases (record_qemu.py writes it).
RECORD_FILE = HERE / "qemu_replies.json"
#: Tests/fixtures and the sysfs tree descriptions with make_sysfs.py.
FIXTURES = REPO_ROOT / "Tests" / "fixtures"
SYSFS_FIXTURES = FIXTURES / "sysfs"
