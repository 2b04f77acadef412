"""The Debian package (Scripts/package-deb), as an operator gets it: built from the build CI
already has (its binaries relinked with the Swift runtime static), free of lintian errors, its
binaries needing no Swift library, installed with `apt-get install ./cssd_*.deb`, started as
cssd.service starts it (systemd is not PID 1 here: under systemd-socket-activate, with the
unit's capabilities only), queried with the installed cssctl on its default socket, and purged
with nothing left behind.

It installs into this machine's /usr, /etc and /lib/systemd, so it runs only as root where no
cssd is installed (skipped otherwise), and removes everything it installed."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time

import pytest

from harness.paths import REPO_ROOT
from harness.sysfs import build_tree

pytestmark = pytest.mark.slow

SWIFT_LIBRARIES = re.compile(r"libswift|libFoundation|libdispatch|libBlocksRuntime|lib_Foundation|libicu")


def run(*args, check=True, timeout=900, **kwargs):
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kwargs)
    if check:
        assert p.returncode == 0, f"{' '.join(args)}: {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p


def needed_libraries(binary: str) -> list[str]:
    out = run("readelf", "-d", binary).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    for tool in ("dpkg-deb", "dpkg-shlibdeps", "apt-get", "readelf", "systemd-socket-activate", "setpriv"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    if os.geteuid() != 0:
        pytest.skip("installs a package: root only")
    if run("dpkg-query", "-W", "-f=${Status}", "cssd", check=False).stdout.startswith("install ok") \
            or os.path.exists("/usr/bin/cssd") or os.path.exists("/run/cssd"):
        pytest.skip("a cssd is installed on this machine: not replacing it")
    out = tmp_path_factory.mktemp("deb")
    deb = run(str(REPO_ROOT / "Scripts" / "package-deb"), "--from-debug-build", "--output", str(out),
              cwd=str(REPO_ROOT), timeout=3600).stdout.strip().splitlines()[-1]
    assert os.path.isfile(deb), deb
    return deb


def test_the_binaries_need_no_swift_toolchain(package, tmp_path):
    run("dpkg-deb", "-x", package, str(tmp_path))
    for name in ("cssd", "cssctl"):
        libraries = needed_libraries(str(tmp_path / "usr" / "bin" / name))
        assert libraries and not [l for l in libraries if SWIFT_LIBRARIES.search(l)], (name, libraries)
    fields = run("dpkg-deb", "-f", package, "Depends", "Architecture").stdout
    assert "libjansson4" in fields and "librabbitmq4" in fields and "swift" not in fields.lower()
    assert run("dpkg", "--print-architecture").stdout.strip() in fields


def test_lintian_finds_no_errors(package):
    if shutil.which("lintian") is None:
        pytest.skip("lintian not installed (Scripts/setup installs it)")
    p = run("lintian", "--fail-on", "error", package, check=False)
    errors = [line for line in p.stdout.splitlines() if line.startswith("E:")]
    assert p.returncode == 0 and not errors, p.stdout + p.stderr


def test_install_start_query_purge(package, short_tmp):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run("apt-get", "install", "-y", "-q", "--no-install-recommends", package, env=env)
    proc = None
    try:
        # What the package put in place for the units.
        assert run("getent", "group", "cssd").returncode == 0
        info = os.stat("/var/lib/cssd")
        assert oct(info.st_mode & 0o7777) == "0o700"
        unit = open("/lib/systemd/system/cssd.service").read()
        settings = [l for l in unit.splitlines() if not l.startswith("#")]
        assert any(l.startswith("ExecStart=/usr/bin/cssd ") for l in settings)
        assert not [l for l in settings if "/usr/local" in l]
        for path in ("/usr/lib/sysusers.d/cssd.conf", "/usr/lib/tmpfiles.d/cssd.conf", "/etc/default/cssd",
                     "/usr/share/man/man8/cssd.8.gz", "/usr/share/man/man1/cssctl.1.gz",
                     "/usr/share/cssd/prometheus/cssd-rules.yml", "/usr/share/doc/cssd/copyright"):
            assert os.path.isfile(path), path
        completion = open("/usr/share/bash-completion/completions/cssctl").read()
        assert "vary-path" in completion and "query-chpids" in completion, "QMP command names complete"
        assert run("bash", "-c", "source /usr/share/bash-completion/completions/cssctl && complete -p cssctl").stdout
        assert run("/usr/bin/cssctl", "--version").stdout.strip() == "cssctl 0.1.0"

        # Started as the unit starts it: its command line (the host's /sys replaced by a fixture
        # tree: this machine has no channel subsystem), its capabilities, its two sockets.
        exec_start = next(l.split("=", 1)[1] for l in unit.splitlines() if l.startswith("ExecStart="))
        argv = [a.replace("${STATE_DIRECTORY}", "/var/lib/cssd") for a in shlex.split(exec_start) if a != "$CSSD_OPTIONS"]
        tree = build_tree("lpar.json", short_tmp)
        argv = [f"linux-sysfs:{tree}" if a == "linux-sysfs" else a for a in argv] + ["--kernel-log", "none"]
        caps = next(l.split("=", 1)[1] for l in unit.splitlines() if l.startswith("CapabilityBoundingSet="))
        bounding = ",".join(["-all"] + ["+" + c.lower().removeprefix("cap_") for c in caps.split()])
        os.makedirs("/run/cssd", mode=0o755)
        log = open(os.path.join(short_tmp, "cssd.log"), "wb")
        proc = subprocess.Popen(
            ["systemd-socket-activate", "-l", "/run/cssd/qmp.sock", "-l", "/run/cssd/qmp-readonly.sock",
             "--fdname=qmp:qmp-readonly", "setpriv", f"--bounding-set={bounding}", *argv],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 30
        while not os.path.exists("/run/cssd/qmp.sock"):
            assert time.time() < deadline and proc.poll() is None, open(log.name).read()
            time.sleep(0.05)
        # The installed cssctl, no --socket: the installed socket is its default.
        plain = {k: v for k, v in os.environ.items() if k != "CSSD_SOCKET"}
        listing = run("/usr/bin/cssctl", "lschp", env=plain, cwd=short_tmp, timeout=60).stdout
        assert listing.startswith("CHPID  Vary  Cfg.") and "\n0." in listing, listing
        p = run("/usr/bin/cssctl", "--socket", "/run/cssd/qmp-readonly.sock", "query-version", env=plain)
        assert "cssd 0.1.0" in p.stdout
        assert os.path.exists("/var/lib/cssd/state.sqlite"), os.listdir("/var/lib/cssd")
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
        shutil.rmtree("/run/cssd", ignore_errors=True)
        purge = run("apt-get", "purge", "-y", "-q", "cssd", env=env, check=False)
    assert purge.returncode == 0, purge.stdout + purge.stderr
    for path in ("/usr/bin/cssd", "/usr/bin/cssctl", "/lib/systemd/system/cssd.service", "/etc/default/cssd",
                 "/usr/share/man/man8/cssd.8.gz", "/var/lib/cssd"):
        assert not os.path.exists(path), path
