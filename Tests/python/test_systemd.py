"""systemd: socket activation (systemd-socket-activate), sd_notify readiness, reload and stop
on the test's own notify socket, and the unit files in systemd/."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from harness.qmp import burst_while_stopped


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} not installed (Debian: systemd)")
    return path


class Notifications:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, directory: str):
        self.path = os.path.join(directory, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages: list[str] = []

    def wait_for(self, key: str, timeout: float = 10.0) -> str:
        deadline = time.time() + timeout
        while True:
            for message in self.messages:
                if key in message.split("\n"):
                    self.messages.remove(message)
                    return message
            remaining = deadline - time.time()
            assert remaining > 0, f"no {key} among {self.messages}"
            self.sock.settimeout(remaining)
            self.messages.append(self.sock.recv(4096).decode())

    def close(self):
        self.sock.close()


def connect(path: str):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    f = s.makefile("rb")
    assert "QMP" in json.loads(f.readline())
    s.sendall(b'{"execute":"qmp_capabilities"}')
    assert json.loads(f.readline()) == {"return": {}}
    return s, f


def test_socket_activation_and_notify(binary, short_tmp):
    activate = need("systemd-socket-activate")
    rw = os.path.join(short_tmp, "qmp.sock")
    ro = os.path.join(short_tmp, "ro.sock")
    notify = Notifications(short_tmp)
    env = dict(os.environ, NOTIFY_SOCKET=notify.path)
    log = open(os.path.join(short_tmp, "cssd.log"), "wb")
    proc = subprocess.Popen(
        [activate, "-l", rw, "--fdname=qmp", "-l", ro, "--fdname=qmp-readonly", "-E", "NOTIFY_SOCKET",
         binary, "--log-level", "debug"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 10
        while not (os.path.exists(rw) and os.path.exists(ro)):
            assert time.time() < deadline and proc.poll() is None
            time.sleep(0.02)
        # systemd-socket-activate starts cssd at the first connection (Accept=no).
        s, f = connect(rw)
        ready = notify.wait_for("READY=1")
        assert "STATUS=serving 2 listener(s)" in ready
        s.sendall(b'{"execute":"vary-path","arguments":{"chpid":"0.40","state":"offline"}}')
        assert "return" in json.loads(f.readline())
        r, rf = connect(ro)
        r.sendall(b'{"execute":"vary-path","arguments":{"chpid":"0.40","state":"online"}}')
        assert json.loads(rf.readline())["error"]["class"] == "CommandNotFound"
        r.sendall(b'{"execute":"query-connections"}')
        listeners = {c["listener"]: c["read-only"] for c in json.loads(rf.readline())["return"]}
        assert listeners == {f"unix:{rw}": False, f"unix:{ro}": True}
        # SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1; cssd lives on.
        proc.send_signal(signal.SIGHUP)
        reloading = notify.wait_for("RELOADING=1")
        assert re.search(r"^MONOTONIC_USEC=\d+$", reloading, re.M), reloading
        notify.wait_for("READY=1")
        s.sendall(b'{"execute":"query-version"}')
        assert "return" in json.loads(f.readline())
        # SIGTERM: STOPPING=1, SHUTDOWN to clients, exit 0.
        proc.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING=1")
        assert json.loads(f.readline())["event"] == "SHUTDOWN"
        assert proc.wait(timeout=10) == 0
        text = open(os.path.join(short_tmp, "cssd.log")).read()
        assert "activated=true" in text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        notify.close()


def test_socket_activation_unknown_name(binary, short_tmp):
    activate = need("systemd-socket-activate")
    path = os.path.join(short_tmp, "x.sock")
    proc = subprocess.Popen([activate, "-l", path, "--fdname=metrics", binary],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 10
        while not os.path.exists(path):
            assert time.time() < deadline
            time.sleep(0.02)
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        out = proc.communicate(timeout=10)[0].decode()
        assert proc.returncode == 1
        assert "named 'metrics'; cssd serves 'qmp' and 'qmp-readonly'" in out, out
    finally:
        if proc.poll() is None:
            proc.kill()


def test_ready_only_after_listeners(binary, short_tmp):
    """Without socket activation READY=1 comes once the sockets accept connections."""
    notify = Notifications(short_tmp)
    sock = os.path.join(short_tmp, "c.sock")
    proc = subprocess.Popen([binary, "--qmp", f"unix:{sock}", "--qmp", "tcp:127.0.0.1:0"],
                            env=dict(os.environ, NOTIFY_SOCKET=notify.path),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        notify.wait_for("READY=1")
        connect(sock)
        proc.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING=1")
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        notify.close()


def test_unit_files_verify():
    analyze = need("systemd-analyze")
    units = [os.path.join(REPO, "systemd", name) for name in ("cssd.service", "cssd.socket", "cssd-readonly.socket")]
    r = subprocess.run([analyze, "verify", "--man=no", *units], capture_output=True, text=True)
    problems = [l for l in (r.stdout + r.stderr).splitlines()
                if l.strip() and "is not executable" not in l and "No such file" not in l]
    assert not problems, problems
    text = open(units[0]).read()
    for directive in ("Type=notify", "NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=CAP_SYSLOG\n",
                      "SystemCallFilter=@system-service", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                      "StateDirectory=cssd\n", "EnvironmentFile=-/etc/default/cssd\n", "BindReadOnlyPaths=/dev/kmsg\n",
                      "--state-dir ${STATE_DIRECTORY} $CSSD_OPTIONS\n"):
        assert directive in text, directive
    assert "FileDescriptorName=qmp\n" in open(units[1]).read()
    assert "FileDescriptorName=qmp-readonly\n" in open(units[2]).read()


def test_unit_security_score():
    """systemd-analyze security --offline: the service's exposure stays low (where supported)."""
    analyze = need("systemd-analyze")
    unit = os.path.join(REPO, "systemd", "cssd.service")
    r = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", unit], capture_output=True, text=True)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout + r.stderr)
    if m is None:
        pytest.skip(f"systemd-analyze security --offline not available here: {(r.stdout + r.stderr)[-300:]}")
    assert float(m.group(1)) <= 2.5, r.stdout[-3000:]


