"""The shared pytest fixtures, each defined once, on top of the harness package (harness/):
QEMU / cssd processes on temporary unix sockets, QMP clients, a private RabbitMQ node, test
certificates.

- CSSD_BIN overrides the cssd binary (default: <repo>/.build/debug/cssd); CSSCTL_BIN cssctl.
- QEMU_BIN overrides qemu-system-s390x (default: looked up on PATH).
- Tests needing a missing binary are skipped with the reason.
- Every process is stopped (SIGTERM, then SIGKILL) at teardown, also on failure.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import broker as _broker  # noqa: E402
from harness.cssd import cssd_binary, cssd_server, start_with_metrics  # noqa: E402
from harness.pki import PKI  # noqa: E402
from harness.prometheus import SHIPPED_RULES, run_prometheus  # noqa: E402
from harness.process import ServerHolder, call_failed  # noqa: E402
from harness.qemu import load_records, qemu_binary, qemu_server  # noqa: E402
from harness.qmp import Client  # noqa: E402
from harness.sysfs import KernelLogFifo  # noqa: E402


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the item (`item.rep_call`...), so that a fixture's teardown
    can tell whether the test failed (harness.process.call_failed) and print what its servers logged."""
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
    return load_records()


@pytest.fixture(scope="session")
def qemu_session():
    """A ServerHolder for one QEMU per session, or None when QEMU is not installed."""
    if qemu_binary() is None:
        yield None
        return
    d = _short_tmpdir("qmpq")
    holder = ServerHolder(lambda: qemu_server(d))
    try:
        yield holder
    finally:
        holder.stop()


@pytest.fixture(scope="session")
def cssd_session():
    """A ServerHolder for one cssd per session (skip if the binary is missing)."""
    if cssd_binary() is None:
        pytest.skip("cssd binary not found: build it (swift build) or set CSSD_BIN")
    d = _short_tmpdir("qmpc")
    holder = ServerHolder(lambda: cssd_server(d, extra_args=["--allow-quit"]))
    try:
        yield holder
    finally:
        holder.stop()


@pytest.fixture
def short_tmp():
    """A short temporary directory (for unix sockets), removed afterwards."""
    d = _short_tmpdir("qmpt")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def kmsg(short_tmp):
    """A FIFO standing in for /dev/kmsg (pass its path as --kernel-log), and a writer opened
    once cssd reads it: (path, writer)."""
    fifo = KernelLogFifo(os.path.join(short_tmp, "kmsg"))
    try:
        yield fifo.path, fifo.writer
    finally:
        fifo.close()


@pytest.fixture
def qemu(short_tmp):
    """A fresh QEMU for one test (skip if not installed)."""
    if qemu_binary() is None:
        pytest.skip("qemu-system-s390x not on PATH")
    srv = qemu_server(short_tmp)
    with srv:
        yield srv


@pytest.fixture
def cssd(short_tmp):
    """A fresh cssd (with --allow-quit) for one test (skip if not built)."""
    if cssd_binary() is None:
        pytest.skip("cssd binary not found: build it (swift build) or set CSSD_BIN")
    srv = cssd_server(short_tmp, extra_args=["--allow-quit"])
    with srv:
        yield srv


@pytest.fixture(params=["cssd", "qemu"])
def any_server(request):
    """Parametrises a test over cssd and QEMU (each skipped when missing)."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def binary():
    """The cssd binary's path (skip if not built)."""
    b = cssd_binary()
    if b is None:
        pytest.skip("cssd binary not found")
    return b


@pytest.fixture
def connect(cssd):
    """connect(**kw) -> a negotiated Client on the test's cssd; all are closed afterwards."""
    clients = []

    def make(**kw):
        c = Client(cssd.sock, **kw)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def start(short_tmp, request):
    """start(*args) -> a running cssd; every one is stopped afterwards (`run.stop_all()` stops
    them earlier, e.g. before the tree they read is removed). When the test failed, each one's
    end (exited by itself, or stopped) and the tail of its log are printed with the report."""
    if cssd_binary() is None:
        pytest.skip("cssd binary not found")
    servers = []

    def run(*args, name="s"):
        d = os.path.join(short_tmp, name)
        os.makedirs(d, exist_ok=True)
        srv = cssd_server(d, extra_args=list(args)).start()
        servers.append(srv)
        return srv

    def stop_all():
        for srv in servers:
            srv.stop()

    run.stop_all = stop_all
    yield run
    stop_all()
    if call_failed(request):
        for srv in servers:
            print(srv.describe_end())


@pytest.fixture
def metrics_cssd(short_tmp):
    """cssd with --metrics on a free port (learnt from its log) and a QMP unix socket."""
    server = start_with_metrics(short_tmp)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def prometheus(metrics_cssd, short_tmp):
    """A Prometheus scraping metrics_cssd every 0.5 s, with the shipped rules: its base URL."""
    with run_prometheus(short_tmp, {
        "global": {"scrape_interval": "500ms", "evaluation_interval": "500ms"},
        "rule_files": [str(SHIPPED_RULES)],
        "scrape_configs": [{
            "job_name": "cssd",
            "static_configs": [{"targets": [f"127.0.0.1:{metrics_cssd.extra['metrics_port']}"]}],
        }],
    }) as base:
        yield base


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """Test certificates (harness.pki.PKI), one set per module."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl not found: Scripts/setup installs it")
    return PKI(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="module")
def broker():
    """A private RabbitMQ node on loopback, one per module, stopped (with its epmd) afterwards."""
    node = _broker.Broker()
    try:
        node.start()
        yield node
    finally:
        node.close()
