"""Shared fixtures: QEMU / cssd processes on temporary unix sockets.

- CSSD_BIN overrides the cssd binary (default: <repo>/.build/debug/cssd).
- QEMU_BIN overrides qemu-system-s390x (default: looked up on PATH).
- Tests needing a missing binary are skipped with the reason.
- Every process is stopped (SIGTERM, then SIGKILL) at teardown, also on failure.
"""

from __future__ import annotations

import os
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import oracle  # noqa: E402


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the item (`item.rep_call`...), so that a fixture's teardown
    can tell whether the test failed (oracle.test_failed) and print what its servers logged."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: very slow tests (over-limit inputs); run with -m slow")


def _short_tmpdir(prefix: str) -> str:
    # unix socket paths are limited to ~107 bytes: keep them short.
    return tempfile.mkdtemp(prefix=prefix, dir="/tmp")


@pytest.fixture(scope="session")
def records():
    """Recorded QEMU replies (qemu_replies.json), {} if absent."""
    return oracle.load_records()


@pytest.fixture(scope="session")
def qemu_session():
    """A ServerHolder for one QEMU per session, or None when QEMU is not installed."""
    if oracle.qemu_binary() is None:
        yield None
        return
    d = _short_tmpdir("qmpq")
    holder = oracle.ServerHolder(lambda: oracle.qemu_server(d))
    try:
        yield holder
    finally:
        holder.stop()


@pytest.fixture(scope="session")
def cssd_session():
    """A ServerHolder for one cssd per session (skip if the binary is missing)."""
    if oracle.cssd_binary() is None:
        pytest.skip("cssd binary not found: build it (swift build) or set CSSD_BIN")
    d = _short_tmpdir("qmpc")
    holder = oracle.ServerHolder(lambda: oracle.cssd_server(d, extra_args=["--allow-quit"]))
    try:
        yield holder
    finally:
        holder.stop()


@pytest.fixture
def short_tmp():
    """A short temporary directory (for unix sockets), removed afterwards."""
    import shutil
    d = _short_tmpdir("qmpt")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def qemu(short_tmp):
    """A fresh QEMU for one test (skip if not installed)."""
    if oracle.qemu_binary() is None:
        pytest.skip("qemu-system-s390x not on PATH")
    srv = oracle.qemu_server(short_tmp)
    with srv:
        yield srv


@pytest.fixture
def cssd(short_tmp):
    """A fresh cssd (with --allow-quit) for one test (skip if not built)."""
    if oracle.cssd_binary() is None:
        pytest.skip("cssd binary not found: build it (swift build) or set CSSD_BIN")
    srv = oracle.cssd_server(short_tmp, extra_args=["--allow-quit"])
    with srv:
        yield srv


@pytest.fixture(params=["cssd", "qemu"])
def any_server(request):
    """Parametrises a test over cssd and QEMU (each skipped when missing)."""
    return request.getfixturevalue(request.param)