def test_socket_activation_keeps_the_listen_backlog(binary, short_tmp):
    """A socket systemd hands over keeps a backlog of 1024 (NIO's adoption listened again with
    128): 300 connections while cssd does not accept are all queued, then all greeted."""

    activate = need("systemd-socket-activate")
    path = os.path.join(short_tmp, "qmp.sock")
    log = open(os.path.join(short_tmp, "cssd.log"), "wb")
    proc = subprocess.Popen([activate, "-l", path, "--fdname=qmp", binary],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 10
        while not os.path.exists(path):
            assert time.time() < deadline and proc.poll() is None
            time.sleep(0.02)
        # systemd-socket-activate execs cssd at the first connection (same process id).
        connect(path)
        burst_while_stopped(proc.pid, path)
        assert proc.poll() is None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def unit_directive(name: str, key: str) -> str:
    """The last value of `key=` in systemd/NAME (systemd's rule: a later line wins)."""
    values = [line.split("=", 1)[1] for line in open(os.path.join(REPO, "systemd", name)).read().splitlines()
              if line.startswith(key + "=")]
    assert values, f"{key}= not in {name}"
    return values[-1]


def test_sysusers_and_tmpfiles_make_what_the_units_need(short_tmp):
    """Installed in a temporary root with systemd's own tools: the group the sockets and
    --socket-group name exists, and the state dir is root's only."""
    sysusers, tmpfiles = need("systemd-sysusers"), need("systemd-tmpfiles")
    root = os.path.join(short_tmp, "root")
    os.makedirs(os.path.join(root, "etc"))
    r = subprocess.run([sysusers, f"--root={root}", os.path.join(REPO, "systemd", "cssd.sysusers")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    groups = [line.split(":")[0] for line in open(os.path.join(root, "etc", "group")).read().splitlines()]
    assert unit_directive("cssd-readonly.socket", "SocketGroup") in groups
    assert "--socket-group cssd " in unit_directive("cssd.service", "ExecStart") and "cssd" in groups
    r = subprocess.run([tmpfiles, f"--root={root}", "--create", os.path.join(REPO, "systemd", "cssd.tmpfiles")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    info = os.stat(os.path.join(root, "var", "lib", "cssd"))
    assert (info.st_mode & 0o7777, info.st_uid) == (0o700, 0)
    # The environment file is shell syntax systemd reads: a comment block and one assignment.
    assignments = [l for l in open(os.path.join(REPO, "systemd", "cssd.default")).read().splitlines()
                   if l and not l.startswith("#")]
    assert assignments == ['CSSD_OPTIONS=""']


def capabilities_of_the_unit() -> str:
    """setpriv's --bounding-set argument for the unit's CapabilityBoundingSet (root's permitted
    set after exec is its bounding set, as under systemd)."""
    names = unit_directive("cssd.service", "CapabilityBoundingSet").split()
    return ",".join(["-all"] + ["+" + n.lower().removeprefix("cap_") for n in names])


def dev_kmsg_writable():
    if not os.access("/dev/kmsg", os.W_OK):
        pytest.skip("/dev/kmsg is not writable here")
    with open("/proc/sys/kernel/dmesg_restrict") as f:
        return f.read().strip() == "1"


def setpriv_cssd(short_tmp, name, bounding, *args):
    from harness.cssd import cssd_binary
    from harness.process import Server
    setpriv = need("setpriv")
    if subprocess.run([setpriv, f"--bounding-set={bounding}", "true"]).returncode != 0:
        pytest.skip("setpriv cannot drop capabilities here")
    workdir = os.path.join(short_tmp, name)
    os.makedirs(workdir)
    sock = os.path.join(workdir, "qmp.sock")
    argv = [setpriv, f"--bounding-set={bounding}", cssd_binary(), "--qmp", f"unix:{sock}", *args]
    return Server(name, argv, sock, workdir).start()


def test_kernel_log_with_only_the_units_capabilities(binary, short_tmp):
    """cssd follows /dev/kmsg with the capabilities cssd.service grants (and no more): a chpid
    message the kernel log carries makes it read that path's subchannels at once, with the
    sweep and polling off. Without CAP_SYSLOG (where dmesg_restrict=1) the warning says why."""
    from harness.qmp import Client
    from harness.sysfs import build_tree
    restricted = dev_kmsg_writable()
    tree = build_tree("lpar.json", short_tmp)
    quiet = ("--poll-interval", "0", "--no-inotify", "--kernel-log", "/dev/kmsg",
             "--log-level", "debug")  # "following the kernel log" is a debug line
    srv = setpriv_cssd(short_tmp, "unit-caps", capabilities_of_the_unit(), "--backend", f"linux-sysfs:{tree}", *quiet)
    try:
        srv.wait_line("following the kernel log /dev/kmsg")
        me = Client(srv.sock)
        me.call("subscribe-path-events", granularity="subchannel")
        target = next(s for s in me.call("query-subchannels", limit=1000)["subchannels"] if s["chpids"])
        slot = next(i for i, c in enumerate(target["chpids"]) if c)
        chpid = target["chpids"][slot]
        path = os.path.join(tree, "devices", "css0", target["subchannel"], "pimpampom")
        pim, pam, pom = (int(x, 16) for x in open(path).read().split())
        with open(path, "w") as f:
            f.write(f"{pim:02x} {pam & ~(0x80 >> slot):02x} {pom:02x}\n")
        with open("/dev/kmsg", "w") as kmsg:
            kmsg.write(f"<5>cio: Processing deconfigure for channel path {chpid}\n")
        [event] = me.events(1)
        assert event["data"]["subchannel"] == target["subchannel"]
        assert event["data"]["pam"] == pam & ~(0x80 >> slot)
    finally:
        srv.stop()
    if restricted:
        bare = setpriv_cssd(short_tmp, "no-caps", "-all", "--backend", f"linux-sysfs:{tree}", *quiet)
        try:
            line = bare.wait_line("kernel log /dev/kmsg")
            assert "needs CAP_SYSLOG" in line and "not following it" in line, line
        finally:
            bare.stop()


def test_journald_gets_priorities_and_no_timestamps(binary, short_tmp, monkeypatch):
    """With standard error on the stream $JOURNAL_STREAM names (as systemd starts a service),
    each line starts with its syslog priority and no time; a child that only inherited the
    variable (another stderr) keeps the timestamp."""
    from harness.cssd import cssd_server
    from harness.sysfs import build_tree
    tree = build_tree("lpar.json", short_tmp)
    for name, journal in (("journal", True), ("inherited", False)):
        workdir = os.path.join(short_tmp, name)
        os.makedirs(workdir)
        log = os.path.join(workdir, "cssd.log")
        open(log, "w").close()
        info = os.stat(log if journal else "/dev/null")
        monkeypatch.setenv("JOURNAL_STREAM", f"{info.st_dev}:{info.st_ino}")
        srv = cssd_server(workdir, extra_args=["--backend", f"linux-sysfs:{tree}", "--kernel-log",
                                                   os.path.join(workdir, "missing")])
        srv.start()
        try:
            warning = srv.wait_line("kernel log", "missing")
        finally:
            srv.stop()
        lines = [l for l in srv.log_tail(100000).splitlines() if l]
        if journal:
            assert warning.startswith("<4>warning "), warning
            assert all(re.match(r"<[0-7]>[a-z]+ ", l) for l in lines), lines
            assert any(l.startswith("<6>info ") for l in lines), lines
        else:
            assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} [a-z]+ ", l) for l in lines), lines
